"""The dashboard's log: `dashboard.log` (and stderr with --debug), never with the token.

The token can arrive in many spellings: `?token=…`, `?%74oken=…`, percent-encoded
once or twice, under another parameter's name, as a path segment, in a header that
a traceback prints. So the access line is written without query values (but for
a few plain numbers and words), and every line that reaches the log or stderr
has the token removed in any of those spellings (`Scrubber`).
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
from contextlib import contextmanager
from urllib.parse import unquote

from qme import private

REDACTED = "[redacted]"
# Query values shown in the access line: plain numbers and words for these names.
SHOWN_PARAMETERS = frozenset({"limit", "offset", "status", "streams"})
SHOWN_VALUE = re.compile(r"\d{1,19}|[a-z]{1,9}")


def _spellings(text: str) -> str:
    """A regex that matches text with any of its characters written as itself, as a
    percent escape (once or more: %74, %2574), as a JSON or Python escape, or
    (beyond ASCII) as its UTF-8 bytes read as Latin-1 (gevent's request line)."""
    parts = []
    for char in text:
        encoded = char.encode("utf-8")
        forms = [re.escape(char)]
        forms.append("".join(f"%(?:25)*{_hex(byte)}" for byte in encoded))
        if ord(char) < 0x10000:
            forms.append(rf"\\u{_hex(ord(char), 4)}")
        if ord(char) < 0x100:
            forms.append(rf"\\x{_hex(ord(char))}")
        if len(encoded) > 1:
            forms.append(re.escape(encoded.decode("latin-1")))
        if char == " ":
            forms.append(r"\+")
        parts.append(f"(?:{'|'.join(forms)})")
    return "".join(parts)


def _hex(number: int, width: int = 2) -> str:
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{number:0{width}x}")


class Scrubber:
    """Removes secrets (the token, the session cookie's value), in any spelling, from
    text; and the value of any parameter named token (in any spelling), so that a
    near miss is not logged either."""

    def __init__(self, *secrets: str):
        self._token = re.compile("|".join(_spellings(s) for s in secrets if s))
        name = rf"{_spellings('token')}\s*(?:=|%(?:25)*3[dD])"
        self._named = re.compile(rf"({name})[^&;\s\"'<>]*", re.IGNORECASE)

    def __call__(self, text: str) -> str:
        return self._token.sub(REDACTED, self._named.sub(rf"\1{REDACTED}", text))


def request_target(target: str) -> str:
    """A request's path and query as logged: query values are dropped but for a
    plain number or word in limit, offset, status and streams."""
    path, mark, query = target.partition("?")
    if not mark:
        return path
    shown = []
    for pair in re.split(r"[&;]", query):
        name, equals, value = pair.partition("=")
        plain = unquote(name).strip().lower() in SHOWN_PARAMETERS
        if equals and not (plain and SHOWN_VALUE.fullmatch(value)):
            value = REDACTED
        shown.append(f"{name}{equals}{value}")
    return f"{path}?{'&'.join(shown)}"


class ScrubbingFormatter(logging.Formatter):
    """Scrubs the whole formatted record, its traceback included."""

    def __init__(self, scrub: Scrubber):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self._scrub(super().format(record))


class ScrubbingStream(io.TextIOBase):
    """stderr for the dashboard's process: what anything prints there (gevent's
    error reports, a library's warning) is scrubbed line by line."""

    def __init__(self, stream, scrub: Scrubber):
        self._stream = stream
        self._scrub = scrub
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        if lines:
            self._stream.write("".join(self._scrub(line) + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._scrub(self._pending))
            self._pending = ""
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", "utf-8")

    def isatty(self) -> bool:
        return self._stream.isatty()


def setup(scrub: Scrubber, log_file: str | None, debug: bool) -> logging.Logger:
    """Log to log_file (and to stderr with debug, or without a file), every line
    scrubbed; the access logger, for the server."""
    handlers: list[logging.Handler] = []
    if log_file:
        os.close(private.open_file(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
        private.tighten(log_file)  # a log an older qme made readable by others
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    if debug or not log_file:
        handlers.append(logging.StreamHandler(sys.stderr))
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(ScrubbingFormatter(scrub))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    return logging.getLogger("qme.web.access")


@contextmanager
def scrubbed_stderr(scrub: Scrubber):
    """sys.stderr scrubbed while the dashboard runs (restored after)."""
    stderr, sys.stderr = sys.stderr, ScrubbingStream(sys.stderr, scrub)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = stderr
