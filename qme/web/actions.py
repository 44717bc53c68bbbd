"""What the dashboard does to a task: delete, cancel, rerun, and the executor's own actions.

Plain functions over the Queue API (no web framework here); they raise QmeError
subclasses that the routes turn into JSON errors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from qme import executors, liveness
from qme.api import Queue, hostname
from qme.errors import QmeError, UnknownExecutor
from qme.task import RUNNING, Task

RERUN_WAIT_SECONDS = 3.0  # how long a rerun request waits to name the new task


class Refused(QmeError):
    """The action does not apply to the task as it is now (HTTP 409)."""


def delete(queue: Queue, task: Task) -> str:
    if not task.finished:
        raise Refused(f"task {task.short_id} is still {task.status}: cancel it first")
    queue.clear(task.id)
    return f"deleted task {task.short_id}"


def cancel(queue: Queue, task: Task) -> tuple[str, object]:
    """(what was done, the executor's answer). An executor with its own `cancel`
    action (Slurm: scancel) does it; otherwise SIGTERM to the task's command: its
    process group when it leads one (it ran on a pty), else the process itself,
    only on this machine and while its recorder lives (so that the pid cannot
    have been reused by another process)."""
    if "cancel" in executor_actions(queue, task) and not task.finished:
        return f"cancelled task {task.short_id}", queue.run_action(task, "cancel")
    if task.status != RUNNING:
        raise Refused(f"task {task.short_id} is not running (it is {task.status})")
    here = hostname()
    if task.host != here:
        raise Refused(
            f"task {task.short_id} runs on {task.host}, and this dashboard on {here}: "
            f"cancel it on {task.host} (kill {task.pid})"
        )
    if not task.pid or not liveness.is_alive(task.recorder):
        raise Refused(f"task {task.short_id} has no live process to cancel")
    try:
        if os.getpgid(task.pid) == task.pid:
            os.killpg(task.pid, signal.SIGTERM)
            target = "process group"
        else:
            os.kill(task.pid, signal.SIGTERM)
            target = "process"
    except ProcessLookupError:
        raise Refused(f"task {task.short_id} has just ended") from None
    except PermissionError:
        raise Refused(f"not allowed to signal process {task.pid} of task {task.short_id}") from None
    return f"sent SIGTERM to task {task.short_id} ({target} {task.pid})", None


def rerun(queue: Queue, task: Task, wait: float = RERUN_WAIT_SECONDS) -> Task | None:
    """Start `qme rerun ID` in the background (the dashboard never runs commands in
    its own process) and return the new task once it is recorded, or None if it
    has not appeared within `wait` seconds."""
    if not os.path.isdir(task.cwd):
        raise Refused(
            f"cannot rerun task {task.short_id}: its directory {task.cwd} does not exist here"
        )
    settings = queue.settings
    argv = [sys.executable, "-m", "qme", "--config_dir", settings.home]
    argv += ["--database", settings.get("database"), "rerun", task.id]
    started = time.time()
    # Its own session: stopping the dashboard with Ctrl-C does not stop the rerun.
    child = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    threading.Thread(target=child.wait, name="qme-rerun-reaper", daemon=True).start()
    while True:
        ended = child.returncode is not None  # read first: a task is recorded before exit
        for candidate in queue.recent(started):
            if candidate.rerun_of == task.id and candidate.started >= started:
                return candidate
        if ended:
            raise Refused(f"qme rerun {task.short_id} failed (exit status {child.returncode})")
        if time.time() > started + wait:
            return None
        time.sleep(0.05)


def executor_actions(queue: Queue, task: Task) -> dict[str, str]:
    """The actions the task's executor offers: name -> what it does."""
    try:
        cls = executors.executor_class(task.executor, queue.settings.home)
    except UnknownExecutor:
        return {}
    return {name: found.description for name, found in sorted(cls.actions.items())}
