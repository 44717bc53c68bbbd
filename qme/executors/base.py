"""What every executor is: a name, a rule saying which commands it takes, its
settings, hooks around running a command, a status refresh, and actions."""

from __future__ import annotations

import os
from collections import namedtuple

from qme import liveness, pending
from qme.config import Settings
from qme.errors import NoSuchAction, QmeError
from qme.task import LOST, RUNNING, STOPPED, Task

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# An action an executor offers: what it does (one line), the method that does it,
# and whether it streams (called with write=callable, it writes as it goes and
# returns when done; without, it returns what there is now).
Action = namedtuple("Action", "description method streams")


def action(description: str, *, name: str | None = None, streams: bool = False):
    """Mark an executor method as an action: `method(self, task, **options)` returns
    data (a str, a list or a dict) that the CLI renders and the dashboard serves as
    JSON. The action's name is the method's, or `name`."""

    def mark(method: Callable[..., Any]) -> Callable[..., Any]:
        method.qme_action = (name or method.__name__, Action(description, method.__name__, streams))
        return method

    return mark


class Executor:
    name: str
    # A regular expression matched against the start of the command line; None
    # for the fallback executor, which takes whatever no other executor claims.
    match: str | None = None
    # Setting name -> help, for `qme config --set NAME KEY VALUE` and QME_NAME_KEY.
    settings: dict[str, str] = {}  # noqa: RUF012 - read-only class data
    # Action name -> Action, collected from the methods marked with @action.
    actions: dict[str, Action] = {}  # noqa: RUF012
    # True when finish() needs what the command printed: task.output and
    # task.error then hold the start of it (see qme.recorder.hooks.EXECUTOR_READS).
    reads_output = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        found: dict[str, Action] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                marked = getattr(value, "qme_action", None)
                if marked:
                    found[marked[0]] = marked[1]
        cls.actions = found

    def __init__(self, config: Settings):
        self.config = config

    def setting(self, key: str, default: str | None = None) -> str | None:
        return self.config.executor_setting(self.name, key, default)

    def seconds_setting(self, key: str, default: str) -> float:
        """A setting that is a number of seconds (refresh_seconds)."""
        value = self.setting(key, default)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise QmeError(f"{self.name} {key} is a number of seconds, not '{value}'") from None

    def prepare(self, task: Task) -> None:
        """Called before the command starts; may fill task.data."""

    def finish(self, task: Task) -> None:
        """Called when the command has ended, before the task is saved."""

    def refresh(self, tasks: list[Task]) -> list[Task]:
        """Bring the status of these tasks (all of this executor) up to date, in one
        batch; return the ones that changed, which the caller saves.

        By default a task still `running` on this machine whose recorder has died
        (kill -9, power loss) becomes `lost`."""
        return mark_lost(tasks, self.config.home)

    def run_action(self, task: Task, name: str, **options: Any) -> Any:
        found = self.actions.get(name)
        if found is None:
            raise NoSuchAction(task.executor, name, sorted(self.actions))
        return getattr(self, found.method)(task, **options)


def mark_lost(tasks: list[Task], home: str) -> list[Task]:
    """Tasks running on this machine whose recorder is gone, and whose record is not
    being finished by a writer child either (qme/pending.py), become lost."""
    here = os.uname().nodename
    lost = []
    for task in tasks:
        if (
            task.status in (RUNNING, STOPPED)
            and task.host == here
            and not liveness.is_alive(task.recorder)
            and not pending.being_written(home, task.recorder)
        ):
            task.status = LOST
            lost.append(task)
    return lost
