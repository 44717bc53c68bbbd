"""Recording a command that spawn() started: its stdio passed through by the pump,
its output and outcome handed to a writer."""

from __future__ import annotations

import time

from qme import liveness
from qme.recorder.capture import StreamCapture
from qme.recorder.pump import CANCEL_SIGNALS, Exit, Pump
from qme.recorder.spawn import is_tty
from qme.task import CANCELLED, COMPLETE, FAILED, STREAMS, Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.recorder.handoff import ChildWriter
    from qme.recorder.hooks import ExecutorHooks
    from qme.recorder.spawn import Child
    from qme.store.writer import StoreWriter


def record(
    task: Task,
    child: Child,
    writer: StoreWriter | ChildWriter,
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
    captures = {stream: StreamCapture(max_output) for stream in STREAMS}

    def on_output(stream: str, data: bytes) -> None:
        if hooks:
            hooks.feed(stream, data)
        writer.append(task.id, stream, captures[stream].feed(data))

    try:
        pump = Pump(
            child,
            on_output,
            store_busy=getattr(writer, "busy", None),
            timer=getattr(writer, "timer", None),  # the writer child starts then
        )
        outcome = pump.run()
        for stream, capture in captures.items():
            writer.append(task.id, stream, capture.finish())
        _fill_outcome(task, outcome, captures)
        if hooks:
            hooks.finish(task)
    finally:
        if task.ended is None:  # qme itself failed: keep what it knows
            task.ended, task.status = time.time(), FAILED
        writer.update(task)
        error = writer.close()
    return error


def _terminal_size() -> tuple[int | None, int | None]:
    for fd in (0, 1, 2):
        if is_tty(fd):  # termios is not imported otherwise
            from qme.recorder.terminal import get_size

            size = get_size(fd)
            if size:
                return size
    return None, None


def _fill_outcome(task: Task, outcome: Exit, captures: dict[str, StreamCapture]) -> None:
    task.ended = time.time()
    task.returncode, task.signal = outcome.returncode, outcome.signal
    if outcome.signal in CANCEL_SIGNALS or outcome.returncode == 130:
        task.status = CANCELLED
    else:
        task.status = COMPLETE if outcome.returncode == 0 else FAILED
    if outcome.rusage is not None:
        task.max_rss = outcome.rusage.ru_maxrss * 1024  # Linux reports KiB
        task.cpu_user = round(outcome.rusage.ru_utime, 6)
        task.cpu_system = round(outcome.rusage.ru_stime, 6)
    task.output_size, task.error_size = (captures[s].total for s in STREAMS)
