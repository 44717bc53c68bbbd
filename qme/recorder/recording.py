"""Recording a command that spawn() started: its stdio passed through by the pump,
its output and outcome handed to a writer."""

from __future__ import annotations

import time

from qme import liveness
from qme.recorder.capture import StreamCapture
from qme.recorder.pump import Pump, release_signals
from qme.recorder.spawn import is_tty
from qme.task import FAILED, STREAMS, Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from qme.recorder.hooks import ExecutorHooks
    from qme.recorder.spawn import Child

    class Writer(Protocol):
        """Where a recording goes: qme.store.writer.StoreWriter (a thread in this
        process) or qme.recorder.handoff.ChildWriter (a process of its own)."""

        busy: object | None  # a lock held while the store is written, or None
        timer: tuple[float, object] | None  # (when, call): call() then, once
        spooling: bool  # after the last failure, the spool takes what the store won't

        @property
        def error(self) -> str | None: ...  # the latest failure, None if none

        def add(self, task: Task) -> None: ...

        def append(self, task_id: str, stream: str, data: bytes) -> None: ...

        def update(self, task: Task) -> None: ...

        def close(self) -> str | None: ...  # the failure as one line for the user


def record(
    task: Task,
    child: Child,
    writer: Writer,
    max_output: int,
    hooks: ExecutorHooks | None = None,
) -> str | None:
    """Pass the stdio of child (task.argv, as spawn() started it) through until it
    ends, recording it through writer (which it closes); hooks.finish(task) runs
    before the final save.

    Fills in the task's outcome and returns the writer's report of a failure, if
    any (the command has run regardless).
    """
    task.term_cols, task.term_rows = _terminal_size()
    task.pid = child.pid
    task.recorder = task.recorder or liveness.token()
    writer.add(task)
    # Output times count from the task's start (its command was spawned just after).
    started = time.monotonic() - max(0.0, time.time() - task.started)
    captures = {stream: StreamCapture(max_output, started=started) for stream in STREAMS}

    def on_output(stream: str, data: bytes) -> None:
        if hooks:
            hooks.feed(stream, data)
        writer.append(task.id, stream, captures[stream].feed(data))

    try:
        outcome = Pump(child, on_output, store_busy=writer.busy, timer=writer.timer).run()
        for stream, capture in captures.items():
            writer.append(task.id, stream, capture.finish())
        task.end(outcome.returncode, outcome.signal, outcome.rusage)
        task.output_size, task.error_size = (captures[s].total for s in STREAMS)
        task.timing = {s: c.timing() for s, c in captures.items() if c.total}
        if hooks:
            hooks.finish(task)
    finally:
        if task.ended is None:  # qme itself failed: keep what it knows
            task.ended, task.status = time.time(), FAILED
        try:
            writer.update(task)
            error = writer.close()
        finally:
            release_signals(child)
    return error


def _terminal_size() -> tuple[int | None, int | None]:
    for fd in (0, 1, 2):
        if is_tty(fd):  # termios is not imported otherwise
            from qme.recorder.terminal import get_size

            size = get_size(fd)
            if size:
                return size
    return None, None
