"""Where, by whom and as what a command runs: its argv and text, user, host, cwd.

On `qme run`'s start-up path, so standard library only and none of `shlex`,
`getpass` or `re` (each costs more to import than these few lines).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# A lone argument with any of these is a shell line: `qme run "ls | wc -l"`.
SHELL_SYNTAX = frozenset(" \t\n|&;<>()$`\\\"'*?[]#~={}")
# What shlex.quote leaves unquoted.
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-")


def command_line(command: str | Sequence[str]) -> tuple[list[str], str]:
    """(argv to execute, command as the user wrote it)."""
    from qme.errors import QmeError

    parts = [command] if isinstance(command, str) else list(command)
    if not parts or not parts[0].strip():
        raise QmeError("no command given")
    if len(parts) == 1 and SHELL_SYNTAX.intersection(parts[0]):
        shell = os.environ.get("SHELL") or "/bin/sh"
        return [shell, "-c", parts[0]], parts[0]
    return parts, " ".join(quote(part) for part in parts)


def quote(word: str) -> str:
    """shlex.quote; a word with bytes that are not UTF-8 (surrogateescape) as bash
    quotes it, $'…' with those bytes as \\xHH."""
    if word and _SAFE.issuperset(word):
        return word
    if not word.isascii() and any("\udc80" <= c <= "\udcff" for c in word):
        return "$'" + "".join(_ansi_c(c) for c in word) + "'"
    return "'" + word.replace("'", "'\"'\"'") + "'"


_ANSI_C = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\E"}


def _ansi_c(char: str) -> str:
    """One character inside bash's $'…'."""
    if char in _ANSI_C:
        return _ANSI_C[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    return char


def current_user() -> str:
    """getpass.getuser(): the login name from the environment, else the password file."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(name):
            return os.environ[name]
    return _account_name(os.getuid())


_ACCOUNT_NAMES: dict[int, str] = {}  # read once per process: a session asks at every command


def _account_name(uid: int) -> str:
    """The password file's name for uid."""
    if uid not in _ACCOUNT_NAMES:
        try:
            import pwd

            _ACCOUNT_NAMES[uid] = pwd.getpwuid(uid).pw_name
        except (ImportError, KeyError):
            _ACCOUNT_NAMES[uid] = str(uid)
    return _ACCOUNT_NAMES[uid]


def current_directory() -> str:
    """The working directory; where it was ($PWD) if it has since been deleted."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        return os.environ.get("PWD") or "."


def hostname() -> str:
    return os.uname().nodename
