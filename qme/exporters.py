"""Recorded tasks turned into what people use: a shell script (`sh`), a Markdown log
(`md`), a Jupyter notebook (`ipynb`, nbformat 4) and an asciicast v3 recording
(`cast`, asciinema 3's format); and a task's output as timed chunks, for replay.

Each renderer takes the tasks oldest first, without their streams, and `load`,
which gives one task with them: a long history is rendered one task at a time.
Everything is written as bytes, so a command or a path that is not valid UTF-8
comes out as it was typed.
"""

from __future__ import annotations

import codecs
import json
import re
import time
from collections.abc import Callable, Iterable
from typing import BinaryIO

from qme.origin import quote
from qme.task import COMPLETE, STREAMS, Task
from qme.text import searchable
from qme.version import __version__

FORMATS = ("sh", "md", "ipynb", "cast")
# What md and ipynb show of one task's output: the first and the last HEAD_LINES
# lines, each cut at LINE_CHARS characters (the whole output stays in the store).
HEAD_LINES = 100
LINE_CHARS = 1000
DEFAULT_TERM = (80, 24)

Load = Callable[[Task], Task]
# (seconds since the task started, stream, bytes)
Chunk = tuple[float, str, bytes]


def timed_chunks(task: Task) -> list[Chunk]:
    """A task's stored output and error cut where its timing index says, each piece
    with the time it came, in time order (output first at equal times). A stream
    without an index (recorded before qme kept one, or imported) comes whole at 0."""
    chunks: list[Chunk] = []
    for stream in STREAMS:
        data = getattr(task, stream) or b""
        index = (task.timing or {}).get(stream) or [[0, 0]]
        starts = [min(max(0, offset), len(data)) for offset, _ in index]
        starts[0] = 0
        for n, (start, (_, ms)) in enumerate(zip(starts, index)):
            end = starts[n + 1] if n + 1 < len(starts) else len(data)
            if end > start:
                chunks.append((max(0, ms) / 1000, stream, data[start:end]))
    chunks.sort(key=lambda chunk: chunk[0])
    return chunks


def render(
    kind: str, tasks: list[Task], load: Load, out: BinaryIO, max_wait: float | None = None
) -> int:
    """Write tasks (oldest first) to out as kind (one of FORMATS); returns how many.
    max_wait: for cast, the idle_time_limit a player applies."""
    if kind == "cast":
        _cast(tasks, load, out, max_wait)
    else:
        {"sh": _sh, "md": _md, "ipynb": _ipynb}[kind](tasks, load, out)
    return len(tasks)


# -- what every format says about a task ----------------------------------------------


def ending(task: Task) -> str:
    """How the task ended, in words: 'exit 0', 'exit 2 (failed)', 'signal 15
    (cancelled)', 'running'…"""
    if task.signal:
        return f"signal {task.signal} ({task.status})"
    if task.returncode is not None:
        return f"exit {task.returncode}" + ("" if task.status == COMPLETE else f" ({task.status})")
    return task.status


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _took(task: Task) -> str:
    duration = task.duration
    if duration is None:
        return "-"
    return (
        f"{duration:.1f} s" if duration < 60 else f"{int(duration // 60)} min {duration % 60:.0f} s"
    )


def _shell(tasks: list[Task]) -> str:
    """The shell the commands were typed in (a `qme on` session's), else bash."""
    names = {t.argv[0].rsplit("/", 1)[-1].lstrip("-") for t in tasks if t.session and t.argv}
    return names.pop() if len(names) == 1 and names <= {"bash", "zsh", "fish"} else "bash"


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# -- sh ---------------------------------------------------------------------------------


def _sh(tasks: list[Task], load: Load, out: BinaryIO) -> None:
    """A script that runs the commands again, in order, each in its directory."""
    shell = _shell(tasks)
    out.write(
        _bytes(
            f"#!/usr/bin/env {shell}\n"
            f"# {len(tasks)} command{'' if len(tasks) == 1 else 's'} recorded by qme, "
            f"exported by qme {__version__} on {_when(time.time())}.\n"
            "# Each runs in the directory it ran in; how it ended is said above it.\n"
            "# Failed commands are part of the story: the script goes on after them\n"
            f"# (uncomment the next line to stop at the first failure).\n"
            f"# {'set -e' if shell != 'fish' else 'set -g fish_trace 0  # fish has no set -e'}\n"
        )
    )
    cwd = None
    for task in tasks:
        lines = [f"\n# {_when(task.started)}, {_took(task)}: {ending(task)} (task {task.short_id})"]
        if task.cwd != cwd:
            stop = "; or exit 1" if shell == "fish" else " || exit 1"
            lines.append(f"cd {_quote(task.cwd, shell)}{stop}")
            cwd = task.cwd
        lines.append(task.command)
        out.write(_bytes("\n".join(lines) + "\n"))


