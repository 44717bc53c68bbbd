"""The Python API: `Queue` is the one door to qme.

The CLI, the dashboard and the shell session all go through it: it runs, finds,
reruns, cancels and clears tasks, owns its home's executor registry, delivers the
spool and checks settings. This module imports only what `qme run` needs before
its command starts; everything else is imported where it is used.
"""

from __future__ import annotations

import os
import time

from qme import console
from qme.config import Settings
from qme.errors import AmbiguousTask, NoSuchTask, QmeError, Refused
from qme.task import LOST, RUNNING, STREAMS, Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from qme.executors import Registry
    from qme.executors.base import Action
    from qme.store import SearchHit, Store

# What a task id or prefix may contain (a query with anything else matches nothing).
TASK_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
READ_SIZE = 1 << 20  # bytes per read when a stream is copied out (Queue.stream_output)


def shell_hooks(kind: str) -> str:
    """The shell integration script for bash, zsh or fish (what `qme init` prints)."""
    from qme.session.proxy import hook_path

    with open(hook_path(kind), encoding="utf-8") as handle:
        return handle.read()


class Synced:
    """What `Queue.sync()` did: records delivered, waiting before, left, and where
    (all for this queue's store); elsewhere: records that wait for other stores."""

    def __init__(self, delivered: int, waiting: int, left: int, folder: str, elsewhere: int = 0):
        self.delivered, self.waiting, self.left, self.folder = delivered, waiting, left, folder
        self.elsewhere = elsewhere


class Spooled:
    """A record waiting in the spool: its file, its task (None when unreadable)
    and the store it waits for (qme.store.identity(); None: any, by `qme sync`).
    Unpacks as (path, task)."""

    def __init__(self, path: str, task: Task | None, store: str | None):
        self.path, self.task, self.store = path, task, store

    def __iter__(self):
        return iter((self.path, self.task))


