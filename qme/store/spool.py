"""The spool: records the store could not take, kept in files until it can.

When a store fails (a server down, a database locked, corrupt or read-only, a
full disk), the writer puts the rest of each task into
`$QME_HOME/spool/<task id>.spool`: the task as it was when the store failed,
which store it is for, how many bytes of each stream the store already had (when
it had the task at all), then every later append and update. Delivery
(`deliver`) adds what the store lacks, appends the bytes it does not have yet
and saves the last update; it can stop half-way and start again, since it first
asks the store how much of each stream it holds. A spool file is flock()ed while
it is written or delivered, so that two processes never deliver the same file
and none delivers a file still being written; it is begun under a hidden name
(`.<task id>….new`) and takes its name only once locked, its header written.

A record is delivered only to the store it was meant for (`qme --database …` for
one command must not take another store's records): each file names its store
(qme.store.identity()). Files that name none (written by an older qme, or for a
`database` setting that names no store) are delivered only by `qme sync`, to the
store it is run for.

A write that fails (a full disk) is cut back to the last whole record, and a
file that could not even take its first record is removed: a spool file is
always whole records. Two files for one task (a writer killed, another taking
over: qme/recorder/handoff.py) are delivered oldest first, each adding only what
the store lacks.

File format: records of `KIND LENGTH\\n` then LENGTH bytes. KIND is `task` (JSON
of the task's fields), `store` (which store, as text), `stored` (JSON {stream:
bytes the store had}), `output` or `error` (raw bytes to append) or `update`
(JSON of the task's fields).
"""

from __future__ import annotations

import fcntl
import json
import os

from qme import private
from qme.errors import NoSuchTask
from qme.store.base import Store
from qme.task import STREAMS, Task

FOLDER = "spool"
SUFFIX = ".spool"
DRAFT = ".new"  # a spool file being begun (see _publish)
_KINDS = {b"task", b"store", b"stored", b"update", *(s.encode() for s in STREAMS)}


def folder(home: str) -> str:
    return os.path.join(home, FOLDER)


def _fields(task: Task) -> bytes:
    values = {n: getattr(task, n) for n in Task.FIELDS if n not in (*STREAMS, "queue")}
    return json.dumps(values, default=str).encode()


class SpoolFile:
    """One task's records, written as they come; locked until closed."""

    def __init__(
        self, home: str, task: Task, stored: dict[str, int] | None, store: str | None = None
    ):
        """stored: bytes of each stream the store holds, or None if it lacks the task;
        store: which store the record is for (qme.store.identity())."""
        private.make_dir(folder(home))
        appending = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        self.fd, self.path = _first_free(
            folder(home), f".{task.id}", DRAFT, lambda path: private.open_file(path, appending)
        )
        self.size = 0  # bytes of whole records written
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            self._write(b"task", _fields(task))
            if store is not None:
                self._write(b"store", store.encode("utf-8", "surrogateescape"))
            if stored is not None:
                self._write(b"stored", json.dumps(stored).encode())
            self.path = _publish(self.path, folder(home), task.id)
        except BaseException:
            _remove(self.path)  # no file that is not a whole record
            os.close(self.fd)
            raise

    def append(self, stream: str, data: bytes) -> None:
        self._write(stream.encode(), data)

    def update(self, task: Task) -> None:
        self._write(b"update", _fields(task))

    def close(self) -> None:
        os.close(self.fd)  # drops the lock: the file may now be delivered

    def _write(self, kind: bytes, data: bytes) -> None:
        """Append one record, or raise with the file cut back to its whole records."""
        record = b"%s %d\n" % (kind, len(data)) + data
        view = memoryview(record)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except BaseException:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass
            raise
        self.size += len(record)


def _first_free(where: str, stem: str, suffix: str, take) -> tuple[object, str]:
    """take(path) on the first free name of stem+suffix, stem.<pid>.1+suffix, …
    (take raises FileExistsError for a name in use); what it returned, and the path."""
    for number in range(1000):
        name = stem + (f".{os.getpid()}.{number}" if number else "") + suffix
        path = os.path.join(where, name)
        try:
            return take(path), path
        except FileExistsError:
            continue
    raise FileExistsError(f"too many spool files for {stem} in {where}")


def _publish(draft: str, where: str, task_id: str) -> str:
    """Give the draft (locked, its header written) its name among the spool files;
    the path it has now. Until then no reader lists it: a reader that found it
    empty before its writer locked it would take it for one whose writer had died,
    and remove it with the record about to be written."""
    _, path = _first_free(where, task_id, SUFFIX, lambda path: os.link(draft, path))
    _remove(draft)
    return path


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


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


def deliver(home: str, store: Store, identity: str | None = None, unmarked: bool | None = None):
    """Deliver every spool file for this store (identity, qme.store.identity())
    that nobody else holds; returns how many records were delivered. unmarked:
    also the files that name no store (default: when identity is None). A failure
    of the store raises (what was delivered so far stays delivered)."""
    unmarked = identity is None if unmarked is None else unmarked
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
            task, meant_for = _header(fd)
            if task is None:  # its writer ended before its first record: nothing to deliver
                _remove(path)
                continue
            if meant_for != identity and not (meant_for is None and unmarked):
                continue
            _deliver_file(fd, store)
            os.unlink(path)
            delivered += 1
        finally:
            os.close(fd)
    return delivered


def deliver_or_warn(home: str, store: Store, identity: str | None) -> None:
    """Deliver what waits in the spool for this store, if anything; warn when the
    store refuses it."""
    if not pending(home):
        return
    try:
        deliver(home, store, identity, unmarked=False)
    except Exception as exc:  # noqa: BLE001 - the reader's own work goes on
        from qme import console
        from qme.text import shown

        left = sum(1 for _, _, meant_for in spooled(home) if meant_for == identity)
        console.warn(
            f"{left} record(s) wait in {folder(home)}: the store refused them ({shown(str(exc))})"
        )


def spooled(home: str) -> list[tuple[str, Task | None, str | None]]:
    """(file, its task or None when unreadable, the store it waits for or None)
    of each spool file, oldest first."""
    return [(path, *header(path)) for path in pending(home)]


def header(path: str) -> tuple[Task | None, str | None]:
    """The task a spool file is about (None if it cannot be read) and which store
    it is for (None when the file does not say)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None, None
    try:
        return _header(fd)
    finally:
        os.close(fd)


def spooled_task(path: str) -> Task | None:
    """The task a spool file is about (None if it cannot be read)."""
    return header(path)[0]


def _header(fd: int) -> tuple[Task | None, str | None]:
    task = identity = None
    for kind, data in read_records(fd, start=0):
        if kind == "task":
            task = Task(**json.loads(data))
        elif kind == "store":
            identity = data.decode("utf-8", "surrogateescape")
        elif kind != "stored":
            break
    return task, identity


def read_records(fd: int, start: int | None = None):
    """(kind, data) of each complete record; a torn last record is left out.
    start: the offset to read from (default: where fd is)."""
    with os.fdopen(os.dup(fd), "rb") as handle:
        if start is not None:
            handle.seek(start)
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
    for kind, data in read_records(fd, start=0):
        if kind == "task":
            task = Task(**json.loads(data))
        elif kind == "store":
            continue
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