def _quote(word: str, shell: str) -> str:
    if shell != "fish":
        return quote(word)  # $'…' for bytes that are not UTF-8: bash and zsh read it
    if word and re.fullmatch(r"[\w@%+=:,./-]+", word, re.ASCII):
        return word
    return "'" + word.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- text shown in md and ipynb ---------------------------------------------------------

_SGR = re.compile(rb"\x1b\[[0-9;:]*m")


def shown_output(task: Task, colours: bool = False) -> list[tuple[str, str]]:
    """The task's output as (stream, text) runs in the order they came, as a
    terminal would leave it (escape sequences dropped, a line rewritten after a
    carriage return shown as it ended; colours kept when colours is true), at most
    2 × HEAD_LINES lines of LINE_CHARS characters (the middle said to be left out)."""
    runs: list[tuple[str, bytearray]] = []
    for _, stream, data in timed_chunks(task):
        if runs and runs[-1][0] == stream:
            runs[-1][1].extend(data)
        else:
            runs.append((stream, bytearray(data)))
    lines: list[tuple[str, str]] = []
    for stream, data in runs:
        lines += [(stream, line) for line in _text(bytes(data), colours).split("\n")]
        if lines and lines[-1][1] == "":
            lines.pop()
    if len(lines) > 2 * HEAD_LINES:
        left_out = len(lines) - 2 * HEAD_LINES
        note = f"[qme: {left_out} lines not shown]"
        lines = [*lines[:HEAD_LINES], (lines[HEAD_LINES][0], note), *lines[-HEAD_LINES:]]
    merged: list[tuple[str, str]] = []
    for stream, line in lines:
        if len(line) > LINE_CHARS:
            line = line[:LINE_CHARS] + f" [qme: {len(line) - LINE_CHARS} characters not shown]"
        if merged and merged[-1][0] == stream:
            merged[-1] = (stream, merged[-1][1] + line + "\n")
        else:
            merged.append((stream, line + "\n"))
    return merged


def _text(data: bytes, colours: bool) -> str:
    data = data.replace(b"\r\n", b"\n")
    lines = [line.rsplit(b"\r", 1)[-1] for line in data.split(b"\n")]
    if not colours:
        return "\n".join(searchable(line) for line in lines)
    kept = []
    for line in lines:  # colours kept: put back after searchable() drops every escape
        pieces = _SGR.split(line)
        codes = [m.decode() for m in _SGR.findall(line)]
        kept.append(
            "".join(
                searchable(piece) + (codes[n] if n < len(codes) else "")
                for n, piece in enumerate(pieces)
            )
        )
    return "\n".join(kept)


