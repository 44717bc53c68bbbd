"""The writer child: a process that does all the store's work for `qme run` and
`qme session`, so that neither the command nor its exit ever waits on the store.

Forked once the command has run START_DELAY seconds, or when it ends if sooner
(most commands are quick, and then the fork costs them nothing, not even
copy-on-write faults while they run; until then what it is to write waits in
memory), it leaves the terminal's session (Ctrl-C and Ctrl-Z never reach it, so
a stopped qme never holds a database lock), puts its stdio on /dev/null and
takes operations over a pipe (the frames of wire.py). The parent writes without
blocking (what the pipe cannot take waits in memory, up to BACKLOG_LIMIT) and
never imports sqlite3, threading or json. The child (qme/recorder/background.py)
may finish the final update and the full-text indexing after the parent has
exited; qme/pending.py makes readers wait for it. Its failures come back as lines on a second pipe,
which the parent reads when it closes the child; for a failure after that, see
background.py.

A child that dies before it has written the record (killed, out of memory) is
replaced: the parent keeps every frame it sent (up to REPLAY_LIMIT bytes, the
output as captured, so QME_MAX_OUTPUT bounds it), forks another child and sends
them all again, the task as a `resume`, whose writer skips what the store has
already. A parent that replaced its child waits for the record's verdict before
it exits, so that its one warning can say whether the record is whole.
"""

from __future__ import annotations

import _signal as signal  # see spawn.py
import os
import select
import time

from qme import pending
from qme.recorder.spawn import HELD_SIGNALS, big_pipe
from qme.recorder.wire import SPOOLING, SYNCED, TOOK_FIRST, fields, frame

# The child works while the command runs: let the command have the CPU first.
CHILD_NICENESS = 10
START_DELAY = 0.05  # seconds; the pump calls `timer` then (see ChildWriter)
BACKLOG_LIMIT = 4 << 20  # bytes waiting for the pipe; beyond this, writing blocks
# A parent that heard TOOK_FIRST (see wire.py) waits for SYNCED (or a failure) when
# the command ends, at most VERDICT_SECONDS, so that a store lost mid-run is told by
# `qme run` itself; one that did not (a quick command: `true`) exits at once, and
# the child, still holding stderr, tells what goes wrong.
VERDICT_SECONDS = 3.0
REPLAY_LIMIT = 64 << 20  # bytes of frames kept to hand to a child that takes over
TAKEOVERS = 2  # children forked to take over from one that died, at most
# Signals that could reach the child between its fork and its setsid().
_IGNORED_BY_CHILD = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGHUP)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.config import Settings
    from qme.task import Task


