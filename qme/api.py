"""The Python API: `Queue` runs, finds, reruns and clears tasks.

The CLI and the dashboard are thin layers over this class.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence

from qme import console, executors, pending
from qme.config import OPTIONS, Settings, parse_size
from qme.errors import AmbiguousTask, ConfigError, NoSuchTask, QmeError
from qme.origin import command_line, current_directory, current_user, hostname
from qme.store import SearchHit, Store, TaskQuery, describe, open_store
from qme.task import LOST, STREAMS, Task, new_uuid4
from qme.text import words

TASK_ID_CHARS = re.compile(r"[A-Za-z0-9._-]+")


class Queue:
    """A queue of tasks in the configured store.

    >>> q = Queue(config_dir="/tmp/qme")
    >>> task = q.run("echo hi")
    >>> q.search("hi")[0].task.id == task.id
    True
    """

    def __init__(self, config_dir: str | os.PathLike | None = None, database: str | None = None):
        self.settings = Settings.load(config_dir, database=database)
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The store, with the records that `qme run`s have finished but their
        writers not yet saved waited for (qme/pending.py), so that a task read right
        after its `qme run` returned is read as it ended."""
        pending.wait(self.settings.home)
        if self._store is None:
            from qme.store import spool

            self._store = open_store(self.settings)
            spool.deliver_or_warn(self.settings.home, self._store)
        return self._store

    @property
    def database(self) -> str:
        """The store's kind: sqlite, filesystem, postgresql or mysql."""
        return describe(self.settings)[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- running ------------------------------------------------------------------------

    def run(
        self,
        command: str | Sequence[str],
        *,
        message: str | None = None,
        executor: str | None = None,
        cwd: str | None = None,
    ) -> Task:
        """Run a command (a shell line, or an argv list) and record it.

        The command's stdio is this process's: output is shown and recorded.
        If recording fails, the command still runs and one warning is printed.
        """
        argv, text = command_line(command)
        return self._run(argv, text, message=message, executor=executor, cwd=cwd)

    def _run(self, argv, text, *, message, executor, cwd, rerun_of=None) -> Task:
        from qme.recorder.hooks import ExecutorHooks
        from qme.recorder.recording import record
        from qme.recorder.spawn import spawn
        from qme.store.writer import StoreWriter

        chosen = (
            executors.get(executor, self.settings)
            if executor
            else executors.for_command(text, self.settings)
        )
        task = Task(
            id=f"{chosen.name}-{new_uuid4()}",
            executor=chosen.name,
            command=text,
            argv=argv,
            cwd=os.path.abspath(cwd) if cwd else current_directory(),
            user=current_user(),
            host=hostname(),
            started=time.time(),
            message=message,
            rerun_of=rerun_of,
        )
        hooks = ExecutorHooks(chosen)
        hooks.prepare(task)
        try:
            limit = self.settings.max_output
        except ConfigError:  # reported by the store, which reads the same file
            limit = parse_size(OPTIONS["max_output"].default)
        writer = StoreWriter(lambda: open_store(self.settings), self.settings.home)
        if record(task, spawn(argv, cwd), writer, limit, hooks):
            console.warn(writer.message())
        task.queue = self
        return task

    def rerun(
        self, task_id: str | None = None, *, message: str | None = None, here: bool = False
    ) -> Task:
        """Run a task's command again, in its directory (or this one when here is
        true), as a new task linked to the old one by `rerun_of`."""
        old = self.get(task_id, streams=False)
        cwd = os.getcwd() if here else old.cwd
        if not os.path.isdir(cwd):
            raise QmeError(
                f"cannot rerun {old.short_id}: its directory {cwd} no longer exists "
                "(--here runs it in the current directory)"
            )
        return self._run(
            old.argv,
            old.command,
            message=message,
            executor=old.executor,
            cwd=cwd,
            rerun_of=old.id,
        )

    # -- finding ------------------------------------------------------------------------

    def resolve(self, query: str) -> str:
        """The full id of the one task whose id, or uuid part, starts with query."""
        if not TASK_ID_CHARS.fullmatch(query):
            raise NoSuchTask(query)
        found = self.store.match(query, limit=6)
        if query in found:
            return query
        if not found:
            raise NoSuchTask(query)
        if len(found) > 1:
            raise AmbiguousTask(query, found)
        return found[0]

    def get(self, task_id: str | None = None, *, streams: bool = True) -> Task:
        """A task by id or unique prefix; the most recently started one when None."""
        if task_id is None:
            latest = self.store.list(TaskQuery(limit=1))
            if not latest:
                raise QmeError("there are no tasks yet")
            task_id = latest[0].id
        else:
            task_id = self.resolve(task_id)
        return self._attach([self.store.get(task_id, streams=streams)])[0]

    def list(
        self,
        executor: str | None = None,
        *,
        status: str | None = None,
        cwd: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        session: str | None = None,
        host: str | None = None,
        user: str | None = None,
        newest_first: bool = True,
        offset: int = 0,
    ) -> list[Task]:
        """Tasks (without their output), newest first unless told otherwise; the
        first offset of them skipped (paging). host and user: recorded on that
        machine, by that user (a store shared by many)."""
        if executor is not None:
            executors.executor_class(executor)  # unknown names are an error
        query = TaskQuery(
            executor, status, cwd, since, until, limit, session, offset, host=host, user=user
        )
        return self._attach(self.store.list(query, newest_first=newest_first))

    def count(self, executor: str | None = None, *, limit: int | None = None, **filters) -> int:
        """How many tasks list() would give with the same filters (status=, cwd=,
        since=, until=, session=, host=, user=), counting at most limit (a cap that keeps counting
        cheap on huge stores)."""
        if executor is not None:
            executors.executor_class(executor)  # unknown names are an error
        return self.store.count(TaskQuery(executor, limit=limit, **filters))

    def recent(self, since: float) -> list[Task]:
        """Tasks (without their output) started at or after since, or not finished
        (running, pending): what a live view polls for."""
        return self._attach(self.store.recent(since))

    def read(self, task_id: str, stream: str = "output", offset: int = 0) -> bytes:
        """A task's raw 'output' or 'error' from byte offset on (a running task's
        output so far)."""
        if stream not in STREAMS:
            raise QmeError(f"no stream '{stream}' (use one of {', '.join(STREAMS)})")
        return self.store.read(self.resolve(task_id), stream, offset)

    def data_version(self) -> object:
        """A cheap value that changes when another process changes the store (None
        when the store cannot tell, and must be polled)."""
        return self.store.data_version()

    def listen(self):
        """A listener whose wait(timeout) returns True as soon as another process
        announces a change (PostgreSQL's LISTEN/NOTIFY), or None when the store
        cannot announce changes and data_version() must be polled."""
        return self.store.listen()

    def search(
        self,
        *terms: str,
        executor: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
        rank: bool = False,
    ) -> list[SearchHit]:
        """Tasks whose command, message, output or error contain every term as a
        word (a term ending in '*': as the start of a word), case-insensitively,
        newest first or by relevance."""
        wanted = [w for term in terms for w in words(term)]
        if not wanted:
            raise QmeError("nothing to search for: give at least one word")
        hits = self.store.search(
            wanted, executor=executor, limit=limit, rank=rank, status=status, offset=offset
        )
        self._attach([hit.task for hit in hits])
        return hits

    def clear(self, target: str | None = None) -> int:
        """Delete one task (id or prefix), an executor's tasks (its name), or all
        (None). Returns how many were deleted."""
        if target is None:
            return self.store.clear()
        if target in executors.names():
            return self.store.clear(target)
        return self.store.delete([self.resolve(target)])

    def export(
        self,
        out,
        executor: str | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
        as_json: bool = False,
    ) -> int:
        """Write the tasks (of one executor, started in a time range), with every
        field and their output, to the text file out, oldest first: JSON Lines, or
        one JSON document with as_json. Returns how many (see qme/transfer.py)."""
        from qme import transfer

        if executor is not None:
            executors.executor_class(executor)  # unknown names are an error
        query = TaskQuery(executor, since=since, until=until)
        return transfer.export(self.store, out, query, as_json=as_json)

    def import_from(self, source, *, replace: bool = False):
        """Add the tasks of an export (a text file or lines) as they were; tasks
        already in the store are skipped, or replaced. Returns (added, skipped)."""
        from qme import transfer

        return transfer.import_tasks(self.store, transfer.read_export(source), replace)

    def _attach(self, tasks: list[Task]) -> list[Task]:
        """Give tasks their queue, and let each executor bring the status of its
        tasks up to date (a dead recorder makes a task lost; a Slurm job's state
        is asked of Slurm), saving what changed."""
        for task in tasks:
            task.queue = self
        for task in executors.refresh(tasks, self.settings):
            if task.status == LOST and self._ended_meanwhile(task):
                continue
            try:
                self.store.update(task)
            except QmeError as exc:
                console.debug(f"could not save the new status of {task.id}: {exc}")
        return tasks

    def _ended_meanwhile(self, task: Task) -> bool:
        """Whether the task, read as running and found lost, has been saved as ended
        since it was read (its writer finished it): then it takes that state."""
        try:
            stored = self.store.get(task.id, streams=False)
        except QmeError:
            return False
        if not stored.finished or stored.status == LOST:
            return False
        for name in stored.FIELDS:
            if name not in (*STREAMS, "queue"):
                setattr(task, name, getattr(stored, name))
        return True

    def run_action(self, task: Task | str | None, name: str, **options):
        """Run an action of a task's executor (a task, an id or prefix, or None for
        the last task): `queue.run_action(None, "status")`. Returns data (a str,
        list or dict). What the action changes in the task (its status) is saved,
        even when the action then fails (a job Slurm no longer knows is lost)."""
        if not isinstance(task, Task):
            task = self.get(task, streams=False)
        executor = executors.get(task.executor, self.settings)
        before = _status_of(task)
        try:
            return executor.run_action(task, name, **options)
        finally:
            if _status_of(task) != before:
                self.store.update(task)


def _status_of(task: Task) -> tuple:
    """What an action may change in a task, to know whether to save it."""
    import json

    data = json.dumps(task.data, sort_keys=True, default=str)
    return task.status, task.returncode, task.signal, task.ended, data
