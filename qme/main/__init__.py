"""QueueMe 0.0.14's Python API: `from qme.main import Queue`.

A thin adapter over qme's one door, `qme.api.Queue` (`from qme import Queue`):
every task is run, recorded, found, rerun and deleted there, in qme's stores; this
module only gives the results QueueMe's shape, as QueueMe 0.0.14 documented and
tested them: `task.taskid`, `task.executor.name`, `task.load()` as
`{executor, uid, command, data}`, `task.export()`, `task.summary()`,
`task.filename`, `queue.config_dir`, `.config`, `.db`, `.database`, the
filesystem store by default, `clear(target, noprompt=True)`, a rerun that
replaces its task, and QueueMe's exceptions (`qme.exceptions`). Where QueueMe and
qme differ: docs/queueme.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import sys

from qme.api import Queue as QmeQueue
from qme.errors import AmbiguousTask, NoSuchTask, QmeError, UnknownExecutor
from qme.exceptions import (
    MultipleTasksExistError,
    NoTasksError,
    NotSupportedError,
    TaskNotFoundError,
    UnrecognizedTargetError,
)
from qme.main.config import Config
from qme.main.executor import named

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from qme.task import Task as QmeTask

__all__ = ["Queue", "Task"]

bot = logging.getLogger("qme.main")
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
VALID_DATABASES = ("sqlite", "postgresql", "mysql+pymysql", "filesystem")


class Queue:
    """QueueMe's Queue: a home (config_dir, default $QME_HOME or ~/.qme) and a
    store (database; default QME_DATABASE, then config.ini's, then filesystem)."""

    def __init__(self, config_dir: str | None = None, database: str | None = None):
        self.config = Config(config_dir)
        self.config_dir = os.path.dirname(self.config.configfile)
        self.initdb(database)

    def initdb(self, database: str | None) -> None:
        self.database = (
            database
            or os.environ.get("QME_DATABASE")
            or self.config.get("DEFAULT", "database")
            or "filesystem"
        )
        if not self.database.startswith(VALID_DATABASES):
            bot.warning("%s is not yet a supported type, saving to filesystem.", self.database)
            self.database = "filesystem"
        self.queue = QmeQueue(config_dir=self.config_dir, database=self.database)
        self.db = Database(self)

    # -- QueueMe's calls --------------------------------------------------------------

    def list(self, executor: str | None = None) -> list[list[str]]:
        """Rows, oldest first: [taskid] on the filesystem store, [taskid, command]
        on the others (as QueueMe's stores gave them)."""
        try:
            tasks = self.queue.list(executor, newest_first=False)
        except UnknownExecutor:
            return []
        if self.database == "filesystem":
            return [[task.id] for task in tasks]
        return [[task.id, task.command] for task in tasks]

    def get(self, taskid: str | None = None) -> Task:
        """A task by id (or a unique part of it); the last one run when None."""
        return Task(self, self._get(taskid))

    def clear(self, target: str | None = None, noprompt: bool = False) -> bool | None:
        """Delete every task (no target), one task (its id) or an executor's tasks,
        after asking unless noprompt."""
        if not target:
            if noprompt or confirm("This will delete all tasks, are you sure?"):
                self.queue.clear()
                return True
        elif re.search(UUID, target):
            if noprompt or confirm(f"This will delete task {target}, are you sure?"):
                return bool(self.queue.clear(self._get(target).id))
        elif target in self.db.iter_executors():
            if noprompt or confirm(f"This will delete all executor {target} tasks, are you sure?"):
                return bool(self.queue.clear(target))
        else:
            raise UnrecognizedTargetError(target, "to clear")
        return None

    def run(self, command: str | list[str], message: str | None = None) -> Task:
        """Run a command (split as a shell would, but run without one, as QueueMe
        did) and record it."""
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        with _captured_not_shown():
            done = self.queue.run(argv, message=message)
        task = Task(self, self.queue.get(done.id))
        bot.info(task.summary())
        return task

    def rerun(self, taskid: str | None = None, message: str | None = None) -> Task:
        """Run a task's command again in its directory; the result replaces the
        task under the same id (QueueMe's rerun; qme's keeps both)."""
        old = self._get(taskid)
        try:
            with _captured_not_shown():
                new = self.queue.rerun(old.id, message=message, replace=True)
            task = Task(self, self.queue.get(new.id))
        except NoSuchTask as exc:
            raise TaskNotFoundError(old.id) from exc
        bot.info(task.summary())
        return task

    def search(self, query: str) -> list[Task]:
        """Tasks whose command, message, output or error hold the query's words.
        Not on the filesystem store (QueueMe could not; qme's `Queue` can)."""
        if self.database == "filesystem":
            raise NotSupportedError("Search is only supported for relational databases.")
        try:
            hits = self.queue.search(query, limit=10_000)
        except QmeError:
            return []
        return [Task(self, hit.task) for hit in hits]

    def _get(self, taskid: str | None) -> QmeTask:
        try:
            return self.queue.get(taskid or None)
        except AmbiguousTask:
            raise MultipleTasksExistError(taskid) from None
        except NoSuchTask:
            raise TaskNotFoundError(taskid) from None
        except QmeError:
            if taskid:
                raise
            raise NoTasksError from None


class Task:
    """QueueMe's task: `taskid`, `executor` (name, actions, data), `load()`,
    `export()`, `summary()`, `run_action()`, and `filename` on the filesystem
    store. `task.task` is qme's own record of it."""

    def __init__(self, queue: Queue, task: QmeTask):
        self._queue = queue
        self.task = task
        self.taskid = task.id
        self.executor = named(
            queue.queue,
            task.executor,
            task.id,
            data=self.export(),
            runner=lambda name, **options: queue.queue.run_action(self.task, name, **options),
        )

    @property
    def command(self) -> str:
        return self.task.command

    @property
    def data(self) -> dict[str, Any]:
        return self._queue.queue.queueme_record(self.task)

    @property
    def filename(self) -> str:
        """The task's file (the filesystem store only, as in QueueMe)."""
        if self._queue.database != "filesystem":
            raise AttributeError(f"a task in a {self._queue.database} store has no filename")
        return os.path.join(self._queue.db.data_base, self.task.executor, f"{self.taskid}.json")

    def load(self) -> dict[str, Any]:
        """The record as stored now: {executor, uid, command, data}."""
        self.task = self._queue.queue.get(self.taskid)
        self.executor.data = self.export()
        return self.data

    def export(self) -> dict[str, Any]:
        """load()'s data: pwd, user, timestamp, message, output, error, returncode,
        pid, cmd, status, and the executor's own keys (Slurm: jobid …)."""
        return self.data["data"]

    def summary(self) -> str:
        return self.executor.summary()

    def run_action(self, name: str, **options: Any) -> Any:
        return self.executor.run_action(name, self.export(), **options)

    def __repr__(self) -> str:
        return f"<Task {self.taskid!r}>"


@contextlib.contextmanager
def _captured_not_shown():
    """QueueMe captured a command's output without showing it. qme's recorder gives
    the command this process's stdout and stderr, so for the run they point at
    /dev/null (the record still keeps every byte), while qme's own messages still
    reach the user through a copy of the real stderr."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    real_stderr = sys.stderr
    try:
        sys.stderr = open(os.dup(saved[1]), "w", buffering=1, errors="replace")  # noqa: SIM115
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        sys.stderr.close()
        sys.stderr = real_stderr
        for fd in (*saved, null):
            os.close(fd)


class Database:
    """QueueMe's `queue.db`: which store, where, and its calls by task id."""

    def __init__(self, queue: Queue):
        self._queue = queue
        self.database = queue.database
        kind, where = queue.queue.store_location()
        if kind == "filesystem":
            self.data_base = where
        elif kind == "sqlite":
            self.db = f"sqlite:///{where}"
        else:
            self.db = where

    def list_tasks(self, name: str | None = None) -> list[list[str]]:
        return self._queue.list(name)

    def get_task(self, taskid: str | None = None) -> Task:
        return self._queue.get(taskid)

    def delete_task(self, taskid: str) -> bool:
        return bool(self._queue.queue.clear(self._queue._get(taskid).id))

    def delete_executor(self, name: str) -> bool:
        return bool(self._queue.queue.clear(name))

    def clear(self) -> bool:
        self._queue.queue.clear()
        return True

    def iter_executors(self, fullpath: bool = False) -> list[str]:
        """The executors that have tasks (full paths of their folders with fullpath,
        on the filesystem store)."""
        names = sorted({task.executor for task in self._queue.queue.list()})
        if fullpath and self.database == "filesystem":
            return [os.path.join(self.data_base, name) for name in names]
        return names

    def search(self, query: str) -> list[Task]:
        return self._queue.search(query)


def confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal (QueueMe's prompt)."""
    while True:
        answer = input(f"{question} (y/n) ").strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
