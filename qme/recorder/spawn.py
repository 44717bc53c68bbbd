"""Starting the command with stdio that matches qme's own.

Each of stdin, stdout and stderr that is a terminal becomes a pseudo-terminal
for the command (stdin and stdout share one, stderr gets its own so the two
streams are recorded apart); the others are pipes (stdout, stderr) or simply
inherited (stdin, so `qme run sort < file` reads the file itself).
"""

from __future__ import annotations

import fcntl
import os
import signal
import termios
from collections import namedtuple

from qme.recorder.terminal import copy_modes, copy_size, is_tty

# Ask Linux for a bigger pipe so a fast writer needs fewer round trips through qme.
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1 << 20


# pid; reads: {our fd: (fd to copy to, stream recorded or None)}; input_fd: the
# pty master that receives the user's keystrokes (or None); ptys: [(master, the
# user's terminal fd it mirrors)]; own_session: the command leads its own
# session (it has a pty). A named tuple rather than a dataclass: see qme/record.py.
Child = namedtuple("Child", "pid reads input_fd ptys own_session")


def _pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(read_end, _F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass
    return read_end, write_end


def _pty(mirror: int) -> tuple[int, int]:
    master, slave = os.openpty()
    copy_modes(mirror, slave)
    copy_size(mirror, master)
    return master, slave


def spawn(argv: list[str], cwd: str | None = None) -> Child:
    tty_in, tty_out, tty_err = (is_tty(fd) for fd in (0, 1, 2))
    reads: dict[int, tuple[int, str | None]] = {}
    ptys, close_in_parent = [], []
    main = err = None
    if tty_in or tty_out:
        main = _pty(0 if tty_in else 1)
        ptys.append((main[0], 0 if tty_in else 1))
        close_in_parent.append(main[1])
    if tty_err:
        err = _pty(2)
        ptys.append((err[0], 2))
        close_in_parent.append(err[1])

    stdin = main[1] if tty_in else 0
    if tty_out:
        stdout = main[1]
        reads[main[0]] = (1, "output")
    else:
        out_r, stdout = _pipe()
        reads[out_r] = (1, "output")
        close_in_parent.append(stdout)
        if main:  # a pty for stdin only: what it echoes of the user's typing goes back
            reads[main[0]] = (2 if tty_err else 0, None)
    if err:
        stderr = err[1]
        reads[err[0]] = (2, "error")
    else:
        err_r, stderr = _pipe()
        reads[err_r] = (2, "error")
        close_in_parent.append(stderr)

    controlling = main[1] if main else (err[1] if err else None)
    pid = os.fork()
    if pid == 0:  # the child: only system calls from here on, then exec
        _exec_child(argv, cwd, stdin, stdout, stderr, controlling)
    for fd in close_in_parent:
        os.close(fd)
    return Child(
        pid=pid,
        reads=reads,
        input_fd=main[0] if tty_in else None,
        ptys=ptys,
        own_session=controlling is not None,
    )


def _exec_child(argv, cwd, stdin, stdout, stderr, controlling) -> None:
    """Runs in the forked child: set up stdio, exec, and never return."""
    code, reason = 126, "cannot start the command"
    try:
        if controlling is not None:
            os.setsid()
            fcntl.ioctl(controlling, termios.TIOCSCTTY, 0)
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
            os.execvp(argv[0], argv)
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