class ChildWriter:
    """StoreWriter's interface (add, append, update, close), for a writer child."""

    def __init__(self, settings: Settings, lock_name: str | None = None):
        """lock_name: make readers wait for the final update (see qme/pending.py).

        The child is forked by start(): when the pump calls `timer` (START_DELAY
        into the command), when more than BACKLOG_LIMIT waits, or at close(). If
        it cannot be forked (no memory, processes or fds left), the writer takes
        nothing and reports that; the command runs regardless."""
        self.settings, self.lock_name = settings, lock_name
        self.lock = pending.create(settings.home, lock_name) if lock_name else None
        self.data = self.reports = None  # the pipes to the child, once it runs
        self.backlog: list[bytes] = []
        self.backlog_size = 0
        self.lines: list[str] = []
        self.gone = False  # the child has ended early, or could not start
        self.spooling = False  # after the last failure reported, the spool takes the rest
        self.store_took_first = self.synced = False
        self.timer = (time.monotonic() + START_DELAY, self.start)
        self.busy = None  # the store is written in the child: never by this process
        self.pid = 0
        # Every frame but close, by task (in the order tasks began), for a child
        # taking over.
        self.sent: dict[str, list[bytes]] | None = {}
        self.sent_size = 0
        # Tasks whose final update was sent, oldest first: once the child says it is
        # written (SYNCED), their frames leave `sent` (a session's proxy keeps only
        # the commands not yet safe, not the whole session's output).
        self.unconfirmed: list[str] = []
        self.takeovers = 0
        self.silent_end = False  # the child closed its report pipe without a verdict
        self.took_over: str | None = None  # how the last child that died ended

    def start(self) -> None:
        """Fork the child, unless it runs already, and hand it what waits."""
        if self.data is not None or self.gone:
            return
        try:
            self._fork()
        except OSError as exc:
            self.gone = True
            self.backlog, self.backlog_size = [], 0
            self.lines.append(f"cannot start qme's writer process ({exc}): not recorded")
            pending.release(self.lock, self.settings.home, self.lock_name)
            self.lock = None
            return
        self._flush(block=self.backlog_size > BACKLOG_LIMIT)

    def _fork(self) -> None:
        opened: list[int] = []
        try:
            opened += big_pipe()
            opened += os.pipe()
            data_read, data_write, reports, report_write = opened
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            try:
                pid = os.fork()
                if pid == 0:
                    os.close(data_write)
                    os.close(reports)
                    _child(self.settings, data_read, report_write, self.lock, self.lock_name, mask)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        except OSError:
            for fd in opened:
                os.close(fd)
            raise
        os.close(data_read)
        os.close(report_write)
        os.set_blocking(data_write, False)
        os.set_blocking(reports, False)
        self.data, self.reports, self.pid = data_write, reports, pid

    def add(self, task: Task) -> None:
        self._send(b"add", task.id, fields(task))

    def append(self, task_id: str, stream: str, data: bytes) -> None:
        if data:
            self._send(stream.encode(), task_id, data)

    def update(self, task: Task) -> None:
        if task.finished and not self.gone:  # readers wait until the child has written it
            pending.hold(self.lock)
        self._send(b"update", task.id, fields(task))
        if task.finished and self.sent is not None:
            self.unconfirmed.append(task.id)

    @property
    def error(self) -> str | None:
        """The child's latest report of a failure, if any (read without waiting)."""
        self._read_reports()
        return self.lines[-1] if self.lines else None

    def close(self) -> str | None:
        """Hand over the rest and return the child's report of a failure, if any;
        the child finishes on its own."""
        self.start()
        while self.data is not None:
            self.backlog.append(frame(b"close", "-", b""))  # not kept: each child gets one
            self._flush(block=True)
            if self.gone or self.data is None:
                break
            os.close(self.data)
            self.data = None
            self._read_reports()
            if (self.store_took_first or self.takeovers) and not self.lines:
                self._await_verdict()
            if self.synced or self.lines or not self.silent_end or not self._died():
                break  # else another child took over: hand it the close too
        error = self.error
        if self.took_over:
            error = f"{self.took_over}: {error}" if error else f"{self.took_over}: nothing was lost"
        if self.reports is not None:
            os.close(self.reports)
            self.reports = None
        if self.lock is not None:
            os.close(self.lock)
        return error

    # -- a child that died --------------------------------------------------------------

    def _died(self) -> bool:
        """The child has ended without a word (no verdict, no failure): killed, or
        crashed. Fork another to take over; False when none can."""
        how = _ended(self.pid)
        if self.sent is None or self.takeovers >= TAKEOVERS:
            self.lines.append(
                f"qme's writer process {self.pid} {how} before it wrote the whole record"
            )
            return False
        old = self.pid
        for fd in (self.data, self.reports):
            if fd is not None:
                os.close(fd)
        self.data = self.reports = None
        self.takeovers += 1
        self.lines, self.store_took_first, self.synced = [], False, False
        self.silent_end = False
        self.backlog = [
            b"resume" + f[3:] if f.startswith(b"add ") else f
            for frames in self.sent.values()
            for f in frames
        ]
        self.backlog_size = self.sent_size
        try:
            self._fork()
        except OSError as exc:
            self.lines.append(f"qme's writer process {old} {how}, and no other could start ({exc})")
            self.backlog, self.backlog_size = [], 0
            return False
        self.took_over = f"qme's writer process {old} {how}; another took over the record"
        return True

    # -- the pipe ---------------------------------------------------------------------

    def _send(self, op: bytes, task_id: str, payload: bytes) -> None:
        if self.gone:
            return
        self.backlog.append(frame(op, task_id, payload))
        self.backlog_size += len(self.backlog[-1])
        if self.sent is not None:
            self.sent.setdefault(task_id, []).append(self.backlog[-1])
            self.sent_size += len(self.backlog[-1])
            if self.sent_size > REPLAY_LIMIT:  # a child that dies now loses the record
                self.sent = None
        if self.data is not None:
            self._flush(block=self.backlog_size > BACKLOG_LIMIT)
        elif self.backlog_size > BACKLOG_LIMIT:
            self.start()

    def _flush(self, block: bool) -> None:
        while self.backlog and not self.gone:
            try:
                written = os.write(self.data, self.backlog[0])
            except BlockingIOError:
                if not block:
                    return
                select.select([], [self.data], [])
                continue
            except OSError:  # the child has ended: it said why on the report pipe
                if self._died():
                    continue  # another child has the record from its start
                self.gone, self.spooling = True, False
                self.backlog, self.backlog_size = [], 0
                pending.unlock(self.lock)  # nothing more will be written: don't wait
                if not self.error:
                    self.lines.append(
                        "the writer process ended early: this command was not recorded"
                    )
                return
            self.backlog_size -= written
            if written == len(self.backlog[0]):
                self.backlog.pop(0)
            else:
                self.backlog[0] = self.backlog[0][written:]

    def _await_verdict(self) -> None:
        deadline = time.monotonic() + VERDICT_SECONDS
        poller = select.poll()
        poller.register(self.reports, select.POLLIN)
        while not (self.synced or self.lines or self.gone):
            left = deadline - time.monotonic()
            if left <= 0:
                self.lines.append(
                    f"the store has not answered in {VERDICT_SECONDS:g} s: the record is "
                    "written in the background (or waits in the spool if that fails)"
                )
                return
            if poller.poll(left * 1000) and not self._read_reports():
                return  # the child has ended

    def _read_reports(self) -> bool:
        """Take in what the child said; False when it has closed the pipe."""
        if self.reports is None:
            return False
        try:
            data = os.read(self.reports, 65536)
        except (BlockingIOError, OSError):
            return True
        if not data:
            self.silent_end = not (self.synced or self.lines)
            return False
        self._forget(data.count(SYNCED))
        for marker, name in ((TOOK_FIRST, "store_took_first"), (SYNCED, "synced")):
            if marker in data:
                setattr(self, name, True)
                data = data.replace(marker, b"")
        for line in data.decode(errors="replace").splitlines():
            if line:
                self.spooling = line.startswith(SPOOLING)
                self.lines.append(line.removeprefix(SPOOLING))
        return True

    def _forget(self, written: int) -> None:
        """The child has written the final state of that many more tasks (one SYNCED
        each, in order): a child taking over will not need their frames."""
        done = set(self.unconfirmed[:written])
        del self.unconfirmed[:written]
        if self.sent is not None:
            for task_id in done:
                self.sent_size -= sum(map(len, self.sent.pop(task_id, ())))


