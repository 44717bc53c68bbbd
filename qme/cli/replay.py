"""qme replay: play a task's recorded output back in the terminal, at the speed it
came (Queue.timed_output), colours and all; q stops it."""

from __future__ import annotations

import os
import select
import time

from qme.cli.env import OK
from qme.cli.numbers import at_least

# What a replay cut short may leave the terminal in, and what undoes it.
_UNDO = (
    (b"\x1b[?1049h", b"\x1b[?1049l"),  # the alternate screen
    (b"\x1b[?47h", b"\x1b[?47l"),
    (b"\x1b[?25l", b"\x1b[?25h"),  # a hidden cursor
    (b"\x1b[?1h", b"\x1b[?1l"),  # application cursor keys
    (b"\x1b[?2004h", b"\x1b[?2004l"),  # bracketed paste
    (b"\x1b[", b"\x1b[0m"),  # colours and attributes
)
STOP_KEYS = b"qQ"


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "replay",
        help="play a task's output back at the speed it came",
        description="Play a task's recorded output (stdout and stderr, as they came) back "
        "in the terminal with the pauses it had, colours and all. TASK: an id, a prefix or "
        "a reference (@1); default: the last task. Press q to stop. Output recorded before "
        "qme kept its timing (or imported without it) comes at once.",
    )
    parser.add_argument("id", nargs="?", metavar="TASK", help="default: the last task")
    parser.add_argument(
        "--speed",
        type=at_least(0, strictly=True),
        default=1.0,
        help="how many times faster than recorded (default 1; 0.5 is half speed)",
    )
    parser.add_argument(
        "--max-wait",
        type=at_least(0, strictly=True),
        metavar="SECONDS",
        help="no pause longer than this (after --speed)",
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    chunks = make_queue(args).timed_output(args.id)
    env = args.env
    stopped = play(chunks, env, args.speed, args.max_wait)
    if stopped:
        env.err("qme: replay stopped")
    return OK


def play(chunks, env, speed: float = 1.0, max_wait: float | None = None) -> bool:
    """Write the chunks to env.stdout with their pauses; True when q stopped it.
    The terminal is put back as it was whatever happens (Ctrl-C, SIGTERM, SIGHUP)."""
    keys = _Keys(env.stdin) if env.stdin_isatty else None
    shown = bytearray()  # what was written, for _restore (only what it looks for)
    out = env.binary_stdout()
    stopped = False
    try:
        if keys is not None:
            keys.start()
        clock, last = time.monotonic(), 0.0
        for at, _, data in chunks:
            pause = max(0.0, at - last) / speed
            last = max(last, at)
            if max_wait is not None:
                pause = min(pause, max_wait)
            clock += pause
            if _wait_until(clock, keys):
                stopped = True
                break
            clock = max(clock, time.monotonic() - 0.05)  # a slow terminal: no rush after
            out.write(data)
            out.flush()
            if b"\x1b" in data:
                shown += data[-4096:] if len(data) > 4096 else data
                del shown[:-65536]
    finally:
        try:
            if env.stdout_isatty:
                _restore(out, bytes(shown))
        finally:
            if keys is not None:
                keys.stop()
    return stopped


def _wait_until(deadline: float, keys: _Keys | None) -> bool:
    """Sleep until deadline (time.monotonic()); True as soon as a stop key comes."""
    while True:
        left = deadline - time.monotonic()
        if keys is None:
            if left > 0:
                time.sleep(left)
            return False
        if keys.stop_pressed(max(0.0, left)):
            return True
        if left <= 0:
            return False


def _restore(out, shown: bytes) -> None:
    undo = b"".join(after for before, after in _UNDO if before in shown)
    if undo:
        out.write(undo)
        out.flush()


class _Keys:
    """The keyboard, read a key at a time (no echo, no line editing) while playing;
    Ctrl-C still interrupts. stop() always puts the terminal back."""

    def __init__(self, stdin):
        self.fd = stdin.fileno()
        self.saved = None
        self.handlers: dict = {}

    def start(self) -> None:
        import signal
        import termios

        self.saved = termios.tcgetattr(self.fd)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self.handlers[sig] = signal.signal(sig, _interrupted)
        mode = termios.tcgetattr(self.fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
        termios.tcsetattr(self.fd, termios.TCSADRAIN, mode)

    def stop_pressed(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            keys = os.read(self.fd, 64)
        except OSError:
            return False
        return any(key in STOP_KEYS for key in keys)

    def stop(self) -> None:
        import signal
        import termios

        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        for sig, handler in self.handlers.items():
            signal.signal(sig, handler)


def _interrupted(signum, frame):
    raise KeyboardInterrupt  # unwinds through play(), which restores the terminal
