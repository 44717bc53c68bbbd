"""Writing a running task to the store from a background thread.

The command's output never waits for the store: chunks are queued and written
in batches a few times a second. If the store fails (locked, full, read-only,
down), the error is kept, later writes are dropped, and the command goes on.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from qme.store.base import Store
from qme.task import Task

FLUSH_SECONDS = 0.2
_FINISH = object()


class LiveRecord:
    def __init__(self, open_store: Callable[[], Store], task: Task):
        self.open_store = open_store
        self.task = task
        self.error: str | None = None
        self.items: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="qme-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def append(self, stream: str, data: bytes) -> None:
        if data and self.error is None:
            self.items.put((stream, data))

    def finish(self, task: Task) -> str | None:
        """Write the final state; wait for the writer; return the error, if any."""
        self.items.put((_FINISH, task))
        self.thread.join()
        return self.error

    def _run(self) -> None:
        store = None
        try:
            store = self.open_store()
            store.add(self.task)
            while self._write_batch(store):
                pass
        except Exception as exc:  # noqa: BLE001 - any failure: keep the command going
            self.error = str(exc) or type(exc).__name__
            self._discard()
        finally:
            if store is not None:
                try:
                    store.close()
                except Exception:  # noqa: BLE001
                    pass

    def _write_batch(self, store: Store) -> bool:
        """Write what arrives within one flush period; False once finished."""
        pending: dict[str, list[bytes]] = {}
        final = None
        item = self.items.get()
        deadline = time.monotonic() + FLUSH_SECONDS
        while True:
            if item[0] is _FINISH:
                final = item[1]
                break
            pending.setdefault(item[0], []).append(item[1])
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                item = self.items.get(timeout=timeout)
            except queue.Empty:
                break
        for stream, chunks in pending.items():
            store.append(self.task.id, stream, b"".join(chunks))
        if final is not None:
            store.update(final)
            return False
        return True

    def _discard(self) -> None:
        while True:
            if self.items.get()[0] is _FINISH:
                return
