"""Exceptions the library raises; the CLI turns each into one `qme: error: …` line."""

from __future__ import annotations


class QmeError(Exception):
    """Base class for errors a user can act on."""

    exit_code = 1


class ConfigError(QmeError):
    """The configuration (file, environment or flag) is unusable."""


class StoreError(QmeError):
    """The store cannot be opened, read or written."""


class Refused(QmeError):
    """The action does not apply to the task as it is now (cancel a finished task)."""


class NoSuchTask(QmeError):
    def __init__(self, query: str, why: str | None = None):
        super().__init__(f"no task matches '{query}'" + (f" ({why})" if why else ""))


class AmbiguousTask(QmeError):
    def __init__(self, query: str, candidates: list[str]):
        shown = ", ".join(candidates[:5])
        more = " …" if len(candidates) > 5 else ""
        super().__init__(f"'{query}' matches several tasks: {shown}{more}; give more characters")


class UnknownExecutor(QmeError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown executor '{name}' (known: {', '.join(sorted(known))})")


class NoSuchAction(QmeError):
    def __init__(self, executor: str, name: str, offered: list[str]):
        its = ", ".join(offered) if offered else "it has none"
        super().__init__(f"the {executor} executor has no action '{name}' ({its})")
