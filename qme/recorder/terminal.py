"""The user's terminal: raw mode (always restored) and window sizes.

Imported only where a terminal is involved: termios costs `qme run` start-up time.
"""

from __future__ import annotations

import fcntl
import sys
import termios


def get_size(fd: int) -> tuple[int, int] | None:
    """(columns, rows) of the terminal on fd, or None."""
    try:
        size = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    # struct winsize: rows, columns (unsigned shorts); not `struct`, for start-up time
    rows, cols = (int.from_bytes(size[i : i + 2], sys.byteorder) for i in (0, 2))
    return cols, rows


def copy_size(source: int, target: int) -> None:
    try:
        fcntl.ioctl(target, termios.TIOCSWINSZ, fcntl.ioctl(source, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def copy_modes(source: int, target: int) -> None:
    """Give a new pty the same line discipline settings as the user's terminal."""
    try:
        termios.tcsetattr(target, termios.TCSANOW, termios.tcgetattr(source))
    except termios.error:
        pass


class RawMode:
    """Puts a terminal in raw mode so every key (Ctrl-C included) reaches the
    command's own pty; `restore()` is idempotent and safe to call from anywhere."""

    def __init__(self, fd: int):
        self.fd = fd
        self.saved = None

    def enter(self) -> None:
        try:
            self.saved = termios.tcgetattr(self.fd)
        except termios.error:
            return
        raw = termios.tcgetattr(self.fd)
        raw[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
        raw[1] &= ~termios.OPOST
        raw[2] = (raw[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
        raw[6][termios.VMIN], raw[6][termios.VTIME] = 1, 0
        termios.tcsetattr(self.fd, termios.TCSANOW, raw)  # never TCSAFLUSH: keep typeahead

    def restore(self) -> None:
        if self.saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass
