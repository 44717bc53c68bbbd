"""Records that are finished but not yet written: what a reader waits for.

`qme run` hands its record to a writer child (qme/recorder/handoff.py) and exits
without waiting for the store, so `qme run make; qme get` could otherwise read the
task as still running. Before forking, `qme run` opens a file in
`$QME_HOME/pending/` named after itself; the parent takes flock(LOCK_EX) on that
open file (shared with the child) just before it hands over the final state of a
task; the child unlocks it once that is written (or spooled), and unlinks it when
it is done. A session's proxy does the same for each command it records.
A reader waits, up to a few seconds, for a shared lock on every such file. A
file that is unlocked belongs to a command still running (its record says so), or
to a writer that died: the latter are removed.
"""

from __future__ import annotations

import fcntl
import os
import time

from qme import private

FOLDER = "pending"
WAIT_SECONDS = 5.0
_POLL_SECONDS = 0.002


def create(home: str, name: str) -> int | None:
    """An open lock file for this recorder, or None when QME_HOME is unusable (the
    store then cannot be written either, which the writer reports)."""
    folder = os.path.join(home, FOLDER)
    path = os.path.join(folder, name)
    flags = os.O_RDWR | os.O_CREAT
    try:
        return private.open_file(path, flags)
    except FileNotFoundError:
        try:
            private.make_dir(folder)  # QME_HOME too, when this is its first use: 0700
            return private.open_file(path, flags)
        except OSError:
            return None
    except OSError:
        return None


def hold(fd: int | None) -> None:
    """The parent: a task's final state is about to be handed over; readers wait."""
    _flock(fd, fcntl.LOCK_EX)


def unlock(fd: int | None) -> None:
    """The writer child: the final state handed over is written; readers may go on."""
    _flock(fd, fcntl.LOCK_UN)


def release(fd: int | None, home: str, name: str) -> None:
    """The writer child: all is written; readers may go on, and the file goes."""
    if fd is None:
        return
    try:
        os.unlink(os.path.join(home, FOLDER, name))
    except OSError:
        pass
    unlock(fd)  # for the parent's descriptor of it too
    os.close(fd)


def _flock(fd: int | None, operation: int) -> None:
    if fd is not None:
        try:
            fcntl.flock(fd, operation)
        except OSError:
            pass


def wait(home: str, timeout: float = WAIT_SECONDS) -> None:
    """Wait until every finished record of this home is written, or timeout."""
    folder = os.path.join(home, FOLDER)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    for name in names:
        try:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # written meanwhile
        try:
            if _wait_for_lock(fd, deadline):
                _remove_if_stale(folder, name)
        finally:
            os.close(fd)


def being_written(home: str, name: str | None) -> bool:
    """Whether the writer of the record of recorder `name` is writing it now (its
    qme run has ended and handed it over)."""
    if not name:
        return False
    try:
        fd = os.open(os.path.join(home, FOLDER, name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return not _wait_for_lock(fd, deadline=0.0)
    finally:
        os.close(fd)


def _wait_for_lock(fd: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)
        except OSError:
            return False


def _remove_if_stale(folder: str, name: str) -> None:
    from qme import liveness

    if not liveness.is_alive(name):
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass
