"""The spool: records the store could not take, kept in files until it can.

When a store fails (a server down, a database locked, corrupt or read-only), the
writer puts the rest of each task into `$QME_HOME/spool/<task id>.spool`: the
task as it was when the store failed, how many bytes of each stream the store
already had (when it had the task at all), then every later append and update.
Delivery (`deliver`) adds what the store lacks, appends the bytes it does not
have yet and saves the last update; it can stop half-way and start again, since
it first asks the store how much of each stream it holds. A spool file is
flock()ed while it is written or delivered, so that two processes never deliver
the same file and none delivers a file still being written.

File format: records of `KIND LENGTH\\n` then LENGTH bytes. KIND is `task` (JSON
of the task's fields), `stored` (JSON {stream: bytes the store had}), `output`
or `error` (raw bytes to append) or `update` (JSON of the task's fields).
"""

from __future__ import annotations

import fcntl
import json
import os

from qme.errors import NoSuchTask
from qme.store.base import Store
from qme.task import STREAMS, Task

FOLDER = "spool"
SUFFIX = ".spool"
_KINDS = {b"task", b"stored", b"update", *(s.encode() for s in STREAMS)}


def folder(home: str) -> str:
    return os.path.join(home, FOLDER)


def _fields(task: Task) -> bytes:
    values = {n: getattr(task, n) for n in Task.FIELDS if n not in (*STREAMS, "queue")}
    return json.dumps(values, default=str).encode()


class SpoolFile:
    """One task's records, written as they come; locked until closed."""

    def __init__(self, home: str, task: Task, stored: dict[str, int] | None):
        """stored: bytes of each stream the store holds, or None if it lacks the task."""
        os.makedirs(folder(home), mode=0o700, exist_ok=True)
        self.path = os.path.join(folder(home), task.id + SUFFIX)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self.fd = os.open(self.path, flags, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            if os.fstat(self.fd).st_size == 0:
                self._write(b"task", _fields(task))
                if stored is not None:
                    self._write(b"stored", json.dumps(stored).encode())
        except BaseException:
            os.close(self.fd)
            raise

    def append(self, stream: str, data: bytes) -> None:
        self._write(stream.encode(), data)

    def update(self, task: Task) -> None:
        self._write(b"update", _fields(task))

    def close(self) -> None:
        os.close(self.fd)  # drops the lock: the file may now be delivered

    def _write(self, kind: bytes, data: bytes) -> None:
        record = b"%s %d\n" % (kind, len(data)) + data
        view = memoryview(record)
        while view:
            view = view[os.write(self.fd, view) :]


def pending(home: str) -> list[str]:
    """Paths of the spool files, oldest first."""
    try:
        names = [n for n in os.listdir(folder(home)) if n.endswith(SUFFIX)]
    except OSError:
        return []
    paths = [os.path.join(folder(home), n) for n in names]
    return sorted(paths, key=_mtime)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def deliver(home: str, store: Store) -> int:
    """Deliver every spool file nobody else holds into store; returns how many.
    A failure of the store raises (what was delivered so far stays delivered)."""
    delivered = 0
    for path in pending(home):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # delivered by someone else meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being written or delivered
            if os.fstat(fd).st_nlink == 0:
                continue  # delivered by someone else between listing and locking
            _deliver_file(fd, store)
            os.unlink(path)
            delivered += 1
        finally:
            os.close(fd)
    return delivered


def deliver_or_warn(home: str, store: Store) -> None:
    """Deliver what waits in the spool, if anything; warn when the store refuses."""
    if not pending(home):
        return
    try:
        deliver(home, store)
    except Exception as exc:  # noqa: BLE001 - the reader's own work goes on
        from qme import console

        left = len(pending(home))
        console.warn(f"{left} record(s) wait in {folder(home)}: the store refused them ({exc})")


def spooled_task(path: str) -> Task | None:
    """The task a spool file is about (None if it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for kind, data in read_records(fd):
            return Task(**json.loads(data)) if kind == "task" else None
    finally:
        os.close(fd)
    return None


def read_records(fd: int):
    """(kind, data) of each complete record; a torn last record is left out."""
    with os.fdopen(os.dup(fd), "rb") as handle:
        while True:
            header = handle.readline()
            kind, _, size = header.rstrip(b"\n").partition(b" ")
            if not header.endswith(b"\n") or kind not in _KINDS or not size.isdigit():
                return
            data = handle.read(int(size))
            if len(data) < int(size):
                return
            yield kind.decode(), data


def _deliver_file(fd: int, store: Store) -> None:
    task, start, last = None, dict.fromkeys(STREAMS, 0), None
    skip: dict[str, int] = {}
    for kind, data in read_records(fd):
        if kind == "task":
            task = Task(**json.loads(data))
        elif kind == "stored":
            start.update(json.loads(data))
        elif kind == "update":
            last = Task(**json.loads(data))
        elif task is not None:
            if not skip:  # first bytes: how many of the spooled ones the store has
                skip = _already_stored(store, task, start)
            if skip[kind] >= len(data):
                skip[kind] -= len(data)
                continue
            store.append(task.id, kind, data[skip[kind] :])
            skip[kind] = 0
    if task is not None and not skip:
        _already_stored(store, task, start)  # adds the task if the store lacks it
    if last is not None:
        store.update(last)


def _already_stored(store: Store, task: Task, start: dict[str, int]) -> dict[str, int]:
    """Bytes of each spooled stream the store already has (after an earlier, partial
    delivery, or a write the store made but could not confirm); adds the task
    when the store does not have it at all."""
    try:
        store.get(task.id, streams=False)
    except NoSuchTask:
        store.add(task)
        return dict.fromkeys(STREAMS, 0)
    return {s: len(store.read(task.id, s, start[s])) for s in STREAMS}
