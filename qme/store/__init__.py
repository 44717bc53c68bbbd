"""Opening the configured store: `sqlite` (default), `sqlite://FILE`, `filesystem`,
`postgresql`, `mysql+pymysql` (or their full URLs; see qme/store/servers.py)."""

from __future__ import annotations

import os

from qme.config import Settings
from qme.errors import ConfigError, StoreError
from qme.store import servers
from qme.store.base import SearchHit, Store, TaskQuery
from qme.text import shown

__all__ = ["SearchHit", "Store", "TaskQuery", "open_store", "describe"]

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
        # sqlite://name.db is relative to QME_HOME; sqlite:////abs/path.db is absolute.
        rest = "/" + rest.lstrip("/") if rest.startswith("//") else rest
        return "sqlite", _location(settings, rest, DEFAULT_SQLITE_FILE)
    if kind == "filesystem":
        return "filesystem", _location(settings, rest, DEFAULT_FILESYSTEM_FOLDER)
    if servers.is_server(database):
        server, url = servers.server_url(database, settings.get("database_string"))
        return server, servers.redact(url)
    raise ConfigError(
        f"unknown database '{shown(servers.redact(database))}' (use sqlite, sqlite://FILE, "
        "filesystem, postgresql or mysql+pymysql)"
    )


def open_store(settings: Settings) -> Store:
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

        return SqliteStore(path, busy_timeout=settings.busy_timeout)
    from qme.store.filesystem import FilesystemStore

    return FilesystemStore(path)
