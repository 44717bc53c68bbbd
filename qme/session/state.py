"""Carrying a live shell's state into the session shell that `qme on` starts.

A nested shell starts from the rc files, not from the shell it was started in. So
the hooks' `qme on` writes that shell's state (aliases, functions, variables,
options, directory stack, umask, traps, `$?`) as commands to source (fish: its
variables as a list qme turns into commands), and its in-memory history, into a
private folder (`mktemp -d`, 0700) named by QME_STATE.
qme reads the folder and deletes it at once, before anything else starts; the
session shell gets the commands on an inherited descriptor of a file that has no
name (a memfd, or an unlinked temporary file) and sources it after the user's
rc files and the hooks, so that what was typed by hand wins. The shell then
prints the mark LOADED and the proxy empties the file: the state (which may hold
secrets) is on no disk under any name, and in memory no longer than needed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile

FD = 60  # where the session shell finds it: clear of 0-9, which rc files use
ENV = "QME_STATE"
_TIMESTAMP = re.compile(r"#\d+\Z")
_ZSH_EXTENDED = re.compile(r": \d+:\d+;")


class Snapshot:
    def __init__(self, kind: str, state: bytes, history: bytes, variables: bytes = b""):
        """variables: fish's, as its hook lists them (see _fish_variables)."""
        self.kind, self.state, self.history = kind, state, history
        self.variables = variables

    def script(self) -> bytes:
        """What the session shell sources: the state, the hooks installed again
        (the state brings the outer shell's PROMPT_COMMAND, precmd_functions, …
        which lack them), the mark that it is loaded, then the history (last: in
        bash, lines sourced after `set -o history` reach the history, and go)."""
        history = "".join(_HISTORY_LINE[self.kind](entry) for entry in self._entries())
        return (
            self.state
            + _fish_variables(self.variables)
            + _AFTER[self.kind].encode()
            + _CLEAR[self.kind].encode()
            + history.encode("utf-8", "surrogateescape")
        )

    def _entries(self) -> list[str]:
        text = self.history.decode("utf-8", "surrogateescape")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if self.kind == "bash":
            return _bash_entries(lines)
        if self.kind == "zsh":
            return _zsh_entries(lines)
        return []  # fish shares its history through its own file


def _fish_variables(listed: bytes) -> bytes:
    """fish's `set` commands for its variables, listed by its hook as a line
    `<tab>-g NAME` (or -gx) for each, then its elements as `string escape` gives
    them, one a line (an escaped element holds no tab or newline)."""
    commands = []
    for line in listed.split(b"\n"):
        if line.startswith(b"\t"):
            commands.append(b"set " + line[1:])
        elif line and commands:
            commands[-1] += b" " + line
    return b"".join(command + b" 2>/dev/null\n" for command in commands)


def _bash_entries(lines: list[str]) -> list[str]:
    """`history -w` with HISTTIMEFORMAT set: each entry after a #<time> line, so
    that an entry of several lines stays one."""
    if not any(_TIMESTAMP.match(line) for line in lines):
        return lines
    entries: list[list[str]] = []
    for line in lines:
        if _TIMESTAMP.match(line):
            entries.append([])
        elif entries:
            entries[-1].append(line)
    return ["\n".join(entry) for entry in entries if entry]


def _zsh_entries(lines: list[str]) -> list[str]:
    """`fc -W`: one entry a line, ': <time>:<duration>;' in front with
    EXTENDED_HISTORY, a line ending in a backslash going on on the next."""
    entries, current = [], []
    for line in lines:
        if line.endswith("\\"):
            current.append(line[:-1])
            continue
        current.append(line)
        entry = "\n".join(current)
        current = []
        entries.append(_ZSH_EXTENDED.sub("", entry, count=1))
    return entries


LOADED = "builtin printf '\\e]6973;qme;L;%s\\a' \"$$\"\n"
_CLEAR = {"bash": "builtin history -c\n", "zsh": "", "fish": ""}
_HISTORY_LINE = {
    # all of it, whatever HISTCONTROL says: it ruled the outer shell's already
    "bash": lambda entry: f"HISTCONTROL= HISTIGNORE= builtin history -s -- {shlex.quote(entry)}\n",
    "zsh": lambda entry: f"print -rs -- {shlex.quote(entry)}\n",
    "fish": lambda entry: "",
}
_AFTER = {
    "bash": "\n__qme_install\n" + LOADED,
    "zsh": "\n__qme_install\n" + LOADED,
    # fish reads its history file once: merge what the shell `qme on` was typed in
    # saved just before (`history save` in its hook), or Up-arrow may miss it.
    "fish": "\n__qme_install\nbuiltin history merge\n"
    "builtin printf '\\e]6973;qme;L;%s\\a' $fish_pid\n",
}


def take(env: dict[str, str], kind: str) -> Snapshot | None:
    """The snapshot QME_STATE names (removed from env), read and deleted at once;
    None when there is none or it cannot be read."""
    folder = env.pop(ENV, None)
    if not folder:
        return None
    try:
        with open(os.path.join(folder, "state"), "rb") as handle:
            state = handle.read()
        history, variables = (_read_if_there(folder, name) for name in ("history", "variables"))
    except OSError:
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Snapshot(kind, state, history, variables)


def _read_if_there(folder: str, name: str) -> bytes:
    try:
        with open(os.path.join(folder, name), "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""


class Handover:
    """The script on descriptor FD of the shell about to start, from a file with
    no name; emptied (clear()) once the shell has loaded it."""

    def __init__(self, script: bytes):
        self.fd = _nameless_file()
        os.write(self.fd, script)
        os.lseek(self.fd, 0, os.SEEK_SET)

    def __enter__(self) -> Handover:
        """Until exit: FD is the script, and inherited by what is started."""
        self.saved = _dup_if_open(FD)
        os.dup2(self.fd, FD, inheritable=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is None:
            os.close(FD)
        else:
            os.dup2(self.saved, FD)
            os.close(self.saved)

    def clear(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


def _nameless_file() -> int:
    if hasattr(os, "memfd_create"):
        try:
            return os.memfd_create("qme-state")
        except OSError:
            pass
    fd, path = tempfile.mkstemp(prefix="qme-state-")
    os.unlink(path)
    return fd


def _dup_if_open(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:
        return None


def source_line(kind: str) -> str:
    """The rc line that loads the script (and closes the descriptor)."""
    if kind == "fish":
        return f"source /dev/fd/{FD}"
    # {var}<&- closes the descriptor in var: zsh reads `60<&-` as a command 60
    close = f"__qme_fd={FD}; exec {{__qme_fd}}<&-"
    return f'. /dev/fd/{FD}; {close}; __qme_return "${{__qme_status:-0}}"\n'
