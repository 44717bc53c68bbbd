"""Writing to a store from a background thread, so that what feeds it never waits.

Operations are applied in order, a batch every FLUSH_SECONDS (consecutive
appends to one stream are joined into one write). If the store fails (locked,
full, read-only, down), this operation and every later one of its task go to the
spool (qme/store/spool.py), to be delivered when the store works again; so do the
next tasks', until one started RETRY_SECONDS after the failure finds the store
working again. Whoever feeds the writer carries on: a command's output, or a
shell session.
While the store is merely slow (a lock held by another process, up to the busy
timeout), output waits in memory, up to MAX_QUEUED bytes; beyond that append()
waits too, so that a command whose whole output is kept (QME_MAX_OUTPUT=0) slows
down for that while rather than filling the memory.

A full disk may fail the spool too: then what the spool could not take is held
in memory, and a writer that may outlive its command (qme's writer process, see
wait_for_space()) writes it into the spool once there is room again.

A writer that takes over the record of another that died (resume(), see
qme/recorder/handoff.py) is given the task and its output again from the start:
what the store already has is skipped.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enums to import (see qme/recorder/spawn.py)
import errno
import os
import queue
import threading
import time
from collections.abc import Callable

from qme.errors import NoSuchTask
from qme.redact import Redactor, StreamRedactor, redact_task
from qme.store.base import Store
from qme.store.spool import SpoolFile
from qme.task import STREAMS, Task
from qme.text import shown

FLUSH_SECONDS = 0.2
MAX_QUEUED = 64 << 20
RETRY_SECONDS = 10.0
SPACE_POLL_SECONDS = 2.0  # how often a writer holding a record looks for room
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_CLOSE = ("close",)


def failure_message(
    error: str, spool_error: str | None, home: str | None, space_wait: float = 0
) -> str:
    """One line for the user about a store that failed (space_wait: the spool
    failed for want of room, and the record is kept that long for it)."""
    error = shown(error)
    if space_wait and home is not None:
        where = os.path.join(home, "spool")
        return (
            f"the disk is full: could not write to the store ({error}) nor to the spool "
            f"({spool_error}); qme's writer process {os.getpid()} keeps the record and "
            f"puts it in {where} once there is room (for up to {space_wait / 60:g} min)"
        )
    if spool_error is None and home is not None:
        where = os.path.join(home, "spool")
        return (
            f"could not write to the store ({error}); the record waits in {where} "
            "and is delivered when the store works again (or by 'qme sync')"
        )
    return f"this command was not recorded: {error} (the spool failed too: {spool_error})"


class StoreWriter:
    def __init__(
        self,
        open_store: Callable[[], Store],
        home: str | None = None,
        on_event: Callable[[str, str | None], None] | None = None,
        *,
        store_id: str | None = None,
        space_wait: float = 0.0,
        redactor: Redactor | None = None,
    ):
        """home: where the spool goes (None: nowhere, so a failure loses the rest).
        on_event("written", None) follows each batch the store took;
        on_event("spooling", message()) a failure of the store, the spool taking
        the rest (or, on a full disk, this writer keeping it until
        wait_for_space()); on_event("failed", message()) one that loses the rest.
        store_id: which store this is (qme.store.identity()), written in spool
        files so that only this store takes them. space_wait: seconds that
        wait_for_space() keeps trying (0: the writer's owner will not call it, so
        what a full disk held back is lost at close()). redactor: the secrets to
        replace before anything reaches the store or the spool (qme/redact.py), in
        this writer's thread."""
        self.open_store = open_store
        self.home = home
        self.on_event = on_event
        self.store_id = store_id
        self.space_wait = space_wait
        self.redacting = StreamRedactor(redactor) if redactor is not None else None
        self.held: list[tuple] = []  # operations a full disk kept out of the spool
        self.untold = False  # a failure on_event has not heard of yet
        self.skip: dict[str, dict[str, int]] = {}  # resumed tasks: bytes the store has
        self.error: str | None = None  # why the store failed (None again once it works)
        self.retry_at = 0.0  # the time.monotonic() after which a new task tries the store
        self.store: Store | None = None
        self.spool_error: str | None = None if home else "no spool for this store"
        # Held while the store is written: whoever suspends this process (Ctrl-Z)
        # takes it first, so that no database lock is held by a stopped process.
        self.busy = threading.Lock()
        self.timer = None  # nothing to start later (see qme.recorder.recording.Writer)
        self.ops: queue.SimpleQueue = queue.SimpleQueue()
        self.queued = 0  # bytes of output in self.ops
        self.room = threading.Condition()  # notified as queued output is written
        self.tasks: dict[str, tuple[Task, dict[str, int]]] = {}  # in the store: bytes kept
        self.spools: dict[str, SpoolFile] = {}
        self.thread = threading.Thread(target=self._run, name="qme-writer", daemon=True)
        self.thread.start()

    def add(self, task: Task) -> None:
        self.ops.put(("add", task.copy()))

    def append(self, task_id: str, stream: str, data: bytes) -> None:
        if not data:
            return
        with self.room:
            while self.queued > MAX_QUEUED and self.thread.is_alive():
                self.room.wait(1)
            self.queued += len(data)
        self.ops.put(("append", task_id, stream, data))

    def update(self, task: Task) -> None:
        self.ops.put(("update", task.copy()))

    def resume(self, task: Task) -> None:
        """add() for a task another writer began and may have written in part: the
        store keeps what it has, and of the output given again from its start,
        only the bytes it lacks are appended."""
        self.ops.put(("resume", task.copy()))

    def sync(self) -> None:
        """Return once what was queued before is written (or spooled)."""
        reached = threading.Event()
        self.ops.put(("sync", reached))
        while not reached.wait(1) and self.thread.is_alive():
            pass

    def close(self) -> str | None:
        """Write everything queued, stop, and return the failure, if any, as one line
        for the user (message())."""
        self.ops.put(_CLOSE)
        self.thread.join()
        return self.message()

    @property
    def spooling(self) -> bool:
        """The store failed, and the spool takes what it would not (or, on a full
        disk, this writer keeps it for the spool)."""
        return self.error is not None and (self.spool_error is None or self._holds())

    def _holds(self) -> bool:
        return bool(self.held) and self.space_wait > 0

    def message(self) -> str | None:
        """The failure, as one line for the user (None: no failure)."""
        if self.error is None:
            return None
        wait = self.space_wait if self._holds() else 0
        return failure_message(self.error, self.spool_error, self.home, wait)

    def wait_for_space(self) -> bool:
        """After close(): put what a full disk held back into the spool, trying
        every SPACE_POLL_SECONDS for up to space_wait seconds. True when all of it
        is spooled (or nothing was held)."""
        deadline = time.monotonic() + self.space_wait
        while True:
            self._spool_held()
            if not self.held or time.monotonic() >= deadline:
                break
            time.sleep(SPACE_POLL_SECONDS)
        for spool in self.spools.values():
            spool.close()
        self.spools.clear()
        lost, self.held = bool(self.held), []
        return not lost

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        # Signals go to the main thread only: while `qme run` holds them to hand its
        # record over (qme/recorder/pump.py), one must not end the process here.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        closed = False
        self._open()
        try:
            while not closed:
                batch = self._next_batch()
                closed = batch[-1] is _CLOSE
                with self.busy:
                    for op in _join_appends(batch):
                        self._apply(op)
                    if closed:  # what redaction kept of tasks that never ended
                        for op in self._kept_back():
                            self._apply(op)
                with self.room:
                    self.queued -= sum(len(op[3]) for op in batch if op[0] == "append")
                    self.room.notify_all()
                if self.error is None and self.on_event:
                    self.on_event("written", None)
        finally:
            waiting = {_task_id(op) for op in self.held} if self._holds() else set()
            for task_id in [t for t in self.spools if t not in waiting]:
                self.spools.pop(task_id).close()
            if self.store is not None:
                try:
                    self.store.close()
                except Exception:  # noqa: BLE001
                    pass

    def _open(self) -> None:
        try:
            self.store = self.open_store()
        except Exception as exc:  # noqa: BLE001 - any failure: spool and carry on
            self._fail(exc)

    def _apply(self, op: tuple) -> None:
        try:
            for redacted in self._redacted(op):
                self._apply_one(redacted)
        finally:
            self._tell()

    def _redacted(self, op: tuple) -> list[tuple]:
        """op with its secrets replaced: a chunk of output as far as it can be judged
        (the rest waits for the next chunk), and a finished task's last bytes."""
        redacting = self.redacting
        if redacting is None or op[0] == "sync":
            return [op]
        if op[0] == "append":
            data = redacting.feed(op[1], op[2], op[3])
            return [("append", op[1], op[2], data)] if data else []
        task = op[1]
        redact_task(redacting.redactor, task)
        if op[0] != "update" or not task.finished:
            return [op]
        last = [("append", task.id, s, redacting.flush(task.id, s)) for s in STREAMS]
        return [*(one for one in last if one[3]), op]

    def _kept_back(self) -> list[tuple]:
        """What redaction still keeps, as appends (the writer is closing)."""
        if self.redacting is None:
            return []
        kept = list(self.redacting.kept)
        found = [("append", t, s, self.redacting.flush(t, s)) for t, s in kept]
        return [op for op in found if op[3]]

    def _tell(self) -> None:
        """A failure, once what failed has found its place (the spool, or none)."""
        if self.untold:
            self.untold = False
            if self.on_event:
                self.on_event("spooling" if self.spooling else "failed", self.message())

    def _apply_one(self, op: tuple) -> None:
        if op[0] == "sync":
            self._tell()
            op[1].set()
            return
        starts = op[0] in ("add", "resume")
        if starts and self.error is not None and time.monotonic() >= self.retry_at:
            self.error = None  # try the store again with this task
            if self.store is None:
                self._open()
        if op[0] == "append" and op[1] in self.skip:
            op = self._skip_stored(op)
            if op is None:
                return
        if self.error is None and _task_id(op) not in self.spools and not self.held:
            try:
                if op[0] == "resume":
                    self._resume(op[1])
                else:
                    getattr(self.store, op[0])(*op[1:])
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)
            else:
                self._track(op)
                return
        self._spool(op)

    def _resume(self, task: Task) -> None:
        try:
            self.store.get(task.id, streams=False)
        except NoSuchTask:
            self.store.add(task)
            return
        self.skip[task.id] = {s: len(self.store.read(task.id, s)) for s in STREAMS}

    def _skip_stored(self, op: tuple) -> tuple | None:
        """An append of a resumed task without the bytes the store has already."""
        _, task_id, stream, data = op
        left = self.skip[task_id]
        skipped = min(left[stream], len(data))
        left[stream] -= skipped
        if not any(left.values()):
            del self.skip[task_id]
        return ("append", task_id, stream, data[skipped:]) if skipped < len(data) else None

    def _track(self, op: tuple) -> None:
        """Remember what the store has of each task, for a spool file that may follow."""
        kind = op[0]
        if kind == "append":
            self.tasks[op[1]][1][op[2]] += len(op[3])
        elif kind in ("add", "resume") or op[1].id in self.tasks:
            task = op[1]
            if kind == "update":
                kept = self.tasks[task.id][1]
            else:
                kept = {s: self.skip.get(task.id, {}).get(s, 0) for s in STREAMS}
            self.tasks[task.id] = (task, kept)
            if kind == "update" and task.finished:
                del self.tasks[task.id]

    def _fail(self, exc: Exception) -> None:
        self.error = str(exc) or type(exc).__name__
        self.retry_at = time.monotonic() + RETRY_SECONDS
        self.untold = True

    def _spool(self, op: tuple) -> None:
        if self.held:  # in order, after what a full disk held back
            self.held.append(op)
            return
        if self.spool_error is not None:
            return
        try:
            self._spool_now(op)
        except (OSError, KeyError) as exc:
            self.spool_error = str(exc) or type(exc).__name__
            if isinstance(exc, OSError) and exc.errno in NO_SPACE:
                self.held.append(op)
            self.untold = True

    def _spool_now(self, op: tuple) -> None:
        kind = op[0]
        task_id = _task_id(op)
        spool = self.spools.get(task_id)
        if spool is None:
            starts = kind in ("add", "resume")
            task, kept = (op[1], None) if starts else self.tasks[task_id]
            spool = self.spools[task_id] = SpoolFile(self.home, task, kept, self.store_id)
        if kind == "append":
            spool.append(op[2], op[3])
        elif kind == "update":
            spool.update(op[1])
            if op[1].finished:
                self.spools.pop(task_id).close()

    def _spool_held(self) -> None:
        """Spool what a full disk held back, in order, as far as there is room."""
        while self.held:
            try:
                self._spool_now(self.held[0])
            except OSError as exc:
                if exc.errno not in NO_SPACE:
                    self.spool_error, self.held = str(exc), []
                return
            self.held.pop(0)
        self.spool_error = None

    def _next_batch(self) -> list[tuple]:
        """What arrives within one flush period, ending early at a close or a sync."""
        batch = [self.ops.get()]
        deadline = time.monotonic() + FLUSH_SECONDS
        while batch[-1] is not _CLOSE and batch[-1][0] != "sync":
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                batch.append(self.ops.get(timeout=timeout))
            except queue.Empty:
                break
        return batch


def _task_id(op: tuple) -> str:
    """The task an add, append or update is about."""
    return op[1] if op[0] == "append" else op[1].id


def _join_appends(batch: list[tuple]) -> list[tuple]:
    """The batch's operations (without the close), consecutive appends to one
    stream joined into one."""
    joined: list[tuple] = []
    pieces: list[bytes] = []
    for op in batch:
        if op is _CLOSE:
            break
        last = joined[-1] if joined else None
        if op[0] == "append" and last and last[0] == "append" and last[1:3] == op[1:3]:
            pieces.append(op[3])
            continue
        if pieces:
            joined[-1] = (*joined[-1][:3], b"".join(pieces))
        pieces = [op[3]] if op[0] == "append" else []
        joined.append(op)
    if pieces:
        joined[-1] = (*joined[-1][:3], b"".join(pieces))
    return joined
