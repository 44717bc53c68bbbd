"""The contract every store keeps; `tests/test_store_contract.py` runs it against each one."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import namedtuple

from qme.errors import NoSuchTask
from qme.redact import Redactor, redact_task
from qme.store.stats import TOP, Stats, stats_of
from qme.task import Task
from qme.text import from_stored, to_stored

# Which tasks to list: equality filters, a start-time range (Unix seconds), a
# limit (None: all) and how many to skip first (paging). Named tuples rather than
# dataclasses: see qme/record.py.
TaskQuery = namedtuple(
    "TaskQuery",
    "executor status cwd since until limit session offset host user tag",
    defaults=(None,) * 11,
)

# A search result: the task, the field that matched (command, message, output,
# error) and the matching line, with \x02 … \x03 around the matched words.
SearchHit = namedtuple("SearchHit", "task field line")


# A database store's columns that hold JSON, and those that hold text: text that is
# not valid Unicode (bytes that were not UTF-8 in argv, a path, a message) is kept
# as qme.text.to_stored() spells it; JSON is ASCII (a lone surrogate is \\udcff).
JSON_COLUMNS = frozenset({"argv", "data", "timing"})
TEXT_COLUMNS = frozenset(
    {"id", "executor", "command", "cwd", "user", "host", "status", "message"}
    | {"rerun_of", "session", "recorder"}
)


# What the user adds to a task once it has run (Store.annotate): its note (the
# `message`, which `qme run -m` gives it first) and its tags. update() leaves them as
# they are stored, so that a writer finishing a task never undoes a note given
# meanwhile.
ANNOTATIONS = ("message", "tags")


def note_text(message: str | None, tags: list[str] | None) -> str:
    """What the search index holds for a task's note: the note, then its tags."""
    from qme.text import shown

    return "\n".join(part for part in (shown(message or ""), " ".join(tags or ())) if part)


def tag_like(tag: str) -> str:
    """A LIKE pattern (escape character backslash) matching the tags column (JSON)
    of a task that has this tag."""
    quoted = json.dumps(tag)
    return "%" + quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def column_value(column: str, value):
    """A task's field as a database store's column keeps it."""
    if column == "tags":
        return json.dumps(value or [])
    if column in JSON_COLUMNS:
        return json.dumps(value)
    return to_stored(value) if column in TEXT_COLUMNS else value


def task_from_row(columns: list[str], row) -> Task:
    """The task from a database store's columns (as column_value() wrote them)."""
    values = dict(zip(columns, row))
    for column in JSON_COLUMNS:
        if values[column] is not None:  # NULL: a column added since the row was written
            values[column] = json.loads(values[column])
    for column in TEXT_COLUMNS:
        values[column] = from_stored(values[column])
    if "tags" in values:  # NULL: a row written before tags existed
        values["tags"] = json.loads(values["tags"]) if values["tags"] else []
    return Task(**values)


def chunk_holding(sizes, offset: int) -> tuple[object, int]:
    """From (chunk key, size) pairs in stream order: the key of the chunk that holds
    byte offset, and where offset falls within it; (None, 0) past the end."""
    for chunk, size in sizes:
        if offset < size:
            return chunk, offset
        offset -= size
    return None, 0


