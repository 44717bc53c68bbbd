"""Opening the configured store: `sqlite` (default), `sqlite://FILE`, `filesystem`,
`postgresql`, `mysql+pymysql` (or their full URLs; see qme/store/servers.py)."""

from __future__ import annotations

import os

from qme.config import Settings
from qme.errors import ConfigError, StoreError
from qme.store import servers
from qme.store.base import SearchHit, Store, TaskQuery
from qme.text import shown

__all__ = ["SearchHit", "Store", "TaskQuery", "open_store", "describe", "identity"]

DEFAULT_SQLITE_FILE = "qme.db"
DEFAULT_FILESYSTEM_FOLDER = "database"


def _location(settings: Settings, spec: str, default: str) -> str:
    path = os.path.expanduser(spec or settings.get("database_string") or default)
    return os.path.join(settings.home, path)  # an absolute path stays as it is


def describe(settings: Settings) -> tuple[str, str]:
    """(backend name, path) of the configured store, without opening it."""
    database = settings.get("database").strip()
    kind, _, rest = database.partition("://")
    if kind == "sqlite":
        return "sqlite", _location(settings, _sqlite_path(rest), DEFAULT_SQLITE_FILE)
    if kind == "filesystem":
        return "filesystem", _location(settings, rest, DEFAULT_FILESYSTEM_FOLDER)
    if servers.is_server(database):
        server, url = servers.server_url(database, settings.get("database_string"))
        return server, servers.redact(url)
    raise ConfigError(
        f"unknown database '{shown(servers.redact(database))}' (use sqlite, sqlite://FILE, "
        "filesystem, postgresql or mysql+pymysql)"
    )


def _sqlite_path(rest: str) -> str:
    """The file of a sqlite URL, after `sqlite://`, read as SQLAlchemy reads it:
    `sqlite:////abs/path.db` is absolute, `sqlite:///name.db` relative (to
    QME_HOME: a setting must name the same store wherever a command runs), and
    qme's own `sqlite://name.db` relative too."""
    if rest.startswith("//"):
        return "/" + rest.lstrip("/")
    return rest.removeprefix("/")


def identity(settings: Settings) -> str | None:
    """Which store the settings name, as one line without a password: what a
    spooled record is tied to (`sqlite:/home/ada/.qme/qme.db`,
    `postgresql:qme:***@db.example.org/qme`). None when the settings name no
    store (an unknown kind, an unreadable config.ini): such records are delivered
    by `qme sync` to the store it is run for."""
    try:
        kind, where = describe(settings)
    except ConfigError:
        return None
    return f"{kind}:{where.partition('://')[2] or where}"


def open_store(settings: Settings, create: bool = True) -> Store:
    """The configured store. create=False (readers): a SQLite or filesystem store
    that does not exist yet is not created (no folder, no file) until something is
    written to it; until then it reads as empty."""
    kind, path = describe(settings)
    if kind in servers.KINDS.values():
        database = settings.get("database").strip()
        try:
            from qme.store.sql import SqlStore

            return SqlStore(*servers.server_url(database, settings.get("database_string")))
        except ImportError:  # SQLAlchemy or the driver (imported when connecting)
            raise StoreError(servers.missing_driver(kind)) from None
    if kind == "sqlite":
        from qme.store.sqlite import SqliteStore

        return SqliteStore(path, busy_timeout=settings.busy_timeout, create=create)
    from qme.store.filesystem import FilesystemStore

    return FilesystemStore(path, create=create)
