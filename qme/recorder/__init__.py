"""Running a command exactly as typed while recording it (see DESIGN.md, "Recorder")."""

from __future__ import annotations

import time
from collections.abc import Callable

from qme import liveness
from qme.recorder.capture import StreamCapture
from qme.recorder.live import LiveRecord
from qme.recorder.pump import CANCEL_SIGNALS, Exit, Pump
from qme.recorder.spawn import spawn
from qme.recorder.terminal import get_size
from qme.store.base import Store
from qme.task import CANCELLED, COMPLETE, FAILED, STREAMS, Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.executors.base import Executor

EXECUTOR_READS = 64 * 1024  # how much of each stream an executor's finish() may read


def record(
    task: Task,
    open_store: Callable[[], Store],
    max_output: int,
    executor: Executor | None = None,
    chdir: str | None = None,
) -> str | None:
    """Run task.argv (in chdir, else where qme runs), passing its stdio through and
    recording it; executor.finish(task) runs before the final save.

    Fills in the task's outcome and returns the recording error, if any (the
    command has run regardless).
    """
    task.term_cols, task.term_rows = _terminal_size()
    child = spawn(task.argv, chdir)
    task.pid = child.pid
    task.recorder = liveness.token()
    live = LiveRecord(open_store, task)
    captures = {stream: StreamCapture(max_output) for stream in STREAMS}
    starts = {s: bytearray() for s in STREAMS} if executor and executor.reads_output else None

    def on_output(stream: str, data: bytes) -> None:
        if starts is not None and len(starts[stream]) < EXECUTOR_READS:
            starts[stream] += data[: EXECUTOR_READS - len(starts[stream])]
        live.append(stream, captures[stream].feed(data))

    try:
        outcome = Pump(child, on_output, store_busy=live.busy).run()
        for stream, capture in captures.items():
            live.append(stream, capture.finish())
        _fill_outcome(task, outcome, captures)
        if executor:
            if starts is not None:
                task.output, task.error = (bytes(starts[s]) for s in STREAMS)
            executor.finish(task)
            task.output = task.error = None  # streams are loaded only by reading the store
    finally:
        if task.ended is None:  # qme itself failed: keep what it knows
            task.ended, task.status = time.time(), FAILED
        error = live.finish(task)
    return error


def _terminal_size() -> tuple[int | None, int | None]:
    for fd in (0, 1, 2):
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