def _ended(pid: int) -> str:
    """How the child pid ended, once it has (waiting a second at most)."""
    deadline = time.monotonic() + 1
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "ended"
        if done:
            break
        if time.monotonic() > deadline:
            return "stopped answering"
        time.sleep(0.01)
    if os.WIFSIGNALED(status):
        return f"was killed (signal {os.WTERMSIG(status)})"
    return f"ended early (exit status {os.waitstatus_to_exitcode(status)})"


def _child(settings, data: int, reports: int, lock: int | None, lock_name, mask) -> None:
    """In the forked child: detach, serve, and never return."""
    code = 1
    try:
        from qme.notify import Terminal

        terminal = Terminal.controlling()  # before setsid(), which leaves it (see notify.py)
        os.setsid()
        os.nice(CHILD_NICENESS)
        _drop_handlers()
        for sig in _IGNORED_BY_CHILD:
            signal.signal(sig, signal.SIG_IGN)
        stderr = _dup(2)  # for a failure the parent is no longer there to report
        null = os.open(os.devnull, os.O_RDWR)
        keep = {data, reports, stderr, lock, null, terminal and terminal.fd}
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for name in os.listdir("/proc/self/fd"):
            if int(name) > 2 and int(name) not in keep:
                try:
                    os.close(int(name))
                except OSError:
                    pass
        # Not what qme holds while it hands a record over (Pump.run): the child and
        # what it starts (the watcher) must answer SIGTERM.
        signal.pthread_sigmask(signal.SIG_SETMASK, mask - HELD_SIGNALS)
        from qme.recorder.background import serve

        serve(settings, data, reports, stderr, lock, lock_name, terminal)
        code = 0
    except BaseException:  # noqa: BLE001, S110 - never return into the parent's code
        pass
    finally:
        os._exit(code)


def _drop_handlers() -> None:
    """Forget the pump's signal handlers, forked in the middle of it: their wake-up
    fd is the parent's pipe, and its number is soon reused for another file."""
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        if callable(signal.getsignal(sig)):
            signal.signal(sig, signal.SIG_DFL)


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:
        return None