def _fence(*texts: str) -> str:
    """A code fence longer than any run of backticks in texts."""
    longest = max((len(run) for text in texts for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


# -- md ---------------------------------------------------------------------------------


def _md(tasks: list[Task], load: Load, out: BinaryIO) -> None:
    """A log: each command with its directory, time, ending and output."""
    sessions = {t.session for t in tasks}
    title = "A shell session" if len(sessions) == 1 and None not in sessions else "Commands"
    head = [f"# {title} recorded by qme", ""]
    if tasks:
        head.append(
            f"{len(tasks)} command{'' if len(tasks) == 1 else 's'}, "
            f"{_when(tasks[0].started)} to {_when(tasks[-1].ended or tasks[-1].started)}, "
            f"exported by qme {__version__}. Output shows at most {2 * HEAD_LINES} lines "
            f"of each command (its first and last {HEAD_LINES}); `qme get ID --output` "
            "has all of it."
        )
    out.write(_bytes("\n".join(head) + "\n"))
    for number, listed in enumerate(tasks, start=1):
        task = load(listed)
        output = "".join(text for _, text in shown_output(task))
        fence = _fence(task.command, output)
        parts = [
            "",
            f"## {number}. {_code_span(task.command.split(chr(10))[0][:80])}",
            "",
            f"{ending(task)}: in {_code_span(task.cwd)}, {_when(task.started)}, "
            f"{_took(task)}, task `{task.short_id}` on {_code_span(task.host)}.",
            "",
            f"{fence}{_shell([task])}",
            task.command,
            fence,
        ]
        if output:
            parts += ["", f"{fence}text", output.rstrip("\n"), fence]
        out.write("\n".join(parts).encode("utf-8", "replace") + b"\n")


def _code_span(text: str) -> str:
    """text as Markdown inline code, whatever backticks it holds."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


# -- ipynb ------------------------------------------------------------------------------


def _ipynb(tasks: list[Task], load: Load, out: BinaryIO) -> None:
    """A notebook (nbformat 4.5) with a Python kernel: one code cell per command,
    run by the shell it was typed in through a cell magic (%%bash, %%script zsh or
    fish) after a `cd` to its directory, its recorded output as the cell's."""
    shell = _shell(tasks)
    magic = "%%bash" if shell == "bash" else f"%%script {shell}"
    intro = (
        f"# Commands recorded by qme\n\n{len(tasks)} command{'' if len(tasks) == 1 else 's'}, "
        f"exported by qme {__version__}. Each cell runs its command in its directory; the "
        f"output shown is what was recorded (at most {2 * HEAD_LINES} lines of each)."
    )
    cells: list[dict] = [
        {"cell_type": "markdown", "id": "qme-intro", "metadata": {}, "source": intro}
    ]
    for number, listed in enumerate(tasks, start=1):
        task = load(listed)
        outputs = [
            {"output_type": "stream", "name": "stdout" if s == "output" else "stderr", "text": t}
            for s, t in shown_output(task, colours=True)
        ]
        cells.append(
            {
                "cell_type": "code",
                "id": f"qme-{number}-{task.short_id}",
                "execution_count": number,
                "metadata": {
                    "qme": {
                        "task": task.id,
                        "cwd": task.cwd,
                        "started": _when(task.started),
                        "duration": task.duration,
                        "status": task.status,
                        "returncode": task.returncode,
                        "signal": task.signal,
                    }
                },
                "source": f"{magic}\ncd {_quote(task.cwd, shell)}\n{task.command}",
                "outputs": outputs,
            }
        )
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": cells,
    }
    # JSON with surrogates escaped (\udcff): valid, and what was not UTF-8 stays visible.
    out.write(
        json.dumps(notebook, indent=1, ensure_ascii=False).encode("utf-8", "backslashreplace")
    )
    out.write(b"\n")


# -- cast -------------------------------------------------------------------------------

_LONE_LF = re.compile(r"(?<!\r)\n")


def _cast(tasks: list[Task], load: Load, out: BinaryIO, max_wait: float | None = None) -> None:
    """An asciicast v3 recording: each command shown after a `$ ` prompt when it
    started (and a marker named after it), then its output with the times it came;
    the gaps between commands as they were (a player's idle_time_limit, set by
    max_wait, shortens them)."""
    sizes = [(t.term_cols, t.term_rows) for t in tasks if t.term_cols and t.term_rows]
    cols, rows = max(sizes) if sizes else DEFAULT_TERM
    header: dict = {"version": 3, "term": {"cols": cols, "rows": rows}}
    if tasks:
        header["timestamp"] = int(tasks[0].started)
        header["title"] = tasks[0].command if len(tasks) == 1 else f"{len(tasks)} commands (qme)"
    if len(tasks) == 1:
        header["command"] = tasks[0].command
    if max_wait is not None:
        header["idle_time_limit"] = max_wait
    header["env"] = {"SHELL": _shell(tasks), "TERM": "xterm-256color"}
    out.write(_json_line(header))
    clock = tasks[0].started if tasks else 0.0  # the time of the last event written

    def event(at: float, code: str, data: str) -> None:
        nonlocal clock
        interval = max(0.0, at - clock)
        clock = max(clock, at)
        out.write(_json_line([round(interval, 6), code, data]))

    for listed in tasks:
        task = load(listed)
        event(task.started, "m", _text(_bytes(task.command), colours=False))
        event(task.started, "o", "\x1b[1m$ \x1b[0m" + _LONE_LF.sub("\r\n", task.command) + "\r\n")
        decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in STREAMS}
        after_cr = False
        for at, stream, data in timed_chunks(task):
            text = decoders[stream].decode(data)
            if text:
                event(task.started + at, "o", _crlf(text, after_cr))
                after_cr = text.endswith("\r")
        last = "".join(decoders[s].decode(b"", final=True) for s in STREAMS)
        if last:
            event(clock, "o", last)
        if len(tasks) == 1 and task.returncode is not None and task.ended:
            event(task.ended, "x", str(task.returncode))


def _crlf(text: str, after_cr: bool) -> str:
    """Line feeds as a terminal shows them (output that did not come through a
    terminal has bare ones, which a player would show as a staircase)."""
    if after_cr and text.startswith("\n"):
        return "\n" + _LONE_LF.sub("\r\n", text[1:])
    return _LONE_LF.sub("\r\n", text)


def _json_line(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n"


def exported(tasks: Iterable[Task]) -> list[Task]:
    """Tasks once each, oldest first."""
    seen: dict[str, Task] = {}
    for task in tasks:
        seen.setdefault(task.id, task)
    return sorted(seen.values(), key=lambda t: t.started)