class Queue:
    """A queue of tasks in the configured store.

    >>> q = Queue(config_dir="/tmp/qme")
    >>> task = q.run("echo hi")
    >>> q.search("hi")[0].task.id == task.id
    True
    """

    def __init__(
        self,
        config_dir: str | os.PathLike | None = None,
        database: str | None = None,
        *,
        log_level: str | None = None,
        session: str | None = None,
    ):
        """session: the `qme on` session this queue is used from (the CLI gives
        $QME_SESSION): references like @1 count its tasks first (see resolve)."""
        self.settings = Settings.load(config_dir, database=database, log_level=log_level)
        self.session = session or None
        self._store: Store | None = None
        self._executors: Registry | None = None

    @property
    def store(self) -> Store:
        """The store, with the records that `qme run`s have finished but their
        writers not yet saved waited for (qme/pending.py), so that a task read right
        after its `qme run` returned is read as it ended."""
        from qme import pending

        pending.wait(self.settings.home)
        if self._store is None:
            from qme import private
            from qme.store import identity, open_store, spool

            private.tighten_home_and_say(self.settings.home, console.warn)
            # A reader creates no store: one that does not exist yet reads as empty.
            self._store = open_store(self.settings, create=False)
            spool.deliver_or_warn(self.settings.home, self._store, identity(self.settings))
        return self._store

    @property
    def executors(self) -> Registry:
        """This home's executors: the built-ins and the plugins cached in this home."""
        if self._executors is None:
            from qme.executors import Registry

            self._executors = Registry(self.settings)
        return self._executors

    @property
    def database(self) -> str:
        """The store's kind: sqlite, filesystem, postgresql or mysql."""
        return self.store_location()[0]

    def store_location(self) -> tuple[str, str]:
        """(kind, where) of the configured store, a server's password hidden."""
        from qme.store import describe

        return describe(self.settings)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- executors ----------------------------------------------------------------------

    def executor_names(self) -> list[str]:
        return self.executors.names()

    def actions(self, executor: str) -> dict[str, Action]:
        """The actions an executor offers: name -> Action (description, streams)."""
        return dict(self.executors.executor_class(executor).actions)

    def executor_for(self, command: str | Sequence[str]) -> str:
        """The name of the executor that takes this command (as run() takes it)."""
        from qme.origin import command_line

        return self.executors.for_command(command_line(command)[1]).name

    # -- running ------------------------------------------------------------------------

    def run(
        self,
        command: str | Sequence[str],
        *,
        message: str | None = None,
        executor: str | None = None,
        cwd: str | None = None,
        writer_process: bool = False,
    ) -> Task:
        """Run a command (a shell line, or an argv list) and record it.

        The command's stdio is this process's: output is shown and recorded.
        If recording fails, the command still runs and one warning is printed.
        writer_process: hand the record to a process of its own, which also picks
        the executor when none is named (what `qme run` does, so that neither the
        command nor its exit waits for the store); the task's id then lacks the
        executor's name unless one is named.
        """
        from qme.origin import command_line

        argv, text = command_line(command)
        return self._run(argv, text, message, executor, cwd, writer_process)

    def rerun(
        self,
        task_id: str | None = None,
        *,
        message: str | None = None,
        here: bool = False,
        replace: bool = False,
        writer_process: bool = False,
    ) -> Task:
        """Run a task's command again, in its directory (or this one when here is
        true), as a new task linked to the old one by `rerun_of`; with replace, as
        the old task itself (its id; the old record is deleted as the command starts:
        QueueMe 0.0.14's rerun, which `qme.main` keeps). writer_process: as for
        run()."""
        old = self.get(task_id, streams=False)
        cwd = os.getcwd() if here else old.cwd
        if not os.path.isdir(cwd):
            raise QmeError(
                f"cannot rerun {old.short_id}: its directory {cwd} no longer exists "
                "(--here runs it in the current directory)"
            )
        link = {"replaces": old.id} if replace else {"rerun_of": old.id}
        from qme.session.rerun import rerun_argv  # a session's aliases and functions

        argv = rerun_argv(old.argv, old.command, old.data)
        return self._run(argv, old.command, message, old.executor, cwd, writer_process, **link)

    def _run(
        self, argv, text, message, executor, cwd, writer_process=False, rerun_of=None, replaces=None
    ):
        """Begin the task, start the command, record it until it ends. The executor
        is checked before anything runs: an unknown name never runs the command."""
        from qme.recorder.spawn import spawn

        chosen = None
        if executor or not writer_process:
            chosen = self.executors.get(executor) if executor else self.executors.for_command(text)
        started = time.time()
        child = spawn(argv, cwd)  # first: the rest of the start-up overlaps the command's
        task = Task.begin(
            text,
            argv,
            executor=chosen.name if chosen else "",
            cwd=os.path.abspath(cwd) if cwd else None,
            started=started,
            message=message,
            rerun_of=rerun_of,
        )
        if replaces:
            task.id = replaces
            self.store.delete([replaces])
        if writer_process:
            from qme import liveness
            from qme.recorder.handoff import ChildWriter

            # The writer child is forked from this process: it must not inherit an
            # open SQLite connection (SQLite's locks are per process; a child's own
            # connection to the same file would share the parent's lock state and
            # let writers overwrite each other). Reopened when next needed.
            self.close()

            task.recorder = liveness.token()
            writer, hooks = ChildWriter(self.settings, lock_name=task.recorder), None
        else:
            from qme import redact
            from qme.recorder.hooks import ExecutorHooks
            from qme.store import identity, open_store
            from qme.store.writer import StoreWriter

            writer = StoreWriter(
                lambda: open_store(self.settings),
                self.settings.home,
                store_id=identity(self.settings),
                redactor=redact.for_settings(self.settings),
            )
            hooks = ExecutorHooks(chosen)
            hooks.prepare(task)
        from qme.recorder.recording import record

        error = record(task, child, writer, self._max_output(), hooks)
        if error:
            console.warn(error)
        if not writer_process:  # else the writer process does it
            from qme.recorder.notifier import Notifier

            notifier = Notifier(self.settings)
            notifier.ended(task)  # notify, or hand a job that goes on to the watcher
            notifier.close()
        task.queue = self
        return task

    def _max_output(self) -> int:
        from qme.config import OPTIONS, parse_size
        from qme.errors import ConfigError

        try:
            return self.settings.max_output
        except ConfigError:  # reported by the store's writer, which reads the same file
            return parse_size(OPTIONS["max_output"].default)

    # -- notifications ------------------------------------------------------------------

    def notification(self, task: Task) -> dict[str, Any] | None:
        """The notification a task's end gives (title, body, url, good, id), or None
        when it gives none (see qme.notify.due: notify_after, notify_cancelled)."""
        from qme import notify

        if not notify.due(task, self.settings):
            return None
        return notify.for_task(task, self.settings).to_dict()

    def notify_test(self) -> dict[str, str]:
        """Send a test message through every configured channel: this process's
        terminal and the apprise URLs (notify_urls). Returns channel -> what
        happened. (An open dashboard shows its own, in the browser, as tasks end.)"""
        from qme import notify
        from qme.origin import hostname

        note = notify.Message(
            "qme: test notification",
            f"qme notify test\nthis is how qme says a task has ended, on {hostname()}",
            None,
            True,
        )
        terminal = notify.Terminal.controlling()
        try:
            return notify.send(note, self.settings, terminal, session=True)
        finally:
            if terminal is not None:
                terminal.close()

    def watching(self) -> dict[str, Any]:
        """The watcher of this home: its pid (None: none runs), and the tasks it follows."""
        from qme.recorder import watcher

        return {
            "pid": watcher.pid(self.settings.home),
            "tasks": watcher.watched(self.settings.home),
        }

    def record_session(self, shell: str | None = None) -> int:
        """Run an interactive shell (bash, zsh or fish; default $SHELL) on this
        terminal, each command typed in it recorded as a task of one session, until
        it exits (what `qme on` starts). Returns the exit status for qme."""
        from qme.session.proxy import run_session

        return run_session(self.settings, shell)

    def cancel(self, task: Task | str | None) -> tuple[str, Any]:
        """Cancel a task (a task, an id or prefix, or None for the last one): its
        executor's `cancel` action where it has one (Slurm: scancel), else SIGTERM
        to its command, the process group when it leads one (it ran on a pty). Only
        on the machine it runs on, and only while its recorder lives, so that the
        pid cannot have been reused. Returns (what was done, the executor's answer);
        raises Refused when the task cannot be cancelled as it is."""
        import signal

        from qme import liveness
        from qme.origin import hostname

        if not isinstance(task, Task):
            task = self.get(task, streams=False)
        if not task.finished and "cancel" in self.task_actions(task):
            return f"cancelled task {task.short_id}", self.run_action(task, "cancel")
        if task.status != RUNNING:
            raise Refused(f"task {task.short_id} is not running (it is {task.status})")
        here = hostname()
        if task.host != here:
            raise Refused(
                f"task {task.short_id} runs on {task.host}, not on this machine ({here}): "
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
            raise Refused(
                f"not allowed to signal process {task.pid} of task {task.short_id}"
            ) from None
        return f"sent SIGTERM to task {task.short_id} ({target} {task.pid})", None

    def task_actions(self, task: Task) -> dict[str, Action]:
        """The actions of the task's executor; none when it is not installed here."""
        from qme.errors import UnknownExecutor

        try:
            return self.actions(task.executor)
        except UnknownExecutor:
            return {}

    # -- finding ------------------------------------------------------------------------

    def resolve(self, query: str) -> str:
        """The full id of the one task whose id, or uuid part, starts with query; or
        of a reference: @1 the most recent task, @2 the one before, and so on (in a
        session, see Queue(session=), counted among its tasks first, then those before
        it); @@N counts every task, whatever the session."""
        if query.startswith("@"):
            n, everywhere = _reference(query)
            return self.recent_task(n, everywhere=everywhere).id
        if not query or not TASK_ID_CHARS.issuperset(query):
            raise NoSuchTask(query)
        found = self.store.match(query, limit=6)
        if query in found:
            return query
        if not found:
            raise NoSuchTask(query)
        if len(found) > 1:
            raise AmbiguousTask(query, found)
        return found[0]

    def recent_task(self, n: int = 1, *, everywhere: bool = False, finished: bool = False) -> Task:
        """The n-th most recently started task (without its streams): the rule every
        reference (@n, @@n) follows. In this queue's session (unless everywhere), its
        tasks come first, then those started before or beside it; finished: only
        tasks that have ended count (what `qme out` shows by default)."""
        from itertools import islice

        tasks = self._newest(None if everywhere else self.session)
        if finished:
            tasks = (task for task in tasks if task.finished)
        found = next(islice(tasks, n - 1, None), None)
        if found is None:
            kind = "finished tasks" if finished else "tasks"
            raise NoSuchTask(f"@{'@' if everywhere else ''}{n}", f"there are fewer than {n} {kind}")
        return self._attach([found])[0]

    def _newest(self, session: str | None):
        """Tasks newest first, a page at a time; those of session first when given."""
        from qme.store import TaskQuery

        def pages(query, skip=lambda task: False):
            offset, size = 0, 16
            while True:
                page = self.store.list(query._replace(limit=size, offset=offset))
                yield from (task for task in page if not skip(task))
                if len(page) < size:
                    return
                offset, size = offset + size, min(size * 4, 4096)

        if session is not None:
            yield from pages(TaskQuery(session=session))
        yield from pages(TaskQuery(), lambda task: session is not None and task.session == session)

    def get(self, task_id: str | None = None, *, streams: bool = True) -> Task:
        """A task by id or unique prefix; the most recently started one when None."""
        from qme.store import TaskQuery

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
        tag: str | None = None,
    ) -> list[Task]:
        """Tasks (without their output), newest first unless told otherwise; the
        first offset of them skipped (paging). host and user: recorded on that
        machine, by that user (a store shared by many); tag: that have this tag."""
        if executor is not None:
            self.executors.executor_class(executor)  # unknown names are an error
        from qme.store import TaskQuery

        tag = None if tag is None else normal_tag(tag)
        query = TaskQuery(
            executor, status, cwd, since, until, limit, session, offset, host, user, tag
        )
        return self._attach(self.store.list(query, newest_first=newest_first))

    def count(self, executor: str | None = None, *, limit: int | None = None, **filters) -> int:
        """How many tasks list() would give with the same filters (status=, cwd=,
        since=, until=, session=, host=, user=), counting at most limit (a cap that keeps counting
        cheap on huge stores)."""
        if executor is not None:
            self.executors.executor_class(executor)  # unknown names are an error
        from qme.store import TaskQuery

        if filters.get("tag") is not None:
            filters["tag"] = normal_tag(filters["tag"])
        return self.store.count(TaskQuery(executor, limit=limit, **filters))

    def recent(self, since: float) -> list[Task]:
        """Tasks (without their output) started at or after since, or not finished
        (running, pending): what a live view polls for."""
        return self._attach(self.store.recent(since))

    def read(
        self, task_id: str, stream: str = "output", offset: int = 0, size: int | None = None
    ) -> bytes:
        """A task's raw 'output' or 'error' from byte offset on (a running task's
        output so far), at most size bytes of it (None: all)."""
        if stream not in STREAMS:
            raise QmeError(f"no stream '{stream}' (use one of {', '.join(STREAMS)})")
        return self.store.read(self.resolve(task_id), stream, offset, size)

    def stream_output(self, task: Task | str | None, stream: str = "output", size: int = READ_SIZE):
        """A task's stored 'output' or 'error' (a task, an id, a reference, or None:
        the last finished task, see recent_task), as bytes objects of at most size
        bytes each, read from the store one after another: memory stays flat
        however long the output is."""
        if stream not in STREAMS:
            raise QmeError(f"no stream '{stream}' (use one of {', '.join(STREAMS)})")
        if task is None:
            task = self.recent_task(finished=True)
        elif not isinstance(task, Task):
            task = self.get(task, streams=False)
        yield from self.store.stream(task.id, stream, size)

    # -- notes and tags -----------------------------------------------------------------

    def note(self, task: Task | str | None, text: str | None, *, append: bool = False) -> Task:
        """Give a task (a task, an id, a reference, or None: the last one) its note,
        replacing the one it had (`qme run -m` gives the first), or adding text as
        a line of its own with append; '' or None removes it. The note is the task's
        `message`: searched, shown and exported with it. Returns the task as stored."""
        task = self.get(task.id if isinstance(task, Task) else task, streams=False)
        text = (text or "").strip("\n")
        if append and task.message and text:
            text = f"{task.message}\n{text}"
        elif append and not text:
            text = task.message or ""
        self.store.annotate(task.id, message=text)
        return self.get(task.id, streams=False)

    def tag(
        self,
        task: Task | str | None,
        add: Sequence[str] = (),
        *,
        remove: Sequence[str] = (),
        replace: bool = False,
    ) -> Task:
        """Add tags to a task (a task, an id, a reference, or None: the last one) and
        take others off; with replace, its tags become those added. A tag is a word
        (no spaces, quotes, backslashes or commas; at most 64 characters), kept in
        lower case. Returns the task as stored."""
        task = self.get(task.id if isinstance(task, Task) else task, streams=False)
        added, removed = [normal_tag(t) for t in add], {normal_tag(t) for t in remove}
        kept = [] if replace else task.tags
        tags = [t for t in dict.fromkeys([*kept, *added]) if t not in removed]
        if tags != task.tags:
            self.store.annotate(task.id, tags=tags)
        return self.get(task.id, streams=False)

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
        cwd: str | None = None,
        session: str | None = None,
        host: str | None = None,
    ) -> list[SearchHit]:
        """Tasks whose command, message, output or error contain every term as a
        word (a term ending in '*': as the start of a word), case-insensitively,
        newest first or by relevance. Each hit's line has \x02 before and \x03
        after each matched word; qme.text.marked_spans(hit.line) gives the plain
        line and the (start, end) offsets of those words. cwd, session, host: only
        tasks run in that directory, that shell session, on that machine."""
        from qme.text import words

        wanted = [w for term in terms for w in words(term)]
        if not wanted:
            raise QmeError("nothing to search for: give at least one word")
        where = {k: v for k, v in {"cwd": cwd, "session": session, "host": host}.items() if v}
        hits = self.store.search(
            wanted, executor=executor, limit=limit, rank=rank, status=status, offset=offset, **where
        )
        self._attach([hit.task for hit in hits])
        return hits

    def search_count(
        self,
        *terms: str,
        limit: int,
        executor: str | None = None,
        status: str | None = None,
        cwd: str | None = None,
        session: str | None = None,
        host: str | None = None,
    ) -> int:
        """How many tasks search() finds with the same terms and filters, counting at
        most limit of them (a cap that keeps counting cheap on huge stores)."""
        from qme.text import words

        wanted = [w for term in terms for w in words(term)]
        if not wanted:
            raise QmeError("nothing to search for: give at least one word")
        where = {"cwd": cwd, "session": session, "host": host}
        return self.store.search_count(
            wanted, limit=limit, executor=executor, status=status, **where
        )

    def stats(self, since: float | None = None, host: str | None = None):
        """Counts for the statistics page (qme.store.stats.Stats) over the tasks
        started at or after since (default: the last 90 days), on host when given."""
        if since is None:
            since = time.time() - 90 * 86400
        return self.store.stats(since, host)

    def redact(self, pattern: str | None = None) -> int:
        """Replace what matches pattern (a regular expression; None: the built-in
        secrets' patterns and the `redact` setting's) by [redacted] in every stored
        task's command, argv, message and output, the search index included, as
        new records are redacted before they are stored. Returns how many tasks
        changed."""
        from qme import redact
        from qme.config import parse_value

        if pattern is None:
            redactor = redact.for_settings(self.settings)
        else:
            if not pattern.strip():
                raise QmeError("nothing to redact: give a pattern")
            extra = parse_value("redact", pattern, "the pattern given")
            redactor = redact.Redactor(extra, builtin=False)
        return self.store.redact(redactor)

    # -- who sees what: a PostgreSQL store shared by many users ------------------------

    def secure_store(self, grant_to: str = "PUBLIC") -> list[str]:
        """Make this PostgreSQL store keep each database role's tasks apart (row-level
        security; what `qme admin init-postgres` does, run by the tables' owner or a
        superuser) and let grant_to (a role, or PUBLIC) use it. Returns what was
        done, one line each. Refused on any other store."""
        return self.store.secure(grant_to)

    def share(self, task_id: str | None, group: str, *, remove: bool = False) -> bool:
        """Let the members of a database role (a group, or one user) read one of your
        tasks on a PostgreSQL store set up by `secure_store()`; with remove, no
        longer. False when nothing changed. Refused on any other store."""
        store = self.store
        if store.name == "postgresql":  # elsewhere refused before any task is looked for
            task_id = self.get(task_id, streams=False).id
        return store.share(task_id, group, remove=remove)

    def shares(self, task_id: str | None) -> list[str]:
        """The roles a task is shared with (PostgreSQL; none elsewhere)."""
        return self.store.shares(self.get(task_id, streams=False).id)

    def clear(self, target: str | None = None) -> int:
        """Delete one task (id or prefix), an executor's tasks (its name), or all
        (None). Returns how many were deleted."""
        if target is None:
            return self.store.clear()
        if target in self.executor_names():
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
        tasks: Sequence[Task | str] | None = None,
        session: str | None = None,
    ) -> int:
        """Write the tasks (of one executor, of one session, started in a time range;
        or those named in tasks), with every field and their output, to the text file
        out, oldest first: JSON Lines, or one JSON document with as_json. Returns how
        many (see qme/transfer.py)."""
        from qme import transfer
        from qme.store import TaskQuery

        if tasks:
            chosen = self._chosen(tasks, executor, session, since, until)
            return transfer.export(self.store, out, as_json=as_json, tasks=chosen)
        if executor is not None:
            self.executors.executor_class(executor)  # unknown names are an error
        query = TaskQuery(executor, since=since, until=until, session=session)
        return transfer.export(self.store, out, query, as_json=as_json)

    def export_as(
        self,
        out,
        kind: str,
        tasks: Sequence[Task | str] | None = None,
        *,
        executor: str | None = None,
        session: str | None = None,
        since: float | None = None,
        until: float | None = None,
        max_wait: float | None = None,
    ) -> int:
        """Write tasks to the binary file out as something to use: a script that runs
        them again ('sh'), a Markdown log ('md'), a Jupyter notebook ('ipynb') or an
        asciicast v3 recording ('cast'; max_wait: its idle_time_limit), oldest first
        (see qme/exporters.py). tasks: ids, prefixes or tasks; the filters choose
        among them, or among all tasks when none are named; with neither, the last
        task. Returns how many."""
        from qme import exporters

        if kind not in exporters.FORMATS:
            raise QmeError(f"cannot export as '{kind}' (use one of {', '.join(exporters.FORMATS)})")
        chosen = self._chosen(tasks, executor, session, since, until)
        return exporters.render(
            kind, chosen, lambda task: self.store.get(task.id), out, max_wait=max_wait
        )

    def timed_output(self, task: Task | str | None) -> list[tuple[float, str, bytes]]:
        """A task's recorded output and error (a task, an id or prefix, or None for
        the last one) as (seconds since it started, 'output' or 'error', bytes)
        pieces in the order they came, as its timing index (Task.timing) cuts them;
        a stream recorded without one comes whole at 0."""
        from qme import exporters

        if not isinstance(task, Task) or task.output is None or task.error is None:
            task = self.get(task.id if isinstance(task, Task) else task)
        return exporters.timed_chunks(task)

    def _chosen(self, tasks, executor, session, since, until) -> list[Task]:
        """The tasks an export is about, without their streams, once each, oldest
        first: those named (filtered), else those the filters match, else the last."""
        from qme import exporters

        filtered = any(value is not None for value in (executor, session, since, until))
        if tasks:
            named = [t if isinstance(t, Task) else self.get(t, streams=False) for t in tasks]
            found = [
                task
                for task in named
                if (executor is None or task.executor == executor)
                and (session is None or task.session == session)
                and (since is None or task.started >= since)
                and (until is None or task.started < until)
            ]
        elif filtered:
            found = self.list(
                executor, session=session, since=since, until=until, newest_first=False
            )
        else:
            found = [self.get(None, streams=False)]
        return exporters.exported(found)

    def import_from(self, source, *, replace: bool = False):
        """Add the tasks of an export (a text file or lines) as they were; tasks
        already in the store are skipped, or replaced. Returns (added, skipped)."""
        from qme import transfer

        return transfer.import_tasks(self.store, transfer.read_export(source), replace)

    # -- QueueMe 0.0.14 -----------------------------------------------------------------

    def import_queueme(self, home: str | os.PathLike | None = None, *, replace: bool = False):
        """Add the tasks QueueMe 0.0.14 kept in home (default: this home), from its
        filesystem store and its SQLite file, as they were (ids kept); QueueMe's
        files are only read. Returns (added, skipped)."""
        from qme import transfer
        from qme.store import queueme

        source = os.path.abspath(os.fspath(home or self.settings.home))
        done = transfer.import_tasks(self.store, queueme.read_home(source), replace)
        queueme.mark_imported(self.settings.home, queueme.stores(source))
        return done

    def queueme_unread(self) -> list[str]:
        """QueueMe 0.0.14 stores in this home (its files, its SQLite file) whose tasks
        the configured store does not show and that were never imported."""
        from qme.store import queueme

        return queueme.unread(self.settings.home, *self.store_location())

    def queueme_record(self, task: Task) -> dict[str, Any]:
        """A task as QueueMe 0.0.14's `task.load()` gave it: {executor, uid, command,
        data}; `data` is what its `task.export()` and REST API gave."""
        from qme.store import queueme

        return queueme.to_record(task)

    # -- the spool and the settings -----------------------------------------------------

    def spooled(self) -> list[Spooled]:
        """The records waiting in the spool for a store that would not take them,
        whichever store each waits for, oldest first."""
        from qme import pending
        from qme.store import spool

        pending.wait(self.settings.home)  # records `qme run` is still writing (or spooling)
        return [Spooled(*found) for found in spool.spooled(self.settings.home)]

    def store_status(self) -> dict[str, Any]:
        """What `qme doctor` tells of the store: its kind and where it is (a password
        hidden), whether it opens (else why not), its schema version, and how many
        tasks it holds, runs and saw fail (each counted up to 1,000,000)."""
        from qme.text import shown

        kind, where = self.store_location()
        found: dict[str, Any] = {"kind": kind, "location": where, "opens": False, "error": None}
        found.update(schema=None, tasks=None, running=None, failed=None)
        try:
            found["schema"] = self.store.schema_version()
            for key, status in (("tasks", None), ("running", RUNNING), ("failed", "failed")):
                found[key] = self.count(status=status, limit=1_000_000)
            found["opens"] = True
        except Exception as exc:  # noqa: BLE001 - whatever the backend says, told as it is
            found["error"] = shown(str(exc))
        return found

    def store_identity(self) -> str:
        """Which store this queue writes to, as spooled records name it."""
        from qme.store import identity

        return identity(self.settings)

    def sync(self) -> Synced:
        """Deliver the records spooled for this queue's store to it now (and those
        that name no store: spooled by an older qme). Raises StoreError when the
        store still refuses them."""
        from qme import pending
        from qme.errors import StoreError
        from qme.store import open_store, spool
        from qme.text import shown

        home, mine = self.settings.home, self.store_identity()

        def counts() -> tuple[int, int]:
            stores = [found[2] for found in spool.spooled(home)]
            ours = sum(1 for store in stores if store in (mine, None))
            return ours, len(stores) - ours

        pending.wait(home)
        waiting, _ = counts()
        try:
            with open_store(self.settings, create=False) as store:  # made when written
                delivered = spool.deliver(home, store, mine, unmarked=True)
        except Exception as exc:  # noqa: BLE001 - the store's own errors, whatever the backend
            raise StoreError(
                f"the store refused the spooled records ({shown(str(exc))}); "
                f"{counts()[0]} wait in {spool.folder(home)}"
            ) from None
        left, elsewhere = counts()
        return Synced(delivered, waiting, left, spool.folder(home), elsewhere)

    def set_setting(self, key: str, value: str | None, executor: str | None = None) -> str | None:
        """Save a setting in config.ini (None removes it), a general one or an
        executor's, once it is known to work. Returns the value as it may be shown
        (a password hidden)."""
        from qme.config import EXECUTOR_SECTION_PREFIX, GENERAL_SECTION, Settings
        from qme.errors import ConfigError
        from qme.store import describe, servers

        if executor is None:
            section = GENERAL_SECTION
            self.settings.check(key, value)
            needs_url = value is not None and servers.is_server(value) and "://" not in value
            if key == "database" and value is not None and not needs_url:
                describe(Settings(self.settings.home, overrides={"database": value}))
        else:
            known = self.executors.executor_class(executor).settings
            if key not in known:
                raise ConfigError(
                    f"executor {executor} has no setting '{key}' "
                    f"(its settings: {', '.join(known) or 'none'})"
                )
            section = EXECUTOR_SECTION_PREFIX + executor
        self.settings.save(section, key, value)
        if value is not None and servers.password(value):
            console.warn(
                f"{self.settings.config_file} now holds a password (readable by you only); "
                "QME_DATABASE_STRING keeps it out of files"
            )
        return servers.redact(value) if value is not None else None

    def setting_problems(self) -> list[str]:
        """One line for each setting whose value is not accepted (naming where it
        came from and what it takes), and for each key or [executor.NAME] section
        of config.ini that means nothing: what a command warns about."""
        return self.executors.setting_problems()

    def configuration(self) -> dict[str, Any]:
        """Every setting with its value (passwords hidden) and where it came from,
        and the store's kind and location."""
        from qme.config import OPTIONS
        from qme.store import servers

        settings = {}
        for key in OPTIONS:
            value, source = self.settings.lookup(key)
            settings[key] = {"value": servers.redact(value), "source": source}
        for name, items in self.settings.executor_sections().items():
            for key, value in items.items():
                source = f"config file ({self.settings.config_file})"
                settings[f"{name}.{key}"] = {"value": value, "source": source}
        kind, path = self.store_location()
        return {
            "home": self.settings.home,
            "config_file": self.settings.config_file,
            "store": {"kind": kind, "path": path},
            "settings": settings,
        }

    def _attach(self, tasks: list[Task]) -> list[Task]:
        """Give tasks their queue, and let each executor bring the status of its
        tasks up to date (a dead recorder makes a task lost; a Slurm job's state
        is asked of Slurm), saving what changed."""
        for task in tasks:
            task.queue = self
        for task in self.executors.refresh(tasks):
            if task.status == LOST and self._ended_meanwhile(task):
                continue
            try:
                self.store.update(task)
            except Exception as exc:  # noqa: BLE001 - a full disk, a read-only store: reads go on
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
        executor = self.executors.get(task.executor)
        before = _status_of(task)
        try:
            return executor.run_action(task, name, **options)
        finally:
            if _status_of(task) != before:
                self.store.update(task)


