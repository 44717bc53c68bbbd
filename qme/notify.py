"""Telling the user that a task has ended: who is told (`due`), what (`message`), and
the channels that say it (`send`): the terminal the command ran in (OSC 777, OSC 9
or the bell) and apprise URLs. The dashboard's browser notifications take the same
message from Queue.notification() (qme/web/hub.py).

Who calls it: the writer child when a command of `qme run` or `qme on` ends (never
`qme run` itself: nothing here is on its path), the watcher when a Slurm job or a
detached container ends (qme/recorder/watcher.py), and `qme notify test`.

apprise is imported only when a notification goes to a URL (the extra `qme[notify]`).
"""

from __future__ import annotations

import os
import time

from qme.task import CANCELLED, COMPLETE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.config import Settings
    from qme.task import Task

# Exit statuses a shell gives a command the user stopped (Ctrl-C, SIGTERM, `kill`):
# quiet unless notify_cancelled is on, like the tasks whose status is cancelled.
CANCEL_EXITS = (130, 143)
COMMAND_WIDTH = 60  # characters of the command a message shows
TERMINAL_WAIT = 5.0  # seconds to wait for the user's shell to take its terminal back
TERMINAL_POLL = 0.05
# How long the shell must hold its terminal before qme writes there: between two
# commands of one line (`qme run make; vim`) it holds it for an instant only.
TERMINAL_SETTLE = 0.2


class Message:
    """What a notification says: a title, a body, a link (or None), and whether it
    is good news (apprise's success or failure)."""

    __slots__ = ("title", "body", "url", "good", "task_id")

    def __init__(self, title: str, body: str, url: str | None, good: bool, task_id: str = ""):
        self.title, self.body, self.url, self.good, self.task_id = title, body, url, good, task_id

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "good": self.good,
            "id": self.task_id,
        }


def cancelled(task: Task) -> bool:
    """Whether the user stopped the task (status cancelled, or exit 130 or 143)."""
    return task.status == CANCELLED or task.returncode in CANCEL_EXITS


def due(task: Task, settings: Settings) -> bool:
    """Whether the task's end notifies: it has ended, ran at least notify_after
    seconds (for a Slurm job: from its submission), and was not cancelled by the
    user unless notify_cancelled is on. A setting that is not accepted notifies
    nobody (`qme doctor` and `qme config` say why)."""
    from qme.errors import ConfigError

    if not task.finished or task.duration is None:
        return False
    try:
        after = settings.value("notify_after")
        if after is None or task.duration < after:
            return False
        return not cancelled(task) or settings.value("notify_cancelled")
    except ConfigError:
        return False


def short(command: str, width: int = COMMAND_WIDTH) -> str:
    """The command's first line, cut to width characters (with … when cut)."""
    lines = command.strip().splitlines() or [""]
    line = " ".join(lines[0].split())
    if len(line) > width or len(lines) > 1:
        return line[: width - 1].rstrip() + "…"
    return line


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def message(task: Task, dashboard_url: str = "") -> Message:
    """The task's notification: the command (shortened), status, exit code,
    duration, host, and a link to it on the dashboard when one is configured."""
    exit_text = "" if task.returncode is None else f", exit {task.returncode}"
    if task.signal:
        exit_text += f" (signal {task.signal})"
    took = duration_text(task.duration or 0.0)
    title = f"qme: {task.status}{exit_text}"
    body = f"{short(task.command)}\n{task.status}{exit_text} after {took} on {task.host}"
    url = f"{dashboard_url.rstrip('/')}/tasks/{task.id}" if dashboard_url else None
    if url:
        body += f"\n{url}"
    return Message(title, body, url, task.status == COMPLETE, task.id)


def for_task(task: Task, settings: Settings) -> Message:
    from qme.errors import ConfigError

    try:
        link = settings.value("dashboard_url")
    except ConfigError:
        link = ""
    return message(task, link)


# -- the terminal -------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Text safe inside an OSC sequence: no control characters (ESC, BEL, C1 and
    newlines would end it early or start another); no ';' where a field ends."""
    return "".join(" " if ord(c) < 32 or 0x7F <= ord(c) < 0xA0 else c for c in text).strip()


def terminal_kind(setting: str, environ: dict | os._Environ = os.environ) -> str:
    """osc777, osc9, bell or off: the setting, or (auto) what the terminal is known
    to show: OSC 9 in iTerm2, Windows Terminal and ConEmu; OSC 777 in foot, kitty,
    WezTerm, urxvt and VTE terminals (GNOME Terminal, Tilix); else the bell."""
    if setting != "auto":
        return setting
    program = environ.get("TERM_PROGRAM", "")
    term = environ.get("TERM", "")
    if program == "iTerm.app" or environ.get("WT_SESSION") or environ.get("ConEmuANSI"):
        return "osc9"
    if program == "WezTerm" or environ.get("VTE_VERSION") or environ.get("KITTY_WINDOW_ID"):
        return "osc777"
    if term.startswith(("foot", "xterm-kitty", "rxvt-unicode", "wezterm")):
        return "osc777"
    return "bell"


def terminal_bytes(kind: str, note: Message) -> bytes:
    """The bytes that show a notification in a terminal of this kind."""
    title = _clean(note.title).replace(";", ",")
    body = " — ".join(_clean(line) for line in note.body.splitlines() if line.strip())
    if kind == "osc777":
        return f"\033]777;notify;{title};{body}\a".encode()
    if kind == "osc9":  # "9;4;…" is a progress report in some terminals: text first
        return f"\033]9;{title}: {body}\a".encode()
    if kind == "bell":
        return b"\a"
    return b""


class Terminal:
    """The terminal a command ran in, as its writer child keeps it: a descriptor
    opened on it before the child left the terminal's session, the session's
    leader (the user's shell), and the process groups that may be in the
    terminal's foreground when qme writes there.

    qme writes only when the terminal is still the shell's (its session leader
    still has it as its terminal) and one of those groups is in the foreground:
    the shell itself, at its prompt (for `qme run`), or the `qme on` that
    records the shell. It never writes while another program (an editor, the
    next command) owns the terminal: it waits up to TERMINAL_WAIT seconds for
    the shell to take it back (and hold it TERMINAL_SETTLE seconds), and
    otherwise the terminal is not told."""

    def __init__(self, fd: int, leader: int, groups: frozenset[int], device: int, path: str):
        self.fd, self.leader, self.groups = fd, leader, groups
        self.device, self.path = device, path  # the terminal's device number, its file

    @classmethod
    def controlling(cls) -> Terminal | None:
        """This process's controlling terminal (None without one). Call before setsid()."""
        try:
            device = _stat("self")[0]
            fd = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return None
        leader = os.getsid(0)
        path = next((p for p in map(_tty_name, (0, 1, 2)) if p and _device(p) == device), "")
        return cls(fd, leader, frozenset({leader, os.getpgrp()}), device, path)

    @classmethod
    def reopen(cls, path: str, leader: int) -> Terminal | None:
        """The terminal at path, if the session leader (the shell) still has it."""
        try:
            device = _stat(str(leader))[0]
            if not path or _device(path) != device:
                return None
            fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return None
        return cls(fd, leader, frozenset({leader}), device, path)

    def owned(self, groups: frozenset[int]) -> bool:
        """Whether the terminal is still the session leader's and one of groups is
        in its foreground (read from /proc: tcgetpgrp answers only a process whose
        controlling terminal it is)."""
        try:
            device, foreground = _stat(str(self.leader))
        except OSError:
            return False
        return device == self.device and foreground in groups

    def write(self, data: bytes, *, session: bool, wait: float = TERMINAL_WAIT) -> bool:
        """Write data (one write) once the terminal is the shell's; session: the
        command ran in `qme on`, whose own process group may hold the foreground."""
        groups = self.groups if session else frozenset({self.leader})
        deadline = time.monotonic() + wait
        held_since = None
        while True:
            now = time.monotonic()
            if not self.owned(groups):
                held_since = None
                if now > deadline:
                    return False
            elif held_since is None:
                held_since = now
            elif now - held_since >= TERMINAL_SETTLE:
                break
            time.sleep(TERMINAL_POLL)
        try:
            return os.write(self.fd, data) == len(data)
        except OSError:  # hung up: the terminal was closed
            return False

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def _stat(pid: str) -> tuple[int, int]:
    """(its terminal's device number, the terminal's foreground process group) of a
    process, from /proc (tcgetpgrp answers only for one's controlling terminal)."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rpartition(b")")[2].split()
    if int(fields[4]) == 0:
        raise OSError(f"process {pid} has no terminal")
    return int(fields[4]), int(fields[5])


def _tty_name(fd: int) -> str | None:
    try:
        return os.ttyname(fd)
    except OSError:
        return None


def _device(path: str) -> int:
    return os.stat(path).st_rdev


# -- apprise --------------------------------------------------------------------------------


class NotifyError(Exception):
    """A channel could not take a notification."""


def to_urls(urls: list[str], note: Message) -> None:
    """Send the message to every apprise URL; NotifyError says which failed."""
    try:
        import apprise
    except ImportError:
        raise NotifyError(
            "notify_urls needs apprise, which is not installed (pip install 'qme[notify]')"
        ) from None
    import logging

    logging.getLogger("apprise").setLevel(logging.CRITICAL)  # failures are said here
    failed = []
    for url in urls:
        sender = apprise.Apprise()
        if not sender.add(url):
            failed.append(f"{_safe(url)} (not a URL apprise knows)")
            continue
        kind = apprise.NotifyType.SUCCESS if note.good else apprise.NotifyType.FAILURE
        if not sender.notify(title=note.title, body=note.body, notify_type=kind):
            failed.append(f"{_safe(url)} (not delivered)")
    if failed:
        raise NotifyError(f"notification not sent to {', '.join(failed)}")


def _safe(url: str) -> str:
    """A URL without what may be a secret (user, password, token)."""
    scheme, _, rest = url.partition("://")
    host = rest.rpartition("@")[2].split("/")[0]
    return f"{scheme}://{host}/…" if host else f"{scheme}://…"


def send(
    note: Message,
    settings: Settings,
    terminal: Terminal | None = None,
    *,
    session: bool = False,
    environ: dict | os._Environ = os.environ,
) -> dict[str, str]:
    """Send a message through every configured channel; returns channel -> what
    happened ("sent", "not sent: why", "not configured")."""
    from qme.errors import ConfigError

    done = {}
    try:
        kind = terminal_kind(settings.value("notify_terminal"), environ)
    except ConfigError as exc:
        kind, done["terminal"] = "off", f"not sent: {exc}"
    if terminal is None or kind == "off":
        done.setdefault("terminal", "no terminal" if kind != "off" else "off")
    elif terminal.write(terminal_bytes(kind, note), session=session):
        done["terminal"] = f"sent ({kind})"
    else:
        done["terminal"] = "not sent: the terminal is closed or another program has it"
    try:
        urls = settings.value("notify_urls")
    except ConfigError as exc:
        urls, done["urls"] = [], f"not sent: {exc}"
    if urls:
        try:
            to_urls(urls, note)
            done["urls"] = f"sent to {len(urls)} URL{'s' if len(urls) > 1 else ''}"
        except NotifyError as exc:
            done["urls"] = f"not sent: {exc}"
    else:
        done.setdefault("urls", "not configured (notify_urls)")
    return done
