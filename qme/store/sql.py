"""PostgreSQL and MySQL/MariaDB stores through SQLAlchemy Core: one history that
many machines and users share.

The layout follows the SQLite store: a row per task, output kept as raw chunks
appended while the command runs, the searchable text apart with the server's
full-text index (qme/store/sqlsearch.py). Every write also increments a counter
(data_version) and, on PostgreSQL, sends a NOTIFY that a live dashboard LISTENs
for (qme/store/pglisten.py). SQLAlchemy is imported only when such a store opens.
"""

from __future__ import annotations

import functools
import json
import time

import sqlalchemy as sa

from qme.errors import NoSuchTask, Refused, StoreError
from qme.store import pgsecurity, servers, sqlsearch
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
from qme.store.sqlschema import (
    COLUMNS,
    PG_LOCK_KEY,
    SEARCH_FIELDS,
    chunks,
    meta,
    migrate,
    search_table,
    tasks,
)
from qme.store.stats import FAILED, TOP, Stats, stats_of_groups, window_days
from qme.task import PENDING, RUNNING, STREAMS, Task
from qme.text import first_match, from_stored, searchable, shown, to_stored, word_pattern

CONNECT_TIMEOUT_SECONDS = 5
CHANNEL = "qme_changes"
STREAM_CODES = {name: code for code, name in enumerate(STREAMS)}

FILTERS = ("executor", "status", "cwd", "session", "host", "user")
WINDOW = 2000  # the newest tasks a search reads one by one before using the index
WRITE_ATTEMPTS = 3  # a deadlock between concurrent writers is retried
CONFLICTS = {"40001", "40P01", 1205, 1213}  # PostgreSQL SQLSTATEs, MySQL error numbers
TASK_COLUMNS = [tasks.c[name] for name in COLUMNS]