def _reference(query: str) -> tuple[int, bool]:
    """(n, everywhere) of a reference: @n, or @@n for every task whatever the session."""
    everywhere = query.startswith("@@")
    number = query[2:] if everywhere else query[1:]
    if not (number.isascii() and number.isdigit()) or int(number) < 1:
        raise QmeError(
            f"'{query}' is not a task reference: @1 is the most recent task, @2 the one "
            "before, and so on (@@1: of all tasks, whatever the session)"
        )
    return int(number), everywhere


def normal_tag(tag: str) -> str:
    """A tag as it is kept (lower case), or QmeError when it is not a tag."""
    kept = tag.strip().lower()
    bad = set(kept) & set('"\\,')
    if not kept or len(kept) > 64 or bad or kept.startswith("-") or not kept.isprintable():
        raise QmeError(
            f"'{tag}' is not a tag: a tag is a word of at most 64 characters, with no "
            "spaces, quotes, backslashes or commas, not starting with '-'"
        )
    if any(c.isspace() for c in kept):
        raise QmeError(f"'{tag}' is not a tag: a tag has no spaces (give several tags instead)")
    return kept


def _status_of(task: Task) -> tuple:
    """What an action may change in a task, to know whether to save it."""
    import json

    data = json.dumps(task.data, sort_keys=True, default=str)
    return task.status, task.returncode, task.signal, task.ended, data
