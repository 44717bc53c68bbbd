"""The PostgreSQL/MySQL schema and its versioned migrations.

Migrations run under a server-side lock (PostgreSQL's pg_advisory_xact_lock,
MySQL's GET_LOCK), and the version is read again once the lock is held, so that
several qme starting at once against an empty or old database migrate it once.
On PostgreSQL a migration and its version number commit together.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.dialects import mysql, postgresql

from qme.errors import StoreError
from qme.store.pgsecurity import owner_sees_all
from qme.task import STREAMS, Task

LOCK_SECONDS = 60
PG_LOCK_KEY = 0x716D65  # "qme"

# Ids compare byte by byte: prefix ranges (qme get 5b8a) then use the index.
_ID = (
    String(255)
    .with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb")
    .with_variant(String(255, collation="C"), "postgresql")
)
_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
_NAME = String(255)
TYPES = {
    "id": _ID,
    "executor": String(64),
    "command": _TEXT,
    "argv": _TEXT,
    "cwd": Text(),
    "user": _NAME,
    "host": _NAME,
    "started": Double(),
    "status": String(16),
    "pid": BigInteger(),
    "ended": Double(),
    "returncode": Integer(),
    "signal": Integer(),
    "message": _TEXT,
    "max_rss": BigInteger(),
    "cpu_user": Double(),
    "cpu_system": Double(),
    "term_cols": Integer(),
    "term_rows": Integer(),
    "output_size": BigInteger(),
    "error_size": BigInteger(),
    "rerun_of": _ID,
    "session": _NAME,
    "data": _TEXT,
    "recorder": _NAME,
    "tags": _TEXT,
    "timing": _TEXT,
}
# Every field of Task but the streams (kept in chunks) and its queue.
COLUMNS = [name for name in Task.FIELDS if name not in (*STREAMS, "queue")]
SEARCH_FIELDS = ("command", "message", *STREAMS)
TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}

metadata = MetaData()
tasks = Table(
    "qme_tasks",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("uuid", _ID, nullable=False),  # the id without its executor: prefixes match it
    *(Column(name, TYPES[name], nullable=getattr(Task, name, 0) is None) for name in COLUMNS),
    **TABLE_OPTIONS,
)
chunks = Table(
    "qme_chunks",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("task", BigInteger, nullable=False),
    Column("stream", SmallInteger, nullable=False),
    Column("data", LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")),
    Index("qme_chunks_task", "task", "stream", "seq"),
    **TABLE_OPTIONS,
)
# name 'changes': a counter every write increments (data_version); 'schema': the version.
meta = Table(
    "qme_meta",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
    **TABLE_OPTIONS,
)
Index("qme_tasks_id", tasks.c.id, unique=True)
Index("qme_tasks_uuid", tasks.c.uuid)
Index("qme_tasks_started", tasks.c.started, tasks.c.seq)
for _column in ("status", "executor", "session", "host", "user", "cwd"):
    Index(
        f"qme_tasks_{_column}_started",
        tasks.c[_column],
        tasks.c.started,
        tasks.c.seq,
        mysql_length={"cwd": 255},
    )


def search_table(dialect: str) -> Table:
    """The searchable text of each task, and its full-text index: PostgreSQL a
    tsvector under GIN, MySQL an InnoDB FULLTEXT index over the words."""
    if dialect == "postgresql":
        index_column = Column("tsv", postgresql.TSVECTOR)
        index = {"postgresql_using": "gin"}
    else:
        index_column = Column("words", _TEXT)
        index = {"mysql_prefix": "FULLTEXT"}
    table = Table(
        "qme_search",
        MetaData(),
        Column("task", BigInteger, primary_key=True, autoincrement=False),
        *(Column(name, _TEXT) for name in SEARCH_FIELDS),
        index_column,
        **TABLE_OPTIONS,
    )
    Index(f"qme_search_{index_column.name}", index_column, **index)
    return table


def _version_1(conn) -> None:
    if conn.dialect.name != "postgresql":
        # Index every word: InnoDB's stopword list would leave out "the", "on", "an"…
        conn.execute(text("SET SESSION innodb_ft_enable_stopword = OFF"))
    metadata.create_all(conn)
    search_table(conn.dialect.name).create(conn)
    conn.execute(meta.insert(), [{"name": "changes", "value": 0}, {"name": "schema", "value": 0}])


def _add_columns(conn, names: list[str]) -> None:
    """Add Task fields that came after a database was made (version 1 makes a new
    one with every column of its qme, so only those missing are added)."""
    from sqlalchemy import inspect

    have = {column["name"] for column in inspect(conn).get_columns(tasks.name)}
    for name in names:
        if name not in have:
            kind = TYPES[name].compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {tasks.name} ADD COLUMN {name} {kind}"))


def _owners(conn) -> None:
    """PostgreSQL: each task's owner, the role that wrote it (set by the server, so
    a client cannot claim another's), and the table of shares: what row-level
    security (qme/store/pgsecurity.py) keeps users apart by. Tasks written before
    have none until `qme admin init-postgres` gives them one."""
    if conn.dialect.name != "postgresql":
        return  # MySQL/MariaDB have no row-level security
    conn.execute(text("ALTER TABLE qme_tasks ADD COLUMN IF NOT EXISTS owner name"))
    conn.execute(text("ALTER TABLE qme_tasks ALTER COLUMN owner SET DEFAULT current_user"))
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS qme_shares (task bigint NOT NULL, grp name NOT NULL, "
            "owner name NOT NULL DEFAULT current_user, PRIMARY KEY (task, grp, owner))"
        )
    )
    conn.execute(text("CREATE INDEX IF NOT EXISTS qme_tasks_owner ON qme_tasks (owner)"))


# One entry per schema version; a database at version N has had the first N applied.
MIGRATIONS = [
    _version_1,
    lambda conn: _add_columns(conn, ["timing"]),  # when the output came (Task.timing)
    lambda conn: _add_columns(conn, ["tags"]),  # the user's labels (Task.tags)
    lambda conn: _owners(conn),  # PostgreSQL: who wrote each task, and shares (pgsecurity.py)
]


def _version(conn) -> int:
    if not conn.dialect.has_table(conn, "qme_meta"):
        return 0
    return conn.execute(select(meta.c.value).where(meta.c.name == "schema")).scalar() or 0


def migrate(engine) -> None:
    """Bring the schema up to date; cheap (one query) when it already is."""
    with engine.connect() as conn:
        version = _version(conn)
        conn.rollback()
    if version == len(MIGRATIONS):
        return
    if version > len(MIGRATIONS):
        raise StoreError(f"the database was written by a newer qme (schema {version})")
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            with owner_sees_all(conn):  # a migration sees every row, whoever owns it
                _apply(conn)
        return
    with engine.connect() as conn:
        # MySQL's DDL commits at once: the lock spans the steps, each recorded as it ends.
        name = "CONCAT('qme_schema.', DATABASE())"
        locked = conn.execute(text(f"SELECT GET_LOCK({name}, {LOCK_SECONDS})")).scalar()
        if locked != 1:
            raise StoreError(f"another qme has been migrating the database for {LOCK_SECONDS}s")
        try:
            _apply(conn, commit=True)
        finally:
            conn.execute(text(f"SELECT RELEASE_LOCK({name})"))
            conn.commit()


def _apply(conn, commit: bool = False) -> None:
    version = _version(conn)  # again, under the lock: another qme may have done it
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        step(conn)
        conn.execute(meta.update().where(meta.c.name == "schema").values(value=number))
        if commit:
            conn.commit()