class Store(ABC):
    """Tasks with their streamed output. Ids given to methods are full ids."""

    name: str

    @abstractmethod
    def add(self, task: Task) -> None:
        """Insert a new task (usually still running)."""

    @abstractmethod
    def append(self, task_id: str, stream: str, data: bytes) -> None:
        """Add bytes to the end of a task's stored 'output' or 'error'."""

    @abstractmethod
    def update(self, task: Task) -> None:
        """Write a task's metadata (not its streams); makes its streams searchable."""

    @abstractmethod
    def get(self, task_id: str, streams: bool = True) -> Task:
        """The task, with `output` and `error` loaded when streams is true."""

    @abstractmethod
    def match(self, prefix: str, limit: int) -> list[str]:
        """Ids that start with prefix, or whose uuid part does; at most limit of them."""

    @abstractmethod
    def list(self, query: TaskQuery, newest_first: bool = True) -> list[Task]:
        """Tasks without their streams, by start time."""

    @abstractmethod
    def search(
        self,
        words: list[str],
        *,
        executor: str | None,
        limit: int,
        rank: bool,
        status: str | None = None,
        offset: int = 0,
        cwd: str | None = None,
        session: str | None = None,
        host: str | None = None,
    ) -> list[SearchHit]:
        """Tasks in which every word is a word of the command, message or streams
        (a word ending in '*': starts one), case-insensitively; newest first, or
        most relevant first when rank is true. The first offset hits are skipped.
        executor, status, cwd, session, host: only tasks with that value (None: any)."""

    def count(self, query: TaskQuery) -> int:
        """How many tasks match query's filters, counting at most query.limit of them
        (a cap keeps counting cheap on huge stores); query.offset is ignored."""
        return len(self.list(query._replace(offset=None)))

    def search_count(
        self,
        words: list[str],
        *,
        limit: int,
        executor: str | None = None,
        status: str | None = None,
        cwd: str | None = None,
        session: str | None = None,
        host: str | None = None,
    ) -> int:
        """How many tasks search() finds with the same words and filters, counting at
        most limit of them (a cap keeps counting cheap on huge stores)."""
        where = {"cwd": cwd, "session": session, "host": host}
        hits = self.search(
            words, executor=executor, status=status, limit=limit, rank=False, **where
        )
        return len(hits)

    def stats(self, since: float, host: str | None = None, top: int = TOP) -> Stats:
        """Counts for the statistics page over the tasks started at or after since
        (on host, when given; the hosts' counts are over every host): see Stats."""
        return stats_of(self.list(TaskQuery(since=since)), since, host, top)

    @abstractmethod
    def recent(self, since: float) -> list[Task]:
        """Tasks without their streams that started at or after since, or are not
        finished (running, pending): what a live view polls for."""

    def read(self, task_id: str, stream: str, offset: int = 0, size: int | None = None) -> bytes:
        """The bytes of a task's 'output' or 'error' from offset on, at most size of
        them (None: all)."""
        data = getattr(self.get(task_id), stream)
        return data[offset:] if size is None else data[offset : offset + size]

    def stream(self, task_id: str, stream: str, size: int):
        """A task's 'output' or 'error' as it is stored now, in bytes objects of at
        most size bytes each, read one after another (memory stays flat)."""
        offset = 0
        while data := self.read(task_id, stream, offset, size):
            yield data
            offset += len(data)

    @abstractmethod
    def annotate(
        self, task_id: str, *, message: str | None = None, tags: list[str] | None = None
    ) -> None:
        """Set a task's note (message; '' removes it) and/or its tags (the whole list),
        each left as it is when None, the search index with them."""

    def schema_version(self) -> int | None:
        """The version of the store's schema (its migrations applied), for `qme
        doctor`; None when the store has none or does not exist yet."""
        return None

    def data_version(self) -> object:
        """A cheap value that changes whenever another process changes the store, so a
        live view need not query it in between (it still polls now and then: a store
        may notice changes only at its clock's resolution); None when it cannot tell."""
        return None

    def listen(self):
        """An object whose wait(timeout) blocks until another process announces a
        change to the store (True) or timeout seconds pass (False), with close();
        None when the store cannot announce changes: a live view then polls
        data_version() (PostgreSQL's LISTEN/NOTIFY announces them)."""
        return None

    @abstractmethod
    def replace(self, task: Task) -> None:
        """Write a task's metadata and its whole streams (task.output, task.error)
        over what is stored, its search index with them, in one go."""

    def redact(self, redactor: Redactor) -> int:
        """Replace secrets (as redactor finds them, see qme/redact.py) in every task's
        command, argv, message and streams, and in the search index. Returns how many
        tasks changed."""
        changed = 0
        for listed in self.list(TaskQuery()):
            try:
                task = self.get(listed.id)
            except NoSuchTask:
                continue  # deleted meanwhile
            before = (task.command, task.argv, task.message, task.output, task.error)
            redact_task(redactor, task)
            task.output, task.error = redactor.data(task.output), redactor.data(task.error)
            if (task.command, task.argv, task.message, task.output, task.error) != before:
                self.replace(task)
                changed += 1
        return changed

    @abstractmethod
    def delete(self, task_ids: list[str]) -> int:
        """Delete these tasks; returns how many existed."""

    @abstractmethod
    def clear(self, executor: str | None = None) -> int:
        """Delete every task (of one executor); returns how many."""

    # Keeping users apart: only a PostgreSQL store can (row-level security,
    # qme/store/pgsecurity.py); every other store is one user's or lets all read all.

    def secure(self, grant_to: str = "PUBLIC") -> list[str]:
        """Let each database role see and change only its own tasks (and those
        shared with a role it belongs to); grant_to may then use the store.
        Returns what was done, one line each."""
        from qme.errors import Refused

        raise Refused(f"keeping each user's tasks apart needs PostgreSQL, not a {self.name} store")

    def share(self, task_id: str, group: str, remove: bool = False) -> bool:
        """Let the members of a database role read a task of one's own (or no
        longer, with remove). False when nothing changed."""
        from qme.errors import Refused

        raise Refused(f"sharing a task needs PostgreSQL: a {self.name} store has no users")

    def shares(self, task_id: str) -> list[str]:
        """The roles a task is shared with."""
        return []

    def close(self) -> None:  # noqa: B027 - optional for stores without resources
        """Release connections and files."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
