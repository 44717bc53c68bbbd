"""The default store: one SQLite file, WAL mode, FTS5 over commands, messages and output.

Output is kept as raw chunks (faithful bytes, appended while the command runs);
the full-text index holds the same text with escape sequences stripped. Text
that is not valid Unicode (bytes that were not UTF-8 in argv, a path, a message)
is kept as qme.text.to_stored() spells it. The file is created 0600 on the first
write, never by a reader: a store that does not exist yet reads as empty.

A QueueMe 0.0.14 SQLite file (its `task` table) opens as a qme store: the schema
migration that first meets it copies QueueMe's tasks into qme's tables, and
leaves QueueMe's table as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

from qme import private
from qme.errors import NoSuchTask, StoreError
from qme.store import queueme
from qme.store.base import (
    ANNOTATIONS,
    SearchHit,
    Store,
    TaskQuery,
    chunk_holding,
    column_value,
    note_text,
    tag_like,
    task_from_row,
)
from qme.store.stats import FAILED, TOP, Stats, stats_of_groups, window_days
from qme.task import PENDING, RUNNING, STREAMS, Task
from qme.text import from_stored, searchable, shown, to_stored

BUSY_TIMEOUT_SECONDS = 15
# The starts of words the search index keeps apart, so that a word's start (a word
# being typed, 'mak*') is read newest first from the index and the reading stops at
# the page's end, instead of every matching word's tasks being merged first (a
# short start matches many words, each in many tasks). The finder searches starts
# of 3 or more; longer ones are merged (at most ~35 ms on a million tasks), as each
# length kept costs every recorded output's indexing time and memory
# (bench/RESULTS.md).
SEARCH_PREFIXES = "3"
NOTICE_TASKS = 50_000  # a migration that rebuilds an index of more tasks says so
STREAM_CODES = {name: code for code, name in enumerate(STREAMS)}

# One entry per schema version; a database at version N has had the first N applied.
MIGRATIONS = [
    """
    CREATE TABLE tasks (
        id TEXT NOT NULL UNIQUE,
        executor TEXT NOT NULL,
        command TEXT NOT NULL,
        argv TEXT NOT NULL,
        cwd TEXT NOT NULL,
        user TEXT NOT NULL,
        host TEXT NOT NULL,
        started REAL NOT NULL,
        status TEXT NOT NULL,
        pid INTEGER,
        ended REAL,
        returncode INTEGER,
        signal INTEGER,
        message TEXT,
        max_rss INTEGER,
        cpu_user REAL,
        cpu_system REAL,
        term_cols INTEGER,
        term_rows INTEGER,
        output_size INTEGER NOT NULL DEFAULT 0,
        error_size INTEGER NOT NULL DEFAULT 0,
        rerun_of TEXT,
        data TEXT NOT NULL DEFAULT '{}',
        recorder TEXT
    );
    CREATE INDEX tasks_started ON tasks(started);
    CREATE INDEX tasks_status_started ON tasks(status, started);
    CREATE INDEX tasks_executor_started ON tasks(executor, started);
    CREATE INDEX tasks_cwd_started ON tasks(cwd, started);
    CREATE INDEX tasks_uuid ON tasks(substr(id, instr(id, '-') + 1));
    CREATE TABLE chunks (
        task INTEGER NOT NULL,
        stream INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE INDEX chunks_task ON chunks(task, stream);
    CREATE VIRTUAL TABLE search USING fts5(
        command, message, output, error, tokenize = 'unicode61 remove_diacritics 2'
    );
    """,  # the search table as it was first made (rebuilt by _index_prefixes)
    """
    ALTER TABLE tasks ADD COLUMN session TEXT;
    CREATE INDEX tasks_session_started ON tasks(session, started);
    """,
    lambda db: _adopt_queueme(db),
    "ALTER TABLE tasks ADD COLUMN timing TEXT",  # when the output came (Task.timing)
    "ALTER TABLE tasks ADD COLUMN tags TEXT",  # the user's labels (Task.tags)
    # The statistics page's one pass over a window of time, read from the index alone.
    "CREATE INDEX IF NOT EXISTS tasks_stats ON tasks(started, host, status, command, ended)",
    # The statistics page again: its grouping read in index order, its days on one host
    # counted in an index (the list's host filter uses it too); tasks_stats has no use.
    """
    DROP INDEX IF EXISTS tasks_stats;
    CREATE INDEX IF NOT EXISTS tasks_groups ON tasks(command, host, started, status, ended);
    CREATE INDEX IF NOT EXISTS tasks_host_started ON tasks(host, started, status);
    """,
    lambda db: _index_prefixes(db),
]

# Every field of Task but the streams (kept in chunks) and the queue it is attached to.
COLUMNS = [name for name in Task.FIELDS if name not in (*STREAMS, "queue")]

UUID_EXPR = "substr(id, instr(id, '-') + 1)"
# What update() writes: not the note and tags, which only annotate() changes.
UPDATED = [c for c in COLUMNS[1:] if c not in ANNOTATIONS]


class SqliteStore(Store):
    name = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
        create: bool = True,
    ):
        """create=False: a reader's store, which creates nothing (no folder, no
        file) until something is written; until then a missing file reads as an
        empty store."""
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        self.db: sqlite3.Connection | None = None
        self.unwritable: str | None = None  # why a reader's store is open read-only
        self.missing = not create and not os.path.exists(self.path)
        if self.missing:
            self.db = self._connect(":memory:")
        else:
            self._open(reader=not create)

    def _open(self, reader: bool = False) -> None:
        try:
            if not os.path.exists(self.path):  # private; its -wal and -shm take its mode
                private.make_dir(os.path.dirname(os.path.abspath(self.path)))
                os.close(private.open_file(self.path, os.O_WRONLY | os.O_CREAT))
            db = self._connect(self.path)
        except (sqlite3.Error, OSError) as exc:
            db = self._unchanging(exc) if reader else None
            if db is None:
                raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from None
        if self.db is not None:
            self.db.close()
        self.db, self.missing = db, False

    def _unchanging(self, exc: Exception) -> sqlite3.Connection | None:
        """For a reader whose store cannot be opened as usual because SQLite cannot
        create its -shm file (a full disk): the file read as it is. No other
        connection is open then (it would have made that file), so nothing is
        missed; nothing can be written through it."""
        from urllib.parse import quote

        try:
            db = sqlite3.connect(
                f"file:{quote(os.path.abspath(self.path))}?immutable=1",
                uri=True,
                check_same_thread=False,
            )
            if db.execute("PRAGMA user_version").fetchone()[0] != len(MIGRATIONS):
                db.close()
                return None
        except sqlite3.Error:
            return None
        self.unwritable = str(exc)
        return db

    def _connect(self, path: str) -> sqlite3.Connection:
        db = sqlite3.connect(
            path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA synchronous = NORMAL")
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _fresh(self) -> None:
        """A reader's missing store that someone has created since: read that."""
        if self.missing and os.path.exists(self.path):
            self._open()

    # -- schema -------------------------------------------------------------------------

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == len(MIGRATIONS):
            return
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path} was written by a newer qme (schema {version})")
        self._use_wal(db)
        with _Transaction(db):
            # Re-read inside the write lock: another qme may have migrated meanwhile.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for script in MIGRATIONS[version:]:
                if callable(script):
                    script(db)
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _use_wal(self, db: sqlite3.Connection) -> None:
        """WAL lets readers (qme ls, the dashboard) work while commands record.
        While another qme is making the store, SQLite refuses the switch with
        'database is locked' at once, without its busy handler (the switch
        upgrades a read lock): wait for it as a writer waits."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _write(self):
        if self.missing:  # a reader's first write creates the file
            self._open()
        if self.unwritable:
            raise StoreError(f"cannot write to the SQLite store {self.path}: {self.unwritable}")
        return _Transaction(self.db)

    # -- writing ------------------------------------------------------------------------

    def add(self, task: Task) -> None:
        with self._write():
            _insert(self.db, task, streams=False)

    def append(self, task_id: str, stream: str, data: bytes) -> None:
        with self._write():
            self.db.execute(
                "INSERT INTO chunks (task, stream, data) "
                "SELECT rowid, ?, ? FROM tasks WHERE id = ?",
                (STREAM_CODES[stream], data, task_id),
            )

    def update(self, task: Task) -> None:
        assignments = ", ".join(f"{c} = ?" for c in UPDATED)
        values = dict(zip(COLUMNS, _to_row(task)))
        with self._write():
            rowid = self._rowid(task.id)
            self.db.execute(
                f"UPDATE tasks SET {assignments} WHERE rowid = ?",
                (*(values[c] for c in UPDATED), rowid),
            )
            streams = [searchable(self._stream(rowid, s)) for s in STREAMS]
            self.db.execute(
                "UPDATE search SET command = ?, message = ?, output = ?, error = ? WHERE rowid = ?",
                (shown(task.command), self._note(rowid), *streams, rowid),
            )

    def annotate(self, task_id: str, *, message=None, tags=None) -> None:
        changes = {"message": message or None} if message is not None else {}
        if tags is not None:
            changes["tags"] = tags
        with self._write():
            rowid = self._rowid(task_id)
            if changes:
                assignments = ", ".join(f"{c} = ?" for c in changes)
                values = [column_value(c, v) for c, v in changes.items()]
                self.db.execute(f"UPDATE tasks SET {assignments} WHERE rowid = ?", (*values, rowid))
            self.db.execute(
                "UPDATE search SET message = ? WHERE rowid = ?", (self._note(rowid), rowid)
            )

    def _note(self, rowid: int) -> str:
        """The stored note and tags, as the search index holds them."""
        message, tags = self.db.execute(
            "SELECT message, tags FROM tasks WHERE rowid = ?", (rowid,)
        ).fetchone()
        return note_text(from_stored(message), json.loads(tags) if tags else [])

    def replace(self, task: Task) -> None:
        assignments = ", ".join(f"{c} = ?" for c in COLUMNS[1:])
        with self._write():
            rowid = self._rowid(task.id)
            self.db.execute(
                f"UPDATE tasks SET {assignments} WHERE rowid = ?", (*_to_row(task)[1:], rowid)
            )
            self.db.execute("DELETE FROM chunks WHERE task = ?", (rowid,))
            for code, stream in enumerate(STREAMS):
                data = getattr(task, stream) or b""
                if data:
                    self.db.execute(
                        "INSERT INTO chunks (task, stream, data) VALUES (?, ?, ?)",
                        (rowid, code, data),
                    )
            streams = [searchable(getattr(task, s) or b"") for s in STREAMS]
            self.db.execute(
                "UPDATE search SET command = ?, message = ?, output = ?, error = ? WHERE rowid = ?",
                (shown(task.command), note_text(task.message, task.tags), *streams, rowid),
            )

    def delete(self, task_ids: list[str]) -> int:
        if self.missing:
            return 0
        deleted = 0
        with self._write():
            for task_id in task_ids:
                row = self.db.execute("SELECT rowid FROM tasks WHERE id = ?", (task_id,))
                found = row.fetchone()
                if found:
                    self._delete_rowids([found[0]])
                    deleted += 1
        return deleted

    def clear(self, executor: str | None = None) -> int:
        if self.missing:
            return 0
        with self._write():
            if executor is None:
                count = self.db.execute("SELECT count(*) FROM tasks").fetchone()[0]
                for table in ("tasks", "chunks", "search"):
                    self.db.execute(f"DELETE FROM {table}")
                return count
            rowids = [
                r[0]
                for r in self.db.execute("SELECT rowid FROM tasks WHERE executor = ?", (executor,))
            ]
            self._delete_rowids(rowids)
            return len(rowids)

    def _delete_rowids(self, rowids: list[int]) -> None:
        for rowid in rowids:
            self.db.execute("DELETE FROM chunks WHERE task = ?", (rowid,))
            self.db.execute("DELETE FROM search WHERE rowid = ?", (rowid,))
            self.db.execute("DELETE FROM tasks WHERE rowid = ?", (rowid,))

    # -- reading ------------------------------------------------------------------------

    def get(self, task_id: str, streams: bool = True) -> Task:
        self._fresh()
        row = self.db.execute(
            f"SELECT rowid, {', '.join(COLUMNS)} FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()
        if row is None:
            raise NoSuchTask(task_id)
        task = _from_row(row[1:])
        if streams:
            task.output, task.error = (self._stream(row[0], s) for s in STREAMS)
        return task

    def _stream(self, rowid: int, stream: str) -> bytes:
        rows = self.db.execute(
            "SELECT data FROM chunks WHERE task = ? AND stream = ? ORDER BY rowid",
            (rowid, STREAM_CODES[stream]),
        )
        return b"".join(r[0] for r in rows)

    def _rowid(self, task_id: str) -> int:
        row = self.db.execute("SELECT rowid FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise NoSuchTask(task_id)
        return row[0]

    def match(self, prefix: str, limit: int) -> list[str]:
        # Range conditions (not LIKE) so that both indexes are used.
        self._fresh()
        upper = prefix + "\U0010ffff"
        rows = self.db.execute(
            f"SELECT id FROM tasks WHERE id >= ?1 AND id < ?2 "
            f"UNION SELECT id FROM tasks WHERE {UUID_EXPR} >= ?1 AND {UUID_EXPR} < ?2 "
            f"LIMIT ?3",
            (prefix, upper, limit),
        )
        return [r[0] for r in rows]

    def list(self, query: TaskQuery, newest_first: bool = True) -> list[Task]:
        self._fresh()
        where, params = _conditions(query)
        direction = "DESC" if newest_first else "ASC"
        order = f"ORDER BY started {direction}, rowid {direction}"
        columns = ", ".join(COLUMNS)
        if not query.offset:
            sql = f"SELECT {columns} FROM tasks {where} {order}"
            if query.limit is not None:
                sql += " LIMIT ?"
                params.append(query.limit)
            return [_from_row(r) for r in self.db.execute(sql, params)]
        # Skip in the index alone: the rows skipped are never read from the table,
        # so a deep page of a million tasks costs milliseconds, not a table scan.
        pages = f"SELECT rowid FROM tasks {where} {order} LIMIT ? OFFSET ?"
        params += [-1 if query.limit is None else query.limit, query.offset]
        sql = f"SELECT {columns} FROM tasks WHERE rowid IN ({pages}) {order}"
        return [_from_row(r) for r in self.db.execute(sql, params)]

    def count(self, query: TaskQuery) -> int:
        self._fresh()
        where, params = _conditions(query)
        matching = f"SELECT 1 FROM tasks {where}"
        if query.limit is not None:
            matching += " LIMIT ?"
            params.append(query.limit)
        return self.db.execute(f"SELECT count(*) FROM ({matching})", params).fetchone()[0]

    def recent(self, since: float) -> list[Task]:
        # Each half in its own index, said outright: from its statistics (few
        # statuses, most of them complete) SQLite would otherwise scan every row.
        self._fresh()
        columns = ", ".join(COLUMNS)
        rows = self.db.execute(
            f"SELECT {columns} FROM tasks WHERE started >= ?1 UNION ALL "
            f"SELECT {columns} FROM tasks INDEXED BY tasks_status_started "
            "WHERE status IN (?2, ?3) AND started < ?1",
            (since, RUNNING, PENDING),
        )
        return sorted((_from_row(r) for r in rows), key=lambda t: t.started)

    def read(self, task_id: str, stream: str, offset: int = 0, size: int | None = None) -> bytes:
        # Find the chunk holding offset from the chunks' lengths alone, then read
        # only the data from there on: following a growing output stays cheap.
        self._fresh()
        where = "WHERE task = ? AND stream = ?"
        params = (self._rowid(task_id), STREAM_CODES[stream])
        sizes = self.db.execute(
            f"SELECT rowid, length(data) FROM chunks {where} ORDER BY rowid", params
        ).fetchall()
        first, offset = chunk_holding(sizes, offset)
        if first is None:
            return b""
        if size is not None:
            return self._read_some(sizes, first, offset, size)
        rows = self.db.execute(
            f"SELECT data FROM chunks {where} AND rowid >= ? ORDER BY rowid", (*params, first)
        )
        return b"".join(r[0] for r in rows)[offset:]

    def schema_version(self) -> int | None:
        self._fresh()
        return None if self.missing else self.db.execute("PRAGMA user_version").fetchone()[0]

    def stream(self, task_id: str, stream: str, size: int):
        # One blob handle per chunk, read through: a chunk may be tens of megabytes,
        # and a new handle would walk its pages from the start on every read.
        self._fresh()
        chunks = self.db.execute(
            "SELECT rowid FROM chunks WHERE task = ? AND stream = ? ORDER BY rowid",
            (self._rowid(task_id), STREAM_CODES[stream]),
        ).fetchall()
        for (rowid,) in chunks:
            with self.db.blobopen("chunks", "data", rowid, readonly=True) as blob:
                while data := blob.read(size):
                    yield data

    def _read_some(self, sizes, first: int, offset: int, size: int) -> bytes:
        """At most size bytes from byte offset of chunk first on, read with SQLite's
        incremental blob I/O: a chunk may be tens of megabytes, never all loaded."""
        pieces, wanted = [], size
        for rowid, length in sizes:
            if rowid < first or wanted <= 0:
                continue
            take = min(length - offset, wanted)
            with self.db.blobopen("chunks", "data", rowid, readonly=True) as blob:
                blob.seek(offset)
                pieces.append(blob.read(take))
            wanted -= take
            offset = 0
        return b"".join(pieces)

    def data_version(self) -> object:
        # Changes whenever another connection commits (SQLite's own change counter).
        self._fresh()
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def search(
        self,
        words,
        *,
        executor=None,
        limit=20,
        rank=False,
        status=None,
        offset=0,
        cwd=None,
        session=None,
        host=None,
    ) -> list[SearchHit]:
        # Whole words, which FTS5 answers newest-first without reading every match;
        # a prefix ('deploy*') must merge all of its words' matches first.
        self._fresh()
        match = _match(words)
        order = "search.rank" if rank else "search.rowid DESC"
        filters = {"executor": executor, "status": status, "cwd": cwd}
        filters.update(session=session, host=host)
        extra = "".join(f" AND tasks.{name} = ?" for name, value in filters.items() if value)
        params = [match, *(value for value in filters.values() if value), limit, offset]
        columns = ", ".join(f"tasks.{c}" for c in COLUMNS)
        rows = self.db.execute(
            f"SELECT {columns}, "
            f"highlight(search, 0, char(2), char(3)), highlight(search, 1, char(2), char(3)), "
            f"snippet(search, 2, char(2), char(3), '', 48), "
            f"snippet(search, 3, char(2), char(3), '', 48) "
            f"FROM search JOIN tasks ON tasks.rowid = search.rowid "
            f"WHERE search MATCH ?{extra} ORDER BY {order} LIMIT ? OFFSET ?",
            params,
        )
        return [_hit(row) for row in rows]

    def search_count(
        self, words, *, limit, executor=None, status=None, cwd=None, session=None, host=None
    ) -> int:
        self._fresh()
        filters = {"executor": executor, "status": status, "cwd": cwd}
        filters.update(session=session, host=host)
        extra = "".join(f" AND tasks.{name} = ?" for name, value in filters.items() if value)
        params = [_match(words), *(value for value in filters.values() if value), limit]
        join = " JOIN tasks ON tasks.rowid = search.rowid" if extra else ""
        matching = f"SELECT 1 FROM search{join} WHERE search MATCH ?{extra} LIMIT ?"
        return self.db.execute(f"SELECT count(*) FROM ({matching})", params).fetchone()[0]

    def stats(self, since: float, host: str | None = None, top: int = TOP) -> Stats:
        # Commands and hosts: the index tasks_groups read in its own order, so the
        # grouping sorts nothing (a sort of each task of the window was most of
        # the time); with ANALYZE's figures SQLite also skips the older entries
        # of each group. Days: two range counts a day in the indexes on start time
        # (a pass grouped by day was slower: it reads every entry of the window).
        self._fresh()
        rows = self.db.execute(
            "SELECT command, host, count(*), sum(status = ?), sum(ended - started), "
            "count(ended), max(ended - started) "
            "FROM tasks INDEXED BY tasks_groups WHERE started >= ? GROUP BY command, host",
            [FAILED, since],
        ).fetchall()
        on_host, extra = ("", []) if host is None else (" AND host = ?", [to_stored(host)])
        count = f"SELECT count(*) FROM tasks WHERE started >= ? AND started < ?{on_host}"
        days = []
        for day, start, end in window_days(since, time.time()):
            runs = self.db.execute(count, [start, end, *extra]).fetchone()[0]
            if runs:
                bad = self.db.execute(f"{count} AND status = ?", [start, end, *extra, FAILED])
                days.append((day, runs, bad.fetchone()[0]))
        return stats_of_groups(rows, since, host, top, days)

    def close(self) -> None:
        self.db.close()


def _insert(db: sqlite3.Connection, task: Task, streams: bool, columns=COLUMNS) -> int:
    """Insert a task (and its streams when streams is true) inside a transaction;
    returns its rowid. columns: those the table has (a migration's, before the
    later ones add theirs)."""
    placeholders = ", ".join("?" for _ in columns)
    rowid = _rowid_for(db, task.started)
    values = dict(zip(COLUMNS, _to_row(task)))
    db.execute(
        f"INSERT INTO tasks (rowid, {', '.join(columns)}) VALUES (?, {placeholders})",
        (rowid, *(values[c] for c in columns)),
    )
    texts = ["", ""]
    if streams:
        for code, stream in enumerate(STREAMS):
            data = getattr(task, stream) or b""
            if data:
                db.execute(
                    "INSERT INTO chunks (task, stream, data) VALUES (?, ?, ?)", (rowid, code, data)
                )
            texts[code] = searchable(data)
    db.execute(
        "INSERT INTO search (rowid, command, message, output, error) VALUES (?, ?, ?, ?, ?)",
        (rowid, shown(task.command), note_text(task.message, task.tags), *texts),
    )
    return rowid


def _rowid_for(db: sqlite3.Connection, started: float) -> int:
    """The start time in microseconds, or the next free rowid after it: search
    answers newest first in rowid order, which must be start order even for
    tasks added late (an import, a spool delivered when the store is back)."""
    rowid = int(started * 1_000_000)
    while db.execute("SELECT 1 FROM tasks WHERE rowid = ?", (rowid,)).fetchone():
        rowid += 1
    return rowid


def _index_prefixes(db: sqlite3.Connection) -> None:
    """The search table made again with SEARCH_PREFIXES (FTS5 cannot add them to
    a table): a minute for a million tasks, once."""
    tasks = db.execute("SELECT count(*) FROM tasks").fetchone()[0]
    if tasks >= NOTICE_TASKS:
        from qme import console

        console.warn(f"rebuilding the search index of {tasks:,} tasks, once (faster search)")
    db.execute(
        "CREATE VIRTUAL TABLE search_prefixed USING fts5(command, message, output, error, "
        f"tokenize = 'unicode61 remove_diacritics 2', prefix = '{SEARCH_PREFIXES}')"
    )
    db.execute(
        "INSERT INTO search_prefixed (rowid, command, message, output, error) "
        "SELECT rowid, command, message, output, error FROM search"
    )
    db.execute("DROP TABLE search")
    db.execute("ALTER TABLE search_prefixed RENAME TO search")


def _adopt_queueme(db: sqlite3.Connection) -> None:
    """In a QueueMe 0.0.14 file, QueueMe's tasks become qme's (once: a migration)."""
    if not queueme.has_table(db):
        return
    known = {row[0] for row in db.execute("SELECT id FROM tasks")}
    # The columns migrations after this one add are not there yet.
    have = {row[1] for row in db.execute("PRAGMA table_info(tasks)")}
    columns = [c for c in COLUMNS if c in have]
    for task in list(queueme.rows(db)):
        if task.id not in known:
            _insert(db, task, streams=True, columns=columns)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT: takes the write lock up front, so concurrent
    writers queue on the busy timeout instead of failing with 'database is locked'."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, _):
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error as failed:
                exc = failed
        # After some errors (a full disk) SQLite has rolled back by itself: nothing
        # is left to roll back, and the first error is the one to tell.
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        if isinstance(exc, sqlite3.Error):
            raise StoreError(str(exc) or type(exc).__name__) from exc


def _match(words: list[str]) -> str:
    """An FTS5 query for every word (a word ending in '*': as a prefix)."""
    return " ".join(
        '"{}"{}'.format(w.rstrip("*").replace('"', '""'), "*" if w.endswith("*") else "")
        for w in words
    )


def _hit(row) -> SearchHit:
    task = _from_row(row[: len(COLUMNS)])
    texts = row[len(COLUMNS) :]
    for field, text in zip(("command", "message", *STREAMS), texts):
        if text and "\x02" in text:
            return SearchHit(task, field, _line_with_mark(text))
    return SearchHit(task, "command", task.command)


def _line_with_mark(text: str) -> str:
    at = text.index("\x02")
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return text[start : None if end < 0 else end]


def _conditions(query: TaskQuery) -> tuple[str, list]:
    clauses, params = [], []
    for column in ("executor", "status", "cwd", "session", "host", "user"):
        value = getattr(query, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(to_stored(value))
    if query.since is not None:
        clauses.append("started >= ?")
        params.append(query.since)
    if query.until is not None:
        clauses.append("started < ?")
        params.append(query.until)
    if query.tag is not None:
        clauses.append("tags LIKE ? ESCAPE '\\'")
        params.append(tag_like(query.tag))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _to_row(task: Task) -> tuple:
    return tuple(column_value(c, getattr(task, c)) for c in COLUMNS)


def _from_row(row) -> Task:
    return task_from_row(COLUMNS, row)
