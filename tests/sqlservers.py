"""The PostgreSQL and MariaDB/MySQL servers that the SQL stores are tested on.

scripts/sqlservers.sh starts them (scripts/test.sh runs it). QME_TEST_POSTGRESQL
and QME_TEST_MYSQL give their URLs; the defaults are what that script creates.
Each test gets its own PostgreSQL schema or MySQL database (database_url()),
dropped at the end of the session (drop_all(), from conftest.py).
"""

from __future__ import annotations

import hashlib
import os

from helpers import unavailable

URLS = {
    "postgresql": os.environ.get(
        "QME_TEST_POSTGRESQL", "postgresql+psycopg://qme:qme-test-pw@127.0.0.1/qme_test"
    ),
    "mysql": os.environ.get("QME_TEST_MYSQL", "mysql+pymysql://qme:qme-test-pw@127.0.0.1/qme_test"),
}
KINDS = tuple(URLS)
_admins: dict[str, object] = {}  # kind -> engine on the base URL
_made: set[tuple[str, str]] = set()  # (kind, schema or database) made by database_url()


def admin(kind: str):
    """An engine on the server's base URL; unavailable() when it does not answer."""
    if kind not in _admins:
        try:
            import sqlalchemy as sa
        except ImportError:
            unavailable("SQLAlchemy is not installed (pip install -e '.[test]')")
        engine = sa.create_engine(
            URLS[kind],
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 5},
            pool_pre_ping=True,  # test_sql_outage.py takes the server away for a while
        )
        try:
            with engine.connect():
                pass
        except Exception as exc:  # noqa: BLE001 - any driver error: the server is not there
            from qme.store import servers

            reason = servers.scrub(str(exc).splitlines()[0], URLS[kind])
            unavailable(f"the {kind} test server does not answer ({reason})")
        _admins[kind] = engine
    return _admins[kind]


def database_url(kind: str, key: str) -> str:
    """The URL of an empty schema (PostgreSQL) or database (MySQL) of its own for
    key (a test's tmp_path): made on the first call, the same on later calls."""
    import sqlalchemy as sa

    name = "qme_test_" + hashlib.sha1(str(key).encode()).hexdigest()[:12]
    engine = admin(kind)
    if (kind, name) not in _made:
        noun = "SCHEMA" if kind == "postgresql" else "DATABASE"
        with engine.connect() as conn:
            cascade = " CASCADE" if kind == "postgresql" else ""
            conn.execute(sa.text(f"DROP {noun} IF EXISTS {name}{cascade}"))
            conn.execute(sa.text(f"CREATE {noun} {name}"))
        _made.add((kind, name))
    url = sa.make_url(URLS[kind])
    if kind == "postgresql":
        url = url.update_query_dict({"options": f"-csearch_path={name}"})
    else:
        url = url.set(database=name)
    return url.render_as_string(hide_password=False)


def store(kind: str, key: str):
    from qme.store.sql import SqlStore

    return SqlStore(kind, database_url(kind, key))


def database(name: str, key: str) -> str:
    """The `database` setting for a store by name: a server's fresh database for
    key, or name itself (sqlite, filesystem)."""
    return database_url(name, key) if name in KINDS else name


def drop_all() -> None:
    import sqlalchemy as sa

    for kind, name in sorted(_made):
        noun, cascade = ("SCHEMA", " CASCADE") if kind == "postgresql" else ("DATABASE", "")
        with _admins[kind].connect() as conn:
            conn.execute(sa.text(f"DROP {noun} IF EXISTS {name}{cascade}"))
    _made.clear()
    for engine in _admins.values():
        engine.dispose()
    _admins.clear()
