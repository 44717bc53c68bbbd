"""QueueMe 0.0.14's executors, as `task.executor` and `get_named_executor(name)`:
a name, a task id, the executor's data, `export()`, `summary()`, `get_actions()`
and `run_action(name, data)`.

They describe; qme's executors (`qme.executors`, reached through `qme.api.Queue`)
run, record and act. An executor of a task runs its actions through that task's
Queue; one from `get_named_executor` alone lists its actions but has no task to
run them on.
"""

from __future__ import annotations

import os
import shlex
from datetime import datetime

from qme.api import Queue as QmeQueue
from qme.errors import UnknownExecutor
from qme.exceptions import NotSupportedError, UnrecognizedExecutorError
from qme.origin import current_user
from qme.task import new_uuid4

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from qme.main.config import Config


def _empty_data() -> dict:
    return {"output": [], "error": [], "returncode": None, "pid": None, "cmd": [], "status": None}


class Executor:
    """QueueMe's view of an executor (its ShellExecutor, SlurmExecutor …)."""

    def __init__(
        self,
        name: str,
        taskid: str | None = None,
        actions: list[str] = (),
        data: dict | None = None,
        runner: Callable[[str, dict], Any] | None = None,
    ):
        self.name = name
        self.taskid = taskid or f"{name}-{new_uuid4()}"
        self.pwd = os.getcwd()
        self.message = None
        self.config = None
        self.data = _empty_data() if data is None else data
        self._runner = runner
        self.actions = {action: self._action(action) for action in actions}

    def _action(self, name: str):
        def run(data: dict | None = None, **options: Any) -> Any:
            if self._runner is None:
                raise NotSupportedError(
                    f"this {self.name} executor has no task: run the action on one "
                    f"(queue.get(taskid).run_action('{name}'))"
                )
            return self._runner(name, **options)

        return run

    @property
    def command(self) -> str:
        return " ".join(self.data.get("cmd") or [])

    def export(self) -> dict:
        """The executor's data with pwd, user, timestamp (and message) in front."""
        if "pwd" in self.data:  # a task's: recorded with these already
            return dict(self.data)
        common = {"pwd": self.pwd, "user": current_user(), "timestamp": str(datetime.now())}
        if self.message:
            common["message"] = self.message
        return {**common, **self.data}

    def get_actions(self) -> list[str]:
        return list(self.actions)

    def run_action(self, name: str, data: dict | None = None, **options: Any) -> Any:
        """The action's result; None for an action this executor does not have."""
        if name in self.actions:
            return self.actions[name](data, **options)
        return None

    def summary(self) -> str:
        if self.data.get("returncode") is not None:
            return f"[{self.taskid}][returncode: {self.data.get('returncode')}]"
        return f"[{self.name}][{self.command}]"


def _queue(config: Config | None) -> QmeQueue:
    home = os.path.dirname(config.configfile) if config is not None else None
    return QmeQueue(config_dir=home)


def named(queue: QmeQueue, name: str, taskid: str | None = None, **fields) -> Executor:
    """The executor called name in queue's home; UnrecognizedExecutorError if none."""
    try:
        actions = list(queue.actions(name))
    except UnknownExecutor:
        raise UnrecognizedExecutorError(name) from None
    return Executor(name, taskid, actions, **fields)


def get_named_executor(name: str, taskid: str | None = None, config: Config | None = None):
    """The executor called name (shell, slurm, a plugin's); taskid: the task it is for."""
    executor = named(_queue(config), name, taskid)
    executor.config = config
    return executor


def get_executor(command: str | list[str] | None = None, config: Config | None = None):
    """The executor that takes command, by the same rules as `qme run` (sbatch: slurm)."""
    queue = _queue(config)
    executor = named(queue, queue.executor_for(command or "true"))
    if command:
        executor.data["cmd"] = shlex.split(command) if isinstance(command, str) else list(command)
    executor.config = config
    return executor