def _guarded(method):
    """Driver errors become one StoreError line, without the password."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(self.explain(exc)) from None

    return wrapper


class SqlStore(Store):
    def __init__(self, kind: str, url: str):
        self.name = kind
        self.url = url
        self.dialect = "postgresql" if kind == "postgresql" else "mysql"
        self._token_sizes: tuple[int, int] | None = None
        self.texts = search_table(self.dialect)
        try:
            self.engine = sa.create_engine(
                url,
                connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
                pool_pre_ping=True,
                pool_recycle=3600,
            )
            self.reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            migrate(self.engine)
        except (sa.exc.SQLAlchemyError, ValueError) as exc:
            raise StoreError(self.explain(exc)) from None

    def explain(self, exc: Exception) -> str:
        orig = getattr(exc, "orig", None) or exc
        args = getattr(orig, "args", ())
        detail = args[1] if len(args) == 2 and isinstance(args[0], int) else str(orig)
        lines = [line.strip() for line in str(detail).splitlines() if line.strip()]
        where = servers.redact(self.url).partition("://")[2]
        return servers.scrub(f"{self.name} store {where}: {lines[0] if lines else exc}", self.url)

    # -- writing ------------------------------------------------------------------------

    def _write(self, work):
        """work(connection) in one transaction that also marks the store changed."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    result = work(conn)
                    conn.execute(
                        meta.update().where(meta.c.name == "changes").values(value=meta.c.value + 1)
                    )
                    if self.dialect == "postgresql":
                        conn.execute(sa.select(sa.func.pg_notify(CHANNEL, "")))
                    return result
            except sa.exc.DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None) or (exc.orig.args or (None,))[0]
                if code not in CONFLICTS or attempt + 1 == WRITE_ATTEMPTS:
                    raise

    def _index(self, texts: list[str]) -> dict:
        column = "tsv" if self.dialect == "postgresql" else "words"
        return {column: sqlsearch.index_value(self.dialect, texts)}

    @_guarded
    def add(self, task: Task) -> None:
        def work(conn):
            inserted = conn.execute(tasks.insert().values(uuid=task.uuid, **_to_row(task)))
            texts = [shown(task.command), note_text(task.message, task.tags)]
            conn.execute(
                self.texts.insert().values(
                    task=inserted.inserted_primary_key[0],
                    **dict(zip(SEARCH_FIELDS, texts + ["", ""])),
                    **self._index(texts),
                )
            )

        self._write(work)

    @_guarded
    def append(self, task_id: str, stream: str, data: bytes) -> None:
        source = sa.select(
            tasks.c.seq,
            sa.literal(STREAM_CODES[stream], sa.SmallInteger),
            sa.literal(data, sa.LargeBinary),
        ).where(tasks.c.id == task_id)
        self._write(
            lambda conn: conn.execute(
                chunks.insert().from_select(["task", "stream", "data"], source)
            )
        )

    @_guarded
    def update(self, task: Task) -> None:
        def work(conn):
            seq = _seq(conn, task.id)
            row = _to_row(task)
            for name in ("id", *ANNOTATIONS):  # the note and tags: only annotate() changes them
                del row[name]
            conn.execute(tasks.update().where(tasks.c.seq == seq).values(**row))
            texts = [shown(task.command), _note(conn, seq)]
            texts += [searchable(_stream(conn, seq, s)) for s in STREAMS]
            conn.execute(
                self.texts.update()
                .where(self.texts.c.task == seq)
                .values(**dict(zip(SEARCH_FIELDS, texts)), **self._index(texts))
            )

        self._write(work)

    @_guarded
    def annotate(self, task_id: str, *, message=None, tags=None) -> None:
        changes = {"message": message or None} if message is not None else {}
        if tags is not None:
            changes["tags"] = tags

        def work(conn):
            seq = _seq(conn, task_id)
            if changes:
                values = {c: column_value(c, v) for c, v in changes.items()}
                conn.execute(tasks.update().where(tasks.c.seq == seq).values(**values))
            row = conn.execute(sa.select(*self.texts.c).where(self.texts.c.task == seq)).first()
            texts = [row.command, _note(conn, seq), row.output, row.error]
            conn.execute(
                self.texts.update()
                .where(self.texts.c.task == seq)
                .values(message=texts[1], **self._index(texts))
            )

        self._write(work)

    @_guarded
    def replace(self, task: Task) -> None:
        def work(conn):
            seq = _seq(conn, task.id)
            row = _to_row(task)
            del row["id"]
            conn.execute(tasks.update().where(tasks.c.seq == seq).values(**row))
            conn.execute(chunks.delete().where(chunks.c.task == seq))
            for stream in STREAMS:
                data = getattr(task, stream) or b""
                if data:
                    conn.execute(
                        chunks.insert().values(task=seq, stream=STREAM_CODES[stream], data=data)
                    )
            texts = [shown(task.command), note_text(task.message, task.tags)]
            texts += [searchable(getattr(task, s) or b"") for s in STREAMS]
            conn.execute(
                self.texts.update()
                .where(self.texts.c.task == seq)
                .values(**dict(zip(SEARCH_FIELDS, texts)), **self._index(texts))
            )

        self._write(work)

    @_guarded
    def delete(self, task_ids: list[str]) -> int:
        def work(conn):
            found = conn.execute(sa.select(tasks.c.seq).where(tasks.c.id.in_(task_ids)))
            return self._delete(conn, [row[0] for row in found])

        return self._write(work) if task_ids else 0

    @_guarded
    def clear(self, executor: str | None = None) -> int:
        def work(conn):
            if executor is None:
                for table in (chunks, self.texts):
                    conn.execute(table.delete())
                if self.dialect == "postgresql":
                    pgsecurity.delete_shares(conn, None)
                # What was deleted: under row-level security, only this role's tasks.
                return conn.execute(tasks.delete()).rowcount
            found = conn.execute(sa.select(tasks.c.seq).where(tasks.c.executor == executor))
            return self._delete(conn, [row[0] for row in found])

        return self._write(work)

    def _delete(self, conn, seqs: list[int]) -> int:
        """Delete these tasks; how many were (under row-level security, a task
        shared with this role is seen but not deleted)."""
        if not seqs:
            return 0
        conn.execute(chunks.delete().where(chunks.c.task.in_(seqs)))
        conn.execute(self.texts.delete().where(self.texts.c.task.in_(seqs)))
        if self.dialect == "postgresql":
            pgsecurity.delete_shares(conn, seqs)
        return conn.execute(tasks.delete().where(tasks.c.seq.in_(seqs))).rowcount

    # -- reading ------------------------------------------------------------------------

    @_guarded
    def get(self, task_id: str, streams: bool = True) -> Task:
        with self.reader.connect() as conn:
            row = conn.execute(
                sa.select(tasks.c.seq, *TASK_COLUMNS).where(tasks.c.id == task_id)
            ).first()
            if row is None:
                raise NoSuchTask(task_id)
            task = _from_row(row[1:])
            if streams:
                task.output, task.error = (_stream(conn, row[0], s) for s in STREAMS)
        return task

    @_guarded
    def match(self, prefix: str, limit: int) -> list[str]:
        # Ranges rather than LIKE, so that both indexes are used.
        upper = prefix + "\U0010ffff"
        by_id = sa.select(tasks.c.id).where(tasks.c.id >= prefix, tasks.c.id < upper)
        by_uuid = sa.select(tasks.c.id).where(tasks.c.uuid >= prefix, tasks.c.uuid < upper)
        with self.reader.connect() as conn:
            rows = conn.execute(sa.union(by_id, by_uuid).limit(limit))
            return [row[0] for row in rows]

    @_guarded
    def list(self, query: TaskQuery, newest_first: bool = True) -> list[Task]:
        order = _order(newest_first)
        where = _where(query)
        if query.offset:
            # Skip in the index alone, then read only the rows of the page.
            page = (
                sa.select(tasks.c.seq)
                .where(*where)
                .order_by(*order)
                .limit(query.limit)
                .offset(query.offset)
                .subquery()
            )
            statement = sa.select(*TASK_COLUMNS).join_from(tasks, page, tasks.c.seq == page.c.seq)
        else:
            statement = sa.select(*TASK_COLUMNS).where(*where).limit(query.limit)
        with self.reader.connect() as conn:
            return [_from_row(r) for r in conn.execute(statement.order_by(*order))]

    @_guarded
    def count(self, query: TaskQuery) -> int:
        matching = sa.select(tasks.c.seq).where(*_where(query)).limit(query.limit).subquery()
        with self.reader.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(matching)).scalar()

    @_guarded
    def recent(self, since: float) -> list[Task]:
        started = sa.select(*TASK_COLUMNS).where(tasks.c.started >= since)
        unfinished = sa.select(*TASK_COLUMNS).where(
            tasks.c.status.in_([RUNNING, PENDING]), tasks.c.started < since
        )
        with self.reader.connect() as conn:
            rows = conn.execute(sa.union_all(started, unfinished))
            return sorted((_from_row(r) for r in rows), key=lambda t: t.started)

    @_guarded
    def read(self, task_id: str, stream: str, offset: int = 0, size: int | None = None) -> bytes:
        # Find the chunk holding offset from the chunks' lengths alone, then read
        # only the data from there on: following a growing output stays cheap.
        with self.reader.connect() as conn:
            mine = sa.and_(
                chunks.c.task == _seq(conn, task_id), chunks.c.stream == STREAM_CODES[stream]
            )
            sizes = conn.execute(
                sa.select(chunks.c.seq, sa.func.length(chunks.c.data))
                .where(mine)
                .order_by(chunks.c.seq)
            ).all()
            first, offset = chunk_holding(sizes, offset)
            if first is None:
                return b""
            if size is not None:
                return _read_some(conn, sizes, first, offset, size)
            rows = conn.execute(
                sa.select(chunks.c.data).where(mine, chunks.c.seq >= first).order_by(chunks.c.seq)
            )
            return b"".join(r[0] for r in rows)[offset:]

    @_guarded
    def data_version(self) -> object:
        with self.reader.connect() as conn:
            return conn.execute(sa.select(meta.c.value).where(meta.c.name == "changes")).scalar()

    @_guarded
    def stats(self, since: float, host: str | None = None, top: int = TOP) -> Stats:
        # Grouped by the server; on MySQL by the commands' and hosts' bytes, which
        # its collations would compare without case (and its sorts, commands by
        # their first 1024 bytes only). Each day: two counts in the indexes on
        # start time, all in one statement.
        command, on = tasks.c.command, tasks.c.host
        keys = [command, on]
        on_host = [] if host is None else [on == to_stored(host)]
        if self.dialect == "mysql":
            keys = [sa.func.md5(command), sa.cast(on, sa.LargeBinary)]
            if host is not None:
                on_host.append(keys[1] == to_stored(host).encode())
        failed = sa.case((tasks.c.status == FAILED, 1), else_=0)
        took = tasks.c.ended - tasks.c.started
        groups = (
            sa.select(
                sa.func.min(command),
                sa.func.min(on),
                sa.func.count(),
                sa.func.sum(failed),
                sa.func.sum(took),
                sa.func.count(tasks.c.ended),
                sa.func.max(took),
            )
            .where(tasks.c.started >= since)
            .group_by(*keys)
        )
        spans = window_days(since, time.time())

        def counted(start, end, *where):
            within = [tasks.c.started >= start, tasks.c.started < end, *on_host, *where]
            return sa.select(sa.func.count()).where(*within).scalar_subquery()

        counts = [
            count
            for _, start, end in spans
            for count in (counted(start, end), counted(start, end, tasks.c.status == FAILED))
        ]
        with self.reader.connect() as conn:
            rows = conn.execute(groups).all()
            found = conn.execute(sa.select(*counts)).one() if counts else ()
        days = [(day, found[2 * i], found[2 * i + 1]) for i, (day, _, _) in enumerate(spans)]
        return stats_of_groups(rows, since, host, top, days)

    def listen(self):
        if self.dialect != "postgresql":
            return None
        from qme.store.pglisten import Listener

        try:
            return Listener(self.engine, CHANNEL)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(self.explain(exc)) from None

    @_guarded
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
        # Newest first: a common word's hits are among the newest WINDOW tasks, read
        # one by one; a rarer word's come from the full-text index, all of them
        # first (ordered by an expression, so that the planner cannot choose to
        # walk back through every task looking for it).
        texts = self.texts
        filters = {"executor": executor, "status": status, "cwd": cwd}
        filters.update(session=session, host=host)
        filters = [tasks.c[name] == value for name, value in filters.items() if value]
        rows = []
        newest_first = [tasks.c.started.desc(), texts.c.task.desc()]
        with self.reader.connect() as conn:
            if not rank:
                oldest_in_window = conn.execute(
                    sa.select(tasks.c.started)
                    .order_by(tasks.c.started.desc())
                    .offset(WINDOW - 1)
                    .limit(1)
                ).scalar()
                in_window = tasks.c.started >= (oldest_in_window or 0)
                where, _ = sqlsearch.condition(texts, self.dialect, words, self._sizes(), True)
                rows = self._rows(conn, [where, in_window, *filters], newest_first, limit, offset)
            if len(rows) < limit:
                where, relevance = sqlsearch.condition(texts, self.dialect, words, self._sizes())
                if rank:
                    order = [relevance.desc(), *newest_first]
                else:
                    order = [(tasks.c.started + 0).desc(), texts.c.task.desc()]
                rows = self._rows(conn, [where, *filters], order, limit, offset)
        patterns = [word_pattern(w) for w in words]
        hits = []
        for row in rows:
            task = _from_row(row[: len(COLUMNS)])
            found = first_match(dict(zip(SEARCH_FIELDS, row[len(COLUMNS) :])), patterns)
            hits.append(SearchHit(task, *(found or ("command", task.command))))
        return hits

    # -- who sees what: PostgreSQL's row-level security (qme/store/pgsecurity.py) ---------

    def _postgresql_only(self, what: str) -> None:
        if self.dialect != "postgresql":
            raise Refused(
                f"{what} needs PostgreSQL: MySQL/MariaDB have no row-level security, "
                f"so this {self.name} store cannot keep users' tasks apart"
            )

    @_guarded
    def secure(self, grant_to: str = "PUBLIC") -> list[str]:
        self._postgresql_only("keeping each user's tasks apart")
        with self.engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            return pgsecurity.secure(conn, grant_to)

    @_guarded
    def share(self, task_id: str, group: str, remove: bool = False) -> bool:
        self._postgresql_only("sharing a task")

        def work(conn):
            if not pgsecurity.is_secured(conn):
                raise Refused(
                    "this store lets every user read every task (no row-level security): "
                    "an admin runs 'qme admin init-postgres' first"
                )
            change = pgsecurity.unshare if remove else pgsecurity.share
            return change(conn, task_id, group)

        return self._write(work)

    @_guarded
    def shares(self, task_id: str) -> list[str]:
        if self.dialect != "postgresql":
            return []
        with self.reader.connect() as conn:
            return pgsecurity.shares(conn, task_id)

    def _rows(self, conn, where: list, order: list, limit: int, offset: int) -> list:
        statement = (
            sa.select(*TASK_COLUMNS, *(self.texts.c[name] for name in SEARCH_FIELDS))
            .join_from(self.texts, tasks, tasks.c.seq == self.texts.c.task)
            .where(*where)
            .order_by(*order)
            .limit(limit)
            .offset(offset)
        )
        return conn.execute(statement).all()

    def _sizes(self) -> tuple[int, int]:
        """The shortest and longest word InnoDB's FULLTEXT index keeps."""
        if self._token_sizes is None and self.dialect == "mysql":
            with self.reader.connect() as conn:
                sizes = "SELECT @@innodb_ft_min_token_size, @@innodb_ft_max_token_size"
                self._token_sizes = tuple(conn.execute(sa.text(sizes)).one())
        return self._token_sizes or (0, 0)

    def close(self) -> None:
        self.engine.dispose()


