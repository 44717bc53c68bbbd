"""Starting the command with stdio that matches qme's own.

Each of stdin, stdout and stderr that is a terminal becomes a pseudo-terminal
for the command (stdin and stdout share one, stderr gets its own so the two
streams are recorded apart); the others are pipes (stdout, stderr) or simply
inherited (stdin, so `qme run sort < file` reads the file itself).
"""

from __future__ import annotations

# The C module behind `signal`, whose enums cost more to import than the rest of
# `qme run`'s start-up; the numbers and functions are the same.
import _signal as signal
import fcntl
import os
import time

# Ask Linux for a bigger pipe so a fast writer needs fewer round trips through qme.
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1 << 20


# pid; reads: {our fd: (fd to copy to, stream recorded or None)}; keyboard: the
# user's terminal, where keys are read (qme's stdin, or /dev/tty when stdin is not
# a terminal but the output is: `cat f | qme run less`), or None; input_fd: the
# pty master that receives those keys; ptys: [(master, the user's terminal fd it
# mirrors)]; own_session: the command leads its own session (it has a pty).
# sigmask: the signal mask to restore once qme's handlers are in place (see spawn).
class Child:
    __slots__ = ("pid", "reads", "keyboard", "input_fd", "ptys", "own_session", "sigmask")

    def __init__(self, **fields):
        for name, value in fields.items():
            setattr(self, name, value)


# Signals qme passes on (see pump.py): blocked from the fork until its handlers are
# installed, so that one arriving in between is passed on rather than killing qme.
HELD_SIGNALS = {
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTSTP,
    signal.SIGCHLD,
    signal.SIGWINCH,
    signal.SIGCONT,
}


