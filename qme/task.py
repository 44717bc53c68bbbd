"""The task record: one command that ran (or runs), where, by whom, and how it ended."""

from __future__ import annotations

import _signal  # not `signal`, which imports enum (start-up time)
import os
import time

from qme.origin import current_directory, current_user, hostname
from qme.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Protocol

    class TaskSource(Protocol):
        """What a task needs of the Queue it came from (qme.api.Queue is one)."""

        def get(self, task_id: str | None = None, *, streams: bool = True) -> Task: ...

        def run_action(self, task: Task | str | None, name: str, **options: Any) -> Any: ...


RUNNING, COMPLETE, FAILED, CANCELLED, LOST = "running", "complete", "failed", "cancelled", "lost"
PENDING, TIMEOUT = "pending", "timeout"  # from executors whose jobs wait in a queue (slurm)
STOPPED = "stopped"  # a job stopped by Ctrl-Z in a recorded shell; `fg` resumes it
STATUSES = (PENDING, RUNNING, STOPPED, COMPLETE, FAILED, CANCELLED, TIMEOUT, LOST)
STREAMS = ("output", "error")
# The line a record holds where its output was cut (max_output), with the number of
# bytes left out: written by qme/recorder/capture.py, looked for by `qme out`.
CUT_LINE = b"\r\n[qme: %d bytes not kept]\r\n"
# SIGHUP, SIGINT, SIGKILL, SIGTERM: the user (or the system) stopped the command.
CANCEL_SIGNALS = frozenset({1, 2, 9, 15})
# SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU: a shell reports a stopped job as 128+N.
STOP_SIGNALS = frozenset({_signal.SIGSTOP, _signal.SIGTSTP, _signal.SIGTTIN, _signal.SIGTTOU})


def status_of(returncode: int | None, signal: int | None = None) -> str:
    """The one rule for how a command ended: cancelled when a cancelling signal
    killed it, when it exited 130 (Ctrl-C, as shells report it) or with no status
    at all (its shell went away); stopped (not ended) when a stop signal stopped
    it (Ctrl-Z, as a shell reports it); else complete on 0, failed otherwise."""
    if signal in STOP_SIGNALS:
        return STOPPED
    if returncode is None or signal in CANCEL_SIGNALS or returncode == 130:
        return CANCELLED
    return COMPLETE if returncode == 0 else FAILED


def signal_in_status(status: int | None) -> int | None:
    """The signal N a shell or a container engine means by exit status 128+N."""
    return status - 128 if status is not None and 128 < status <= 128 + 64 else None


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
    HIDDEN_FROM_REPR = ("output", "error", "queue", "timing")

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
    # When the output came: {stream: [[offset in the stored bytes, ms since started],
    # ...]}, a bounded index (qme/recorder/capture.py); None when not kept.
    timing: dict[str, list[list[int]]] | None = None
    rerun_of: str | None = None
    session: str | None = None  # the shell session (qme on) it was typed in
    data: dict[str, Any] = dict  # executor-specific
    tags: list[str] = list  # the user's labels (qme tag), lower case; `message` is the note
    recorder: str | None = None  # "boot_id:pid:start_ticks" of the qme that records it
    output: bytes | None = None  # None: not loaded
    error: bytes | None = None
    queue: TaskSource | None = None

    @classmethod
    def begin(
        cls,
        command: str,
        argv: list[str],
        *,
        executor: str = "",
        cwd: str | None = None,
        started: float | None = None,
        **fields: Any,
    ) -> Task:
        """A task that starts now, here, as this user: the one way every front end
        (qme run, Queue.run, reruns, the session) begins one. An empty executor
        leaves the choice to the writer (the id is then the uuid alone, and the
        writer puts the executor's name in front)."""
        uuid = new_uuid4()
        return cls(
            id=f"{executor}-{uuid}" if executor else uuid,
            executor=executor,
            command=command,
            argv=argv,
            cwd=cwd or current_directory(),
            user=current_user(),
            host=hostname(),
            started=time.time() if started is None else started,
            **fields,
        )

    def assign_executor(self, name: str) -> None:
        """Give a task begun without an executor (its id the uuid alone) its own."""
        self.executor, self.id = name, f"{name}-{self.id}"

    def end(self, returncode: int | None, signal: int | None = None, rusage=None) -> None:
        """The command has ended now, with this exit status (128+N and signal N when
        signal N killed it; None when unknown) and resource usage (os.wait4's).
        Stopped (signal N a stop signal) is not an end: it goes on when resumed."""
        self.status = status_of(returncode, signal)
        if self.status == STOPPED:
            self.ended, self.returncode, self.signal = None, None, signal
            return
        self.ended = time.time()
        self.returncode, self.signal = returncode, signal
        if rusage is not None:
            self.max_rss = rusage.ru_maxrss * 1024  # Linux reports KiB
            self.cpu_user = round(rusage.ru_utime, 6)
            self.cpu_system = round(rusage.ru_stime, 6)

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
        return self.status not in (RUNNING, PENDING, STOPPED)

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

    def _require_queue(self) -> TaskSource:
        if self.queue is None:
            raise RuntimeError("this task is not attached to a Queue")
        return self.queue


_HIDDEN = {"queue", "recorder", "timing"}  # timing: Queue.timed_output()
