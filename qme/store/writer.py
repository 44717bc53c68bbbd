"""Writing to a store from a background thread, so the terminal never waits on it.

Operations are applied in order, a batch every FLUSH_SECONDS (consecutive
appends to one stream are joined into one write). If the store fails (locked,
full, read-only, down), the error is kept, later operations are dropped, and
whoever feeds the writer carries on: a command's output, or a shell session.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from qme.store.base import Store
from qme.task import Task

FLUSH_SECONDS = 0.2
_CLOSE = ("close",)


class StoreWriter:
    def __init__(self, open_store: Callable[[], Store]):
        self.open_store = open_store
        self.error: str | None = None
        # Held while the store is written: whoever suspends this process (Ctrl-Z)
        # takes it first, so that no database lock is held by a stopped process.
        self.busy = threading.Lock()
        self.ops: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="qme-writer", daemon=True)
        self.thread.start()

    def add(self, task: Task) -> None:
        self._put(("add", task.copy()))

    def append(self, task_id: str, stream: str, data: bytes) -> None:
        if data:
            self._put(("append", task_id, stream, data))

    def update(self, task: Task) -> None:
        self._put(("update", task.copy()))

    def close(self) -> str | None:
        """Write everything queued, stop, and return the error, if any."""
        self.ops.put(_CLOSE)
        self.thread.join()
        return self.error

    def _put(self, op: tuple) -> None:
        if self.error is None:
            self.ops.put(op)

    def _run(self) -> None:
        store = None
        closed = False
        try:
            store = self.open_store()
            while not closed:
                batch = self._next_batch()
                closed = batch[-1] is _CLOSE
                with self.busy:
                    for op in _join_appends(batch):
                        getattr(store, op[0])(*op[1:])
        except Exception as exc:  # noqa: BLE001 - any failure: keep the caller going
            self.error = str(exc) or type(exc).__name__
            while not closed:  # drop what is queued, up to the close
                closed = self.ops.get() is _CLOSE
        finally:
            if store is not None:
                try:
                    store.close()
                except Exception:  # noqa: BLE001
                    pass

    def _next_batch(self) -> list[tuple]:
        """What arrives within one flush period, ending early at a close."""
        batch = [self.ops.get()]
        deadline = time.monotonic() + FLUSH_SECONDS
        while batch[-1] is not _CLOSE:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                batch.append(self.ops.get(timeout=timeout))
            except queue.Empty:
                break
        return batch


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
