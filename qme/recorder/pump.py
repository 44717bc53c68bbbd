"""Copying bytes between the user's terminal or pipes and the command, until it ends.

A single-threaded poll loop: output is written straight to qme's own fd 1/2 and
handed to a callback for recording; keystrokes go to the command's pty; signals
are passed on; Ctrl-Z suspends qme together with the command and restores the
terminal. On Linux a pty whose other side has closed reports EIO, not EOF, and
EIO is not the end: the kernel may answer it while the last bytes written before
the close are still on their way, and the pty comes back when a program opens it
again by its name (stderr's pty, which is not the controlling terminal). Such a
pty is read again every RECHECK_MS while the command runs, and to its end once
it has exited.
"""

from __future__ import annotations

import _signal as signal  # see spawn.py
import os
import select
import time

from qme.recorder.spawn import HELD_SIGNALS, Child

READ_SIZE = 64 * 1024  # per read: under glibc's mmap threshold, so no mmap per read
# Per poll wake-up and fd, then one write and one record. A pipe hands out up to
# READ_SIZE a read, so it is read once a wake-up; a pty about 4 KiB, so a burst is a
# few reads. Larger bursts cost throughput on a terminal: while qme writes one out,
# nothing drains the command's pty and the command waits (64 KiB: 0.90× `script`,
# 16 KiB: 0.98×, `cat` of 256 MiB under an outer pty, medians of 5).
BURST_SIZE = 16 * 1024
QUIET_MS = 100  # once the command has exited, stop when its fds are idle this long
POLL_MS_WITHOUT_SIGNALS = 50
RECHECK_MS = 50  # how often a pty that answered EIO is read again while the command runs
STOP_WAIT_SECONDS = 2  # how long Ctrl-Z waits for a store write to finish
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


class Exit:
    """How the command ended: returncode is 128+N when it died of signal N (then
    signal is N); rusage as os.wait4 gives it."""

    __slots__ = ("returncode", "signal", "rusage")

    def __init__(self, returncode: int, signal: int | None, rusage):
        self.returncode, self.signal, self.rusage = returncode, signal, rusage