def _seq(conn, task_id: str) -> int:
    seq = conn.execute(sa.select(tasks.c.seq).where(tasks.c.id == task_id)).scalar()
    if seq is None:
        raise NoSuchTask(task_id)
    return seq


def _read_some(conn, sizes, first: int, offset: int, size: int) -> bytes:
    """At most size bytes from byte offset of chunk first on, each chunk cut by the
    server (substring), so that no more than size bytes are ever in memory."""
    pieces, wanted = [], size
    for seq, length in sizes:
        if seq < first or wanted <= 0:
            continue
        take = min(length - offset, wanted)
        part = sa.func.substring(chunks.c.data, offset + 1, take)
        pieces.append(conn.execute(sa.select(part).where(chunks.c.seq == seq)).scalar())
        wanted -= take
        offset = 0
    return b"".join(bytes(piece) for piece in pieces)


def _note(conn, seq: int) -> str:
    """The stored note and tags, as the search index holds them."""
    row = conn.execute(sa.select(tasks.c.message, tasks.c.tags).where(tasks.c.seq == seq)).one()
    tags = json.loads(row.tags) if row.tags else []
    return note_text(from_stored(row.message), tags)


def _stream(conn, seq: int, stream: str) -> bytes:
    rows = conn.execute(
        sa.select(chunks.c.data)
        .where(chunks.c.task == seq, chunks.c.stream == STREAM_CODES[stream])
        .order_by(chunks.c.seq)
    )
    return b"".join(r[0] for r in rows)


def _order(newest_first: bool) -> list:
    if newest_first:
        return [tasks.c.started.desc(), tasks.c.seq.desc()]
    return [tasks.c.started.asc(), tasks.c.seq.asc()]


def _where(query: TaskQuery) -> list:
    clauses = [
        tasks.c[n] == to_stored(getattr(query, n)) for n in FILTERS if getattr(query, n) is not None
    ]
    if query.since is not None:
        clauses.append(tasks.c.started >= query.since)
    if query.until is not None:
        clauses.append(tasks.c.started < query.until)
    if query.tag is not None:
        clauses.append(tasks.c.tags.like(tag_like(query.tag), escape="\\"))
    return clauses


def _to_row(task: Task) -> dict:
    return {c: column_value(c, getattr(task, c)) for c in COLUMNS}


def _from_row(row) -> Task:
    return task_from_row(COLUMNS, row)
