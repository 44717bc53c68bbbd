"""Opening the configured store: `sqlite` (default), `sqlite://FILE`, `filesystem`."""

from __future__ import annotations

import os

from qme.config import Settings
from qme.errors import ConfigError
from qme.store.base import SearchHit, Store, TaskQuery

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
    if kind.startswith(("postgresql", "mysql")):
        raise ConfigError(
            f"database '{kind}' needs the PostgreSQL/MySQL store, which this version of "
            "qme does not have yet; use sqlite or filesystem"
        )
    raise ConfigError(f"unknown database '{database}' (use sqlite, sqlite://FILE or filesystem)")


def open_store(settings: Settings) -> Store:
    kind, path = describe(settings)
    if kind == "sqlite":
        from qme.store.sqlite import SqliteStore

        return SqliteStore(path, busy_timeout=settings.busy_timeout)
    from qme.store.filesystem import FilesystemStore

    return FilesystemStore(path)
