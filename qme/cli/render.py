"""Plain-text rendering for the terminal: tables, ages, durations, colours.

What is printed goes to env.stdout, coloured when env.colors says so (see env.py).
"""

from __future__ import annotations

import json
import os
import shutil
import time

from qme.text import printable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from qme.cli.env import Environment

STATUS_COLORS = {"complete": "32", "failed": "31", "cancelled": "33", "lost": "35", "running": "36"}


# What JSON leaves as it is but a terminal may obey: DEL and the C1 controls (U+009B
# is CSI). json escapes the C0 controls (ESC as \u001b) itself.
_JSON_UNSAFE = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}


def print_json(env: Environment, value) -> None:
    """value as JSON, with no control character left that a terminal would obey."""
    text = json.dumps(value, indent=4, ensure_ascii=False, default=str)
    env.stdout.write(text.translate(_JSON_UNSAFE) + "\n")


def safe(text: str) -> str:
    """Text from a record as one line for the terminal: line breaks and tabs as
    spaces, every other control character shown visibly (qme.text.printable)."""
    return printable(one_line(text))


def colored(text: str, code: str | None, enabled: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if enabled and code else text


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def age(started: float, now: float | None = None) -> str:
    seconds = max(0, (now or time.time()) - started)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def home_path(path: str) -> str:
    home = os.path.expanduser("~")
    if home != "/" and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home) :]
    return path


def shown_width(text: str) -> int:
    """How many terminal columns text takes (wcwidth: two for CJK and most emoji,
    none for combining marks); ASCII without asking."""
    if text.isascii():
        return len(text)
    from wcwidth import wcswidth

    width = wcswidth(text)
    return width if width >= 0 else len(text)


def cut_to_width(text: str, columns: int) -> str:
    """The longest start of text that takes at most columns terminal columns."""
    if text.isascii():
        return text[:columns]
    from wcwidth import wcwidth

    used = 0
    for i, char in enumerate(text):
        used += max(wcwidth(char), 0)
        if used > columns:
            return text[:i]
    return text


def one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text or "\t" in text else text


def table(
    env: Environment,
    headers: list[str],
    rows: list[list[str]],
    status_colors: list[str | None] | None = None,
) -> None:
    """Columns padded to their widest cell; on a terminal, the last one cut to its
    width. Widths are as the terminal shows them: a CJK character or an emoji takes
    two columns. status_colors colour the second column (the status) row by row."""
    enabled = env.colors
    headers = [safe(h) for h in headers]
    rows = [[safe(c) for c in row] for row in rows]
    widths = [
        max(shown_width(h), *(shown_width(r[i]) for r in rows)) for i, h in enumerate(headers)
    ]
    width = shutil.get_terminal_size((120, 24)).columns if env.stdout_isatty else None

    def line(cells: list[str], color: str | None = None) -> str:
        padded = [c + " " * (w - shown_width(c)) for c, w in zip(cells[:-1], widths)]
        last = cells[-1]
        room = width - sum(widths[:-1]) - 2 * (len(widths) - 1) if width else None
        if room is not None and shown_width(last) > room:
            last = cut_to_width(last, max(room - 1, 0)) + "…"
        if color:
            padded[1] = colored(padded[1], color, enabled)
        return "  ".join([*padded, last])

    env.out(colored(line(headers), "1", enabled))
    for i, row in enumerate(rows):
        env.out(line(row, status_colors[i] if status_colors else None))
