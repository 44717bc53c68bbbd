"""Where a PostgreSQL or MySQL/MariaDB store is, and how to say so without its password.

`database` names the server (`postgresql`, `mysql+pymysql`, QueueMe's spellings)
and `database_string` gives the rest, `user:password@host/dbname`, so that the
password can stay in the environment; a full URL in `database` works too. Only
the standard library, imported lazily: `qme run` on SQLite passes through here.
"""

from __future__ import annotations

from qme.errors import ConfigError

# Spellings accepted in `database` -> the SQLAlchemy dialect+driver qme uses.
DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mariadb+pymysql": "mysql+pymysql",
}
KINDS = {"postgresql+psycopg": "postgresql", "mysql+pymysql": "mysql"}
# kind -> (what to install, the extra that brings it)
EXTRAS = {
    "postgresql": ("SQLAlchemy and psycopg", "postgres"),
    "mysql": ("SQLAlchemy and PyMySQL", "mysql"),
}
HIDDEN = "***"


def is_server(database: str) -> bool:
    return database.partition("://")[0].lower() in DRIVERS


def server_url(database: str, database_string: str) -> tuple[str, str]:
    """(kind, SQLAlchemy URL) for a `database` setting naming a server."""
    scheme, sep, rest = database.partition("://")
    driver = DRIVERS[scheme.lower()]
    if not sep:
        rest = database_string.strip()
        if not rest:
            raise ConfigError(
                f"database '{scheme}' needs the server's address in QME_DATABASE_STRING "
                "(user:password@host/dbname), or a full URL"
            )
        rest = rest.partition("://")[2] or rest  # a full URL there is taken as it is
    if "/" not in rest.rpartition("@")[2]:
        raise ConfigError(
            f"'{redact(rest)}' does not name a database: use user:password@host/dbname"
        )
    return KINDS[driver], f"{driver}://{rest}"


def password(value: str) -> str | None:
    """The password in a URL or in `user:password@host/dbname`, if any."""
    if "@" not in value:
        return None
    from urllib.parse import urlsplit  # not on qme run's path to SQLite

    try:
        return urlsplit(value if "://" in value else "x://" + value).password
    except ValueError:
        return None


def redact(value: str) -> str:
    """value with its password (if any) replaced by ***."""
    return scrub(value, value)


def scrub(text: str, url: str) -> str:
    """text with url's password removed, however it is spelled (drivers may quote it)."""
    secret = password(url)
    if not secret:
        return text
    from urllib.parse import unquote

    for form in (f":{secret}@", f":{unquote(secret)}@"):
        text = text.replace(form, f":{HIDDEN}@")
    for form in (secret, unquote(secret)):
        if len(form) >= 3:  # a one- or two-letter password would mangle the text
            text = text.replace(form, HIDDEN)
    return text


def missing_driver(kind: str) -> str:
    what, extra = EXTRAS[kind]
    return f"the {kind} store needs {what}: pip install 'qme[{extra}]'"
