"""What the dashboard does to a task beyond the Queue API: delete (only a finished
task), rerun (in a process of its own), and its executor's actions as the page
shows them.

Plain functions over the Queue API (no web framework here); they raise QmeError
subclasses that the routes turn into JSON errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from qme.api import Queue
from qme.errors import Refused
from qme.task import Task

RERUN_WAIT_SECONDS = 3.0  # how long a rerun request waits to name the new task


def delete(queue: Queue, task: Task) -> str:
    if not task.finished:
        raise Refused(f"task {task.short_id} is still {task.status}: cancel it first")
    queue.clear(task.id)
    return f"deleted task {task.short_id}"


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
    return {name: found.description for name, found in sorted(queue.task_actions(task).items())}
