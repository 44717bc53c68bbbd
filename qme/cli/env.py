"""What a command touches besides its arguments, and the exit statuses it ends with.

`main(argv, env)` hands every command an `Environment` (as `args.env`): the streams
it reads and writes, whether they are terminals, whether to colour, and qme's home.
Tests give one of their own (StringIO streams, "this is a terminal"); otherwise it
is made from sys and os.environ when a command starts. `qme run` builds one on every
command a user types, so this module imports nothing and does little.
"""

from __future__ import annotations

import os
import stat
import sys

# Exit statuses of qme itself; `qme run` and `qme rerun` exit with the command's own.
OK = 0
ERROR = 1  # a `qme: error: …` line (QmeError.exit_code), or a question answered no
USAGE = 2  # a mistake in the arguments
INTERRUPTED = 130  # Ctrl-C, or a picker left with Escape (128 + SIGINT)


class Environment:
    """stdin, stdout, stderr (text streams), whether each is a terminal, whether
    stdout gets colours, and config_dir (the home given by --config_dir or
    $QME_HOME; None: qme's default). Whatever is not given comes from sys.* and
    os.environ; a stream closed when Python started reads and writes /dev/null."""

    __slots__ = (
        "stdin",
        "stdout",
        "stderr",
        "stdin_isatty",
        "stdout_isatty",
        "stderr_isatty",
        "colors",
        "config_dir",
    )

    def __init__(
        self,
        stdin=None,
        stdout=None,
        stderr=None,
        *,
        stdin_isatty: bool | None = None,
        stdout_isatty: bool | None = None,
        stderr_isatty: bool | None = None,
        colors: bool | None = None,
        config_dir: str | None = None,
    ):
        self.stdin = _stream(stdin, sys.stdin, "r")
        self.stdout = _stream(stdout, sys.stdout, "w")
        self.stderr = _stream(stderr, sys.stderr, "w")
        self.stdin_isatty = _isatty(self.stdin) if stdin_isatty is None else stdin_isatty
        self.stdout_isatty = _isatty(self.stdout) if stdout_isatty is None else stdout_isatty
        self.stderr_isatty = _isatty(self.stderr) if stderr_isatty is None else stderr_isatty
        self.colors = wants_colors(self.stdout_isatty) if colors is None else colors
        if config_dir is None:
            config_dir = os.environ.get("QME_HOME") or None
        self.config_dir = config_dir

    def out(self, line: str = "") -> None:
        """Print a line on stdout."""
        self.stdout.write(f"{line}\n")

    def err(self, line: str) -> None:
        """Print a line on stderr."""
        self.stderr.write(f"{line}\n")

    def binary_stdout(self) -> BinaryOut:
        """stdout for bytes as they are (a record's output), after what was printed."""
        return BinaryOut(self.stdout)

    def __repr__(self) -> str:
        return "Environment({})".format(
            ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        )


class BinaryOut:
    """A binary stream over a text one: its buffer, or decoding into the stream
    where it has none (a test's StringIO). A context manager that flushes."""

    def __init__(self, stream):
        stream.flush()  # what was printed as text comes first
        self.stream, self.buffer = stream, getattr(stream, "buffer", None)
        _widen_pipe(stream)

    def write(self, data: bytes) -> int:
        if self.buffer is None:
            self.stream.write(data.decode("utf-8", "replace"))
        else:
            self.buffer.write(data)
        return len(data)

    def flush(self) -> None:
        (self.buffer or self.stream).flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.flush()


F_SETPIPE_SZ = 1031  # fcntl's, on Linux
PIPE_SIZE = 1 << 20


def _widen_pipe(stream) -> None:
    """A pipe that holds a megabyte: each write then returns while the reader is
    still reading, and the next piece is read from the store meanwhile (`qme out |
    wc -c` overlaps the two instead of taking turns)."""
    try:
        fd = stream.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            import fcntl

            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except (AttributeError, OSError, ValueError):  # not a file, not Linux, no room
        pass


def wants_colors(stdout_isatty: bool) -> bool:
    """Colour on a terminal; never with NO_COLOR (no-color.org), always with
    FORCE_COLOR (force-color.org), each when set to anything but ''."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stdout_isatty


def _stream(given, default, mode: str):
    if given is not None:
        return given
    if default is not None:
        return default
    return open(os.devnull, mode, encoding="utf-8")  # lives as long as qme


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
