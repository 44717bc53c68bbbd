"""One running task, written to the store as it goes (see qme/store/writer.py)."""

from __future__ import annotations

from collections.abc import Callable

from qme.store.base import Store
from qme.store.writer import StoreWriter
from qme.task import Task


class LiveRecord:
    def __init__(self, open_store: Callable[[], Store], task: Task):
        self.task_id = task.id
        self.writer = StoreWriter(open_store)
        # Held by the writer while it writes: qme takes it before stopping itself
        # on Ctrl-Z, so that a suspended qme never holds the database's lock.
        self.busy = self.writer.busy
        self.writer.add(task)

    def append(self, stream: str, data: bytes) -> None:
        self.writer.append(self.task_id, stream, data)

    def finish(self, task: Task) -> str | None:
        """Write the final state; wait for the writer; return the error, if any."""
        self.writer.update(task)
        return self.writer.close()