def release_signals(child: Child) -> None:
    """The signals Pump.run() held, acted on now that the record is saved (a
    terminal closed meanwhile ends qme only now)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, child.sigmask)


class Pump:
    def __init__(self, child: Child, record, store_busy=None, timer=None):
        """record(stream, data) sees every chunk of output first; if it returns bytes,
        those are shown instead of data. timer: (when, call), to call() once, when
        time.monotonic() reaches when, even if nothing else happens by then (or
        sooner, before qme may wait long on a reader that does not read)."""
        self.child = child
        self.record = record
        self.store_busy = store_busy  # a lock held while the store is written
        self.timer = timer
        self.reads = dict(child.reads)  # the fds polled (child.reads: every fd read)
        for fd in self.reads:  # drained until they would block: see _read_output
            os.set_blocking(fd, False)
        self.child_changed = True  # SIGCHLD came: wait4 may have news
        self.keyboard = child.keyboard  # None once the user's terminal has closed
        self.input_fd = child.input_fd
        self.reading_keys = False  # only while qme's job owns the terminal
        self.raw = None
        if child.keyboard is not None:  # termios (qme.recorder.terminal) only then
            from qme.recorder.terminal import RawMode

            self.raw = RawMode(child.keyboard)
        if child.input_fd is not None:  # a paste larger than the pty buffer must not block us
            os.set_blocking(child.input_fd, False)
        self.pending_input = b""
        # stderr's own pty, which `less` and `more` read keys from (they open ttyname(2))
        self.err_pty = next((master for master, mirror in child.ptys if mirror == 2), None)
        self.broken: set[int] = set()  # destinations that can no longer be written
        self.ended_fds: list[int] = []  # read to their end, closed when the command has
        self.hung_up: list[int] = []  # ptys that answered EIO: read again (see above)
        self.recheck_at = 0.0  # the time.monotonic() of the next read of those
        self.status: tuple[int, object] | None = None
        self.signals: list[int] = []
        self.saved_handlers: dict[int, object] = {}
        self.wakeup: tuple[int, int] | None = None

    # -- set-up and tear-down -----------------------------------------------------------

    def run(self) -> Exit:
        """Pass everything on until the command has ended. Returns with the signals
        qme passes on held (blocked): saving the record is not to be cut short by
        one that comes with the end (the SIGHUP of a terminal closed as the command
        ends). The caller acts on them with release_signals() once it is saved."""
        try:
            self._install_signals()
            signal.pthread_sigmask(signal.SIG_SETMASK, self.child.sigmask)  # see spawn()
            self._loop()
            if self.status is None:
                self._wait(block=True)
            self._read_hung_up(to_the_end=True)
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
            self._release_keyboard()
            self._restore_signals()
            for fd in list(self.reads):
                self._close(fd)
            for fd in self.ended_fds + self.hung_up:
                os.close(fd)
            if self.keyboard not in (None, 0):
                os.close(self.keyboard)
        status, rusage = self.status
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return Exit(128 + sig, sig, rusage)
        return Exit(os.waitstatus_to_exitcode(status), None, rusage)

    def _install_signals(self) -> None:
        try:
            read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self.wakeup = (read_end, write_end)
            self.saved_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        except ValueError:  # not the main thread: poll for the child instead
            self._close_wakeup()
            return
        handlers = {sig: self._noted for sig in (signal.SIGWINCH, signal.SIGCONT)}
        handlers[signal.SIGCHLD] = self._child_noted
        for name in FORWARDED:
            sig = getattr(signal, name)
            if self.child.own_session or sig not in (signal.SIGINT, signal.SIGQUIT):
                handlers[sig] = self._forward
            else:  # same process group: the terminal already sent it to the command
                handlers[sig] = signal.SIG_IGN
        if self.child.own_session:
            handlers[signal.SIGTSTP] = self._forward
        for sig, handler in handlers.items():
            self.saved_handlers[sig] = signal.signal(sig, handler)

    def _restore_signals(self) -> None:
        for sig, handler in self.saved_handlers.items():
            signal.signal(sig, handler)
        if self.wakeup:
            signal.set_wakeup_fd(self.saved_wakeup)
            self._close_wakeup()

    def _close_wakeup(self) -> None:
        for fd in self.wakeup or ():
            os.close(fd)
        self.wakeup = None

    def _noted(self, signum, frame) -> None:
        """SIGCHLD, SIGWINCH, SIGCONT are handled in the loop; the wake-up fd woke it."""

    def _child_noted(self, signum, frame) -> None:
        self.child_changed = True

    def _forward(self, signum, frame) -> None:
        self.signals.append(signum)

    # -- the loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        poller = select.poll()
        for fd in self.reads:
            poller.register(fd, select.POLLIN)
        if self.wakeup:
            poller.register(self.wakeup[0], select.POLLIN)
        self.poller = poller
        self._sync_keyboard()
        while True:
            if self.status is not None and not self.reads:
                return
            if self.status is not None:
                timeout = QUIET_MS
            else:
                timeout = self._until_timer(None if self.wakeup else POLL_MS_WITHOUT_SIGNALS)
                if self.hung_up:
                    timeout = RECHECK_MS if timeout is None else min(timeout, RECHECK_MS)
            events = poller.poll(timeout)
            self._check_timer()
            if self.hung_up and self.status is None and time.monotonic() >= self.recheck_at:
                self._read_hung_up()
            if not events and self.status is not None:
                return  # exited, and whatever still holds its output is silent
            for fd, event in events:
                if self.wakeup and fd == self.wakeup[0]:
                    self._drain_wakeup()
                    self._sync_keyboard()
                elif fd == self.keyboard and self.reading_keys:
                    self._read_keys()
                elif event & select.POLLOUT and fd == self.input_fd:
                    self._write_keys()
                if fd in self.reads and event & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    self._read_output(fd)
            self._handle_signals()
            if self.status is None and (self.child_changed or not self.wakeup):
                self.child_changed = False
                self._wait(block=False)

    def _until_timer(self, timeout: int | None) -> int | None:
        if self.timer is None:
            return timeout
        left = max(0, int((self.timer[0] - time.monotonic()) * 1000) + 1)
        return left if timeout is None else min(timeout, left)

    def _check_timer(self, now: bool = False) -> None:
        if self.timer is not None and (now or time.monotonic() >= self.timer[0]):
            call, self.timer = self.timer[1], None
            call()

    def _read_output(self, fd: int) -> bool:
        """Read what fd has, up to BURST_SIZE: a pty hands out about 4 KiB a read, and
        one write and one record per burst rather than per read keeps qme's
        per-byte cost near that of `script`. True when the burst is full (more may
        wait)."""
        chunks, size, ended, hung_up = [], 0, False, False
        while size < BURST_SIZE:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError:  # EIO: the pty's other side is gone, for now
                data, hung_up = b"", True
            if not data:
                ended = True
                break
            chunks.append(data)
            size += len(data)
        if chunks:
            self._pass_on(fd, chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if hung_up:
            self._hang_up(fd)
        elif ended:
            self._close(fd, now=False)
        return size >= BURST_SIZE

    def _read_hung_up(self, to_the_end: bool = False) -> None:
        """Read each pty that answered EIO again, polling it again when it is back.
        to_the_end: the command has exited; read all that is left. (Under load, 4
        of about 17,700 `qme run` got EIO between a command's first write and its
        last, and kept only the first: `ls: ` of ls's error; issue 16, item 13.)"""
        for fd in self.hung_up[:]:
            self.hung_up.remove(fd)
            self.reads[fd] = self.child.reads[fd]
            self.poller.register(fd, select.POLLIN)
            while self._read_output(fd) and to_the_end:
                pass
        self.recheck_at = time.monotonic() + RECHECK_MS / 1000

    def _hang_up(self, fd: int) -> None:
        """Stop polling a pty that answered EIO (poll would wake at once, again and
        again), to read it every RECHECK_MS instead."""
        if self.reads.pop(fd, None) is None:
            return  # closed meanwhile (its reader went away)
        self.poller.unregister(fd)
        self.hung_up.append(fd)

    def _pass_on(self, fd: int, data: bytes) -> None:
        dest, stream = self.child.reads[fd]
        shown = self.record(stream, data) if stream else None
        if dest not in self.broken:
            self._write_all(dest, data if shown is None else shown, source=fd)

    def _write_all(self, dest: int, data: bytes, source: int) -> None:
        view = memoryview(data)
        while view:
            if self.timer is not None and not select.select([], [dest], [], 0)[1]:
                # A reader that does not read (`qme run cmd | less`) may hold the
                # write below for long: call the timer first.
                self._check_timer(now=True)
            try:
                view = view[os.write(dest, view) :]
            except BlockingIOError:
                select.select([], [dest], [])
            except OSError as exc:
                self.broken.add(dest)
                if isinstance(exc, BrokenPipeError) and dest == 1 and source in self.reads:
                    # The reader went away (`qme run cmd | head`): close our end
                    # so the command gets SIGPIPE as it would without qme.
                    self._close(source)
                return

    def _sync_keyboard(self) -> None:
        """Read keys, with the terminal in raw mode, only while qme's job is in the
        foreground: a background job touching the terminal would be stopped
        (SIGTTIN, SIGTTOU), and `qme run make &` must run on like `make &`."""
        if self.keyboard is None:
            return
        try:
            foreground = os.tcgetpgrp(self.keyboard) == os.getpgrp()
        except OSError:
            foreground = False
        if foreground and not self.reading_keys:
            self.raw.enter()
            self.poller.register(self.keyboard, select.POLLIN)
            self.reading_keys = True
        elif not foreground and self.reading_keys:
            self.poller.unregister(self.keyboard)
            self.reading_keys = False

    def _release_keyboard(self) -> None:
        if self.reading_keys:
            self.raw.restore()
            self.poller.unregister(self.keyboard)
            self.reading_keys = False

    def _read_keys(self) -> None:
        try:
            data = os.read(self.keyboard, READ_SIZE)
        except OSError:
            data = b""
        if not data:
            self._release_keyboard()
            self.keyboard = None
            return
        if self._reads_keys_from_stderr():
            self._keys_to_stderr_pty(data)
            return
        self.pending_input += data
        self._write_keys()

    def _reads_keys_from_stderr(self) -> bool:
        """Does the command read the keyboard from stderr's terminal, as `less` and
        `more` do (also as the pager of `git log` or `man`)? Then that pty is the
        one in non-canonical mode while stdin's is not."""
        if self.err_pty is None or self.pending_input:
            return False
        import termios

        try:
            main, err = (termios.tcgetattr(fd) for fd in (self.input_fd, self.err_pty))
        except termios.error:
            return False
        return bool(main[3] & termios.ICANON) and not err[3] & termios.ICANON

    def _keys_to_stderr_pty(self, data: bytes) -> None:
        import termios

        try:
            os.write(self.err_pty, data)
        except OSError:
            pass
        # On a real terminal that is also the controlling one, where the keys of
        # Ctrl-C, Ctrl-Z and Ctrl-\ signal the foreground job; stderr's pty is not.
        try:
            modes = termios.tcgetattr(self.err_pty)
            group = os.tcgetpgrp(self.input_fd)
        except (termios.error, OSError):
            return
        if modes[3] & termios.ISIG:
            keys = (
                (termios.VINTR, signal.SIGINT),
                (termios.VQUIT, signal.SIGQUIT),
                (termios.VSUSP, signal.SIGTSTP),
            )
            for key, sig in keys:
                if modes[6][key] not in (b"\0", 0) and modes[6][key] in data:
                    try:
                        os.killpg(group, sig)
                    except OSError:
                        pass

    def _write_keys(self) -> None:
        fd = self.input_fd
        try:
            written = os.write(fd, self.pending_input)
        except BlockingIOError:
            written = 0
        except OSError:
            self.pending_input = b""
            return
        self.pending_input = self.pending_input[written:]
        if fd in self.reads:
            self.poller.modify(fd, select.POLLIN | (select.POLLOUT if self.pending_input else 0))

    def _close(self, fd: int, now: bool = True) -> None:
        """Stop reading fd, and close it now or (now=False) once the command has
        ended: closing a pty's master hangs it up, which kills with SIGHUP a command
        that has closed its output but not yet exited (`cat` after Ctrl-D)."""
        if self.reads.pop(fd, None) is None:
            return
        try:
            self.poller.unregister(fd)
        except (AttributeError, KeyError):
            pass
        if now:
            os.close(fd)
        else:
            self.ended_fds.append(fd)

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self.wakeup[0], 512):
                pass
        except BlockingIOError:
            pass
        self._copy_sizes()  # cheap, so done on every wake-up

    def _copy_sizes(self) -> None:
        """Give each pty the size of the terminal it mirrors (after SIGWINCH, `fg`)."""
        if self.child.ptys:
            from qme.recorder.terminal import copy_size

            for master, mirror in self.child.ptys:
                copy_size(mirror, master)

    # -- the command's life -------------------------------------------------------------

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            # SIGTSTP too: qme suspends when the command stops (see _wait), not
            # before; a command that ignores it (an interactive shell) goes on.
            self._signal_child(sig)

    def _signal_child(self, sig: int) -> None:
        try:
            if self.child.own_session:
                os.killpg(self.child.pid, sig)
            else:
                os.kill(self.child.pid, sig)
        except ProcessLookupError:
            pass

    def _wait(self, block: bool) -> None:
        flags = 0 if block else os.WNOHANG
        if self.child.own_session:
            flags |= os.WUNTRACED
        while True:
            pid, status, rusage = os.wait4(self.child.pid, flags)
            if pid == 0:
                return
            if os.WIFSTOPPED(status):
                self._suspend(os.WSTOPSIG(status))
                if not block:
                    return
                continue
            self.status = (status, rusage)
            return

    def _suspend(self, stop_signal: int) -> None:
        """The command stopped (Ctrl-Z): stop qme too, so the shell's job control
        sees it; on `fg`, take the terminal back and wake the command."""
        if not _job_control():
            # Nothing could resume qme. Without qme the kernel would have ignored
            # Ctrl-Z here, so resume the command (but not after an explicit SIGSTOP).
            if stop_signal != signal.SIGSTOP:
                self._signal_child(signal.SIGCONT)
            return
        self._release_keyboard()
        self._check_timer(now=True)  # stopped, qme could not call it on time
        # Never stop in the middle of a write: others would wait for our lock.
        idle = self.store_busy and self.store_busy.acquire(timeout=STOP_WAIT_SECONDS)
        try:
            os.kill(os.getpid(), signal.SIGSTOP)
        finally:
            if idle:
                self.store_busy.release()
        self._sync_keyboard()  # `fg` gives the terminal back; `bg` does not
        self._copy_sizes()
        self._signal_child(signal.SIGCONT)


def _job_control() -> bool:
    """Can a shell stop and resume qme's job? Not when qme's process group is
    orphaned, e.g. when qme leads its own session (`tmux new 'qme run …'`,
    `ssh -t host qme run …`): stopping itself there would hang for good."""
    try:
        parent = os.getppid()
        return os.getsid(parent) == os.getsid(0) and os.getpgid(parent) != os.getpgrp()
    except OSError:
        return False
