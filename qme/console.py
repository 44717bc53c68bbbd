"""One-line messages to stderr, filtered by the log level.

The standard `logging` package is deliberately not used: `qme run` may wrap
every command a user types, and these few lines are all it needs.
"""

from __future__ import annotations

import sys

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50, "FATAL": 50}

_threshold = LEVELS["WARNING"]
_find_level = None  # finds the level when the first message comes; see set_level


def set_level(level) -> None:
    """level: a name, or a function returning one (or None: keep WARNING) that is
    called when the first message comes, so that `qme run` reads its configuration
    only if it has something to say."""
    global _threshold, _find_level
    if callable(level):
        _find_level = level
    else:
        _threshold, _find_level = LEVELS[level.upper()], None


def _current_threshold() -> int:
    global _find_level
    if _find_level is not None:
        find, _find_level = _find_level, None
        name = find()
        if name:
            set_level(name)
    return _threshold


def shows(level: str) -> bool:
    """Are messages of this level shown?"""
    return LEVELS[level] >= _current_threshold()


def _emit(level: str, message: str) -> None:
    if shows(level):
        if not message.isprintable():  # a command or a path from a record, say
            from qme.text import printable  # imports re: only when needed

            message = printable(message)
        try:
            sys.stderr.write(f"qme: {level.lower()}: {message}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # stderr closed: nothing sensible left to do


def debug(message: str) -> None:
    _emit("DEBUG", message)


def info(message: str) -> None:
    _emit("INFO", message)


def warn(message: str) -> None:
    _emit("WARNING", message)