def is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def big_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(read_end, _F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass
    return read_end, write_end


def _pty(mirror: int) -> tuple[int, int]:
    from qme.recorder.terminal import copy_modes, copy_size  # termios: terminals only

    master, slave = os.openpty()
    copy_modes(mirror, slave)
    copy_size(mirror, master)
    return master, slave


def spawn(
    argv: list[str],
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    one_pty: bool = False,
) -> Child:
    """Start argv. one_pty puts stdin, stdout and stderr on a single pty where any
    of them is a terminal, as `script` does: an interactive shell prints its
    prompt on stderr and must not have it reordered against its output."""
    tty_in, tty_out, tty_err = (is_tty(fd) for fd in (0, 1, 2))
    if one_pty and (tty_in or tty_out or tty_err):
        tty_in = tty_out = tty_err = True
    reads: dict[int, tuple[int, str | None]] = {}
    ptys, close_in_parent = [], []
    main = err = None
    if tty_in or tty_out:
        main = _pty(0 if tty_in else 1)
        ptys.append((main[0], 0 if tty_in else 1))
        close_in_parent.append(main[1])
    if tty_err and not one_pty:
        err = _pty(2)
        ptys.append((err[0], 2))
        close_in_parent.append(err[1])

    stdin = main[1] if tty_in else 0
    if tty_out:
        stdout = main[1]
        reads[main[0]] = (1, "output")
    else:
        out_r, stdout = big_pipe()
        reads[out_r] = (1, "output")
        close_in_parent.append(stdout)
        if main:  # a pty for stdin only: what it echoes of the user's typing goes back
            reads[main[0]] = (2 if tty_err else 0, None)
    if one_pty and main:
        stderr = main[1]
    elif err:
        stderr = err[1]
        reads[err[0]] = (2, "error")
    else:
        err_r, stderr = big_pipe()
        reads[err_r] = (2, "error")
        close_in_parent.append(stderr)

    controlling = main[1] if main else (err[1] if err else None)
    sigmask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    pid = None
    if controlling is None and cwd is None and env is None:
        pid = _spawn_plainly(argv, (stdin, stdout, stderr), sigmask)
    if pid is None:
        pid = os.fork()
        if pid == 0:  # the child: only system calls from here on, then exec
            signal.pthread_sigmask(signal.SIG_SETMASK, sigmask)
            _exec_child(argv, cwd, env, stdin, stdout, stderr, controlling)
    for fd in close_in_parent:
        os.close(fd)
    keyboard = 0 if tty_in else (_open_terminal() if controlling is not None else None)
    return Child(
        pid=pid,
        reads=reads,
        keyboard=keyboard,
        input_fd=None if keyboard is None else (main or err)[0],
        ptys=ptys,
        own_session=controlling is not None,
        sigmask=sigmask,
    )


def _spawn_plainly(argv: list[str], stdio: tuple[int, int, int], sigmask) -> int | None:
    """Start a command that needs no terminal, directory or environment of its own
    with posix_spawnp: glibc starts it without copying qme's memory, about 0.7 ms
    sooner than fork and exec. None if it cannot be started: the fork path then
    tells why, as a shell would (`command not found`, exit 127)."""
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio) if fd != target]
    try:
        return os.posix_spawnp(
            argv[0],
            argv,
            os.environ,
            file_actions=actions,
            setsigmask=sigmask,
            # Python ignores SIGPIPE and SIGXFSZ; the command must get the defaults.
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except (OSError, ValueError):
        return None


def _open_terminal() -> int | None:
    """qme's controlling terminal, for keys when stdin is not a terminal."""
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None


KEEPER_POLL_SECONDS = 0.5
_KEEPER_IGNORES = (
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGPIPE,
)


def _start_keeper() -> None:
    """Let Ctrl-Z stop the command as it would without qme.

    A command on a pty leads its own session, so its process group is "orphaned"
    (no member has a parent in another group of the same session), and Linux
    discards the job-control stops (SIGTSTP, SIGTTIN, SIGTTOU) sent to such a
    group: Ctrl-Z would do nothing. An idle keeper in the command's group, whose
    parent (the anchor) leads another group of the session, makes it an ordinary
    group. Both hold no fds and leave once the command has ended; they are
    forked through a middle process so that neither is the command's child. The
    command waits until the keeper is in its group, so that one stopping itself
    at once (`sh -c 'kill -TSTP $$'`) stops too. Runs in the forked child,
    before exec.
    """
    leader = os.getpid()
    try:
        ready, keeper_ready = os.pipe()
        middle = os.fork()
    except OSError:  # no Ctrl-Z then, but the command runs
        return
    if middle:
        os.close(keeper_ready)
        os.waitpid(middle, 0)
        os.read(ready, 1)  # a byte from the keeper, or the end if it failed
        os.close(ready)
        return
    try:
        try:
            open_fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
        except OSError:
            open_fds = range(256)
        for fd in open_fds:
            if fd != keeper_ready:
                try:
                    os.close(fd)
                except OSError:
                    pass
        for sig in _KEEPER_IGNORES:
            signal.signal(sig, signal.SIG_IGN)
        if os.fork() == 0:  # the anchor
            os.setpgid(0, 0)
            _name_process(b"qme-anchor")
            keeper = os.fork()
            if keeper:
                os.close(keeper_ready)
                os.waitpid(keeper, 0)
            else:
                os.setpgid(0, leader)
                os.write(keeper_ready, b".")
                os.close(keeper_ready)
                _name_process(b"qme-keeper")
                while os.getsid(leader) == leader:  # ProcessLookupError once it is reaped
                    time.sleep(KEEPER_POLL_SECONDS)
    except BaseException:  # noqa: BLE001 - never return into qme
        pass
    finally:
        os._exit(0)


def _name_process(name: bytes) -> None:
    """What `ps` and `top` show for this process (not its arguments)."""
    try:
        fd = os.open("/proc/self/comm", os.O_WRONLY)
        try:
            os.write(fd, name)
        finally:
            os.close(fd)
    except OSError:
        pass


def _exec_child(argv, cwd, env, stdin, stdout, stderr, controlling) -> None:
    """Runs in the forked child: set up stdio, exec, and never return."""
    code, reason = 126, "cannot start the command"
    try:
        if controlling is not None:
            import termios

            os.setsid()
            fcntl.ioctl(controlling, termios.TIOCSCTTY, 0)
            _start_keeper()
        for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
            if fd != target:
                os.dup2(fd, target)
        # Python ignores SIGPIPE and SIGXFSZ; the command must get the defaults back.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        if cwd:
            os.chdir(cwd)
    except OSError as exc:
        reason = f"{cwd or argv[0]}: {exc.strerror}"
    except BaseException:  # noqa: BLE001 - the child must never return into qme
        pass
    else:
        try:
            _execvpe(argv[0], argv, os.environ if env is None else env)
        except FileNotFoundError:
            code, reason = 127, f"{argv[0]}: command not found"
        except OSError as exc:  # permission denied, exec format error, …
            reason = f"{argv[0]}: {exc.strerror}"
        except BaseException:  # noqa: BLE001
            pass
    try:
        os.write(2, f"qme: {reason}\n".encode(errors="replace"))
    finally:
        os._exit(code)


def _execvpe(file: str, argv: list[str], env) -> None:
    """os.execvpe, which imports `warnings` (over a millisecond) before each exec."""
    if os.sep in file:
        os.execve(file, argv, env)
    first_error = None
    for folder in env.get("PATH", os.defpath).split(os.pathsep):
        try:
            os.execve(os.path.join(folder, file), argv, env)
        except (FileNotFoundError, NotADirectoryError) as exc:
            last_error = exc
        except OSError as exc:
            last_error = exc
            first_error = first_error or exc
    raise first_error or last_error
