"""The task record: one command that ran (or runs), where, by whom, and how it ended."""

from __future__ import annotations

import os

from qme.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from qme.api import Queue

RUNNING, COMPLETE, FAILED, CANCELLED, LOST = "running", "complete", "failed", "cancelled", "lost"
PENDING, TIMEOUT = "pending", "timeout"  # from executors whose jobs wait in a queue (slurm)
STATUSES = (PENDING, RUNNING, COMPLETE, FAILED, CANCELLED, TIMEOUT, LOST)
STREAMS = ("output", "error")


def new_uuid4() -> str:
    """A random (version 4) UUID string.

    Written out rather than taken from `uuid`, whose import costs more than the
    rest of `qme run`'s start-up put together.
    """
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Task(Record):
    HIDDEN_FROM_REPR = ("output", "error", "queue")

    id: str
    executor: str
    command: str
    argv: list[str]
    cwd: str
    user: str
    host: str
    started: float
    status: str = RUNNING
    pid: int | None = None
    ended: float | None = None
    returncode: int | None = None
    signal: int | None = None
    message: str | None = None
    max_rss: int | None = None  # bytes, peak resident memory of the command
    cpu_user: float | None = None  # seconds
    cpu_system: float | None = None
    term_cols: int | None = None
    term_rows: int | None = None
    output_size: int = 0  # bytes the command wrote; more than is stored when cut
    error_size: int = 0
    rerun_of: str | None = None
    session: str | None = None  # the shell session (qme on) it was typed in
    data: dict[str, Any] = dict  # executor-specific
    recorder: str | None = None  # "boot_id:pid:start_ticks" of the qme that records it
    output: bytes | None = None  # None: not loaded
    error: bytes | None = None
    queue: Queue | None = None

    @property
    def uuid(self) -> str:
        return self.id[len(self.executor) + 1 :]

    @property
    def short_id(self) -> str:
        return self.uuid[:8]

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else max(0.0, self.ended - self.started)

    @property
    def finished(self) -> bool:
        return self.status not in (RUNNING, PENDING)

    def load(self) -> dict[str, Any]:
        """Re-read the record from the store and return it as a dict (QueueMe's API)."""
        fresh = self._require_queue().get(self.id)
        for name in self.FIELDS:
            if name != "queue":
                setattr(self, name, getattr(fresh, name))
        return self.to_dict()

    def run_action(self, name: str, **options: Any) -> Any:
        """Run one of its executor's actions on this task: `task.run_action("status")`.
        Returns data (a str, list or dict); an unknown name raises QmeError."""
        return self._require_queue().run_action(self, name, **options)

    def to_dict(self, streams: bool = True) -> dict[str, Any]:
        record = {name: getattr(self, name) for name in self.FIELDS if name not in _HIDDEN}
        record["duration"] = self.duration
        for stream in STREAMS:
            raw = record.pop(stream)
            if streams and raw is not None:
                record[stream] = raw.decode("utf-8", errors="replace")
        return record

    def _require_queue(self) -> Queue:
        if self.queue is None:
            raise RuntimeError("this task is not attached to a Queue")
        return self.queue


_HIDDEN = {"queue", "recorder"}
