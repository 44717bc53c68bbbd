"""The marks the shell hooks print, and finding them in the shell's output.

A mark is an OSC escape sequence that no terminal acts on:

    ESC ] 6973 ; qme ; S ; <pid> ; <cwd> ; c ; <command> BEL  a command starts
    ESC ] 6973 ; qme ; B ; <pid> BEL                          bash: a command begins (PS0);
                                                              its S mark follows
    ESC ] 6973 ; qme ; S ; <pid> ; <cwd> ; h ; <history> BEL  bash's S, with the output of
                                                              `history 1` (a DEBUG trap prints
                                                              it before the line's first
                                                              command, or before the prompt)
    ESC ] 6973 ; qme ; E ; <pid> ; <exit status> BEL          a prompt is about to show
    ESC ] 6973 ; qme ; E ; <pid> ; T BEL                      the same, the command stopped
                                                              (fish, which says 0 for that)
    ESC ] 6973 ; qme ; L ; <pid> BEL                          the state of `qme on` is loaded
    ESC ] 6973 ; qme ; D ; <pid> ; <a|f> ; <name> ; <text> BEL  the command that ran uses
                                                              this alias (a: its value) or
                                                              function (f: its definition),
                                                              as they are after it; between
                                                              its S and its E
    ESC ] 6973 ; qme ; <anything else> BEL                    not for the proxy (bash's PS0
                                                              restores history settings in one)

pid is the shell's: the proxy takes marks only from the shell it started, so a
shell started inside it (`bash` in a recorded zsh) is one task, like any other
program. cwd and command are percent-encoded: bash and zsh encode '%', ESC, BEL
and ';' (and in a D mark also CR and LF, which the pty would change), fish
(`string escape --style=url`) all but letters, digits and a few marks. bash's
history line is not (the hook prints it without starting a process).
"""

from __future__ import annotations

import re
import signal
from collections import namedtuple

PREFIX = b"\x1b]6973;qme;"
END = b"\x07"
MAX_MARK = 1 << 20  # a "mark" longer than this is not one: pass it through as output
_HISTORY_LINE = re.compile(r"\s*\d+\*?  (.*?)\n?\Z", re.S)


_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def decode(field: bytes) -> str:
    """Undo the percent-encoding (every hook encodes '%' itself, so this is exact)."""
    raw = _PERCENT.sub(lambda match: bytes([int(match.group(1), 16)]), field)
    return raw.decode("utf-8", errors="replace")


# A command begins; its Start follows (bash, whose PS0 cannot know the line).
Begin = namedtuple("Begin", "pid")
# A command starts in cwd.
Start = namedtuple("Start", "pid cwd command")
# The shell is about to show a prompt; status is the last command's exit status.
End = namedtuple("End", "pid status")
# The session shell has loaded the state `qme on` carried over (state.py).
Loaded = namedtuple("Loaded", "pid")
# The command about to start uses alias (kind "a") or function ("f") name, whose
# value or definition is text (rerun.py).
Uses = namedtuple("Uses", "pid kind name text")
STOPPED_STATUS = 128 + signal.SIGTSTP  # what bash and zsh say of a job Ctrl-Z stopped


def parse_mark(body: bytes) -> Begin | Start | End | Loaded | Uses | None:
    kind, _, rest = body.partition(b";")
    pid, _, rest = rest.partition(b";")
    try:
        pid = int(pid)
        if kind == b"B":
            return Begin(pid)
        if kind == b"E":
            return End(pid, STOPPED_STATUS if rest == b"T" else int(rest))
        if kind == b"L":
            return Loaded(pid)
    except ValueError:
        return None
    if kind == b"D":
        what, _, rest = rest.partition(b";")
        name, _, text = rest.partition(b";")
        if what in (b"a", b"f") and name:
            return Uses(pid, what.decode(), decode(name), decode(text))
        return None
    if kind == b"S":
        cwd, _, rest = rest.partition(b";")
        form, _, command = rest.partition(b";")
        if form == b"h":
            # Printed through the pty, so its line ends came back as \r\n.
            line = command.decode("utf-8", errors="replace").replace("\r\n", "\n")
            match = _HISTORY_LINE.match(line)
            if match:
                return Start(pid, decode(cwd), match.group(1))
        elif form == b"c":
            # Also printed through the pty: a multi-line command's \n came back as \r\n.
            return Start(pid, decode(cwd), decode(command).replace("\r\n", "\n"))
    return None


class MarkParser:
    """Splits a byte stream into output (bytes) and marks (Begin/Start/End/Loaded/Uses),
    in order; a mark cut in two by a read is held back until the rest arrives."""

    def __init__(self):
        self.pending = b""

    def feed(self, data: bytes) -> list[bytes | Begin | Start | End | Loaded | Uses]:
        data, self.pending = self.pending + data, b""
        items: list[bytes | Begin | Start | End | Loaded | Uses] = []
        while data:
            at = data.find(PREFIX)
            if at < 0:
                keep = _partial_prefix(data)
                self.pending, data = data[len(data) - keep :], data[: len(data) - keep]
                if data:
                    items.append(data)
                break
            if at:
                items.append(data[:at])
            end = data.find(END, at)
            if end < 0:
                if len(data) - at > MAX_MARK:
                    items.append(data[at:])
                else:
                    self.pending = data[at:]
                break
            mark = parse_mark(data[at + len(PREFIX) : end])
            if mark is not None:
                items.append(mark)
            data = data[end + 1 :]
        return items


def _partial_prefix(data: bytes) -> int:
    """How many bytes at the end of data could begin a mark."""
    tail = data[-(len(PREFIX) - 1) :]
    start = tail.find(b"\x1b")
    while start >= 0:
        if PREFIX.startswith(tail[start:]):
            return len(tail) - start
        start = tail.find(b"\x1b", start + 1)
    return 0
