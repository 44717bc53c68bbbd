"""An executor's part in recording a task: prepare() before it is stored, finish()
(with the start of what the command printed, when it asks for it) before the
final save."""

from __future__ import annotations

from qme.task import STREAMS, Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.executors.base import Executor

EXECUTOR_READS = 64 * 1024  # how much of each stream an executor's finish() may read


class ExecutorHooks:
    def __init__(self, executor: Executor):
        self.executor = executor
        self.starts = {s: bytearray() for s in STREAMS} if executor.reads_output else None

    def prepare(self, task: Task) -> None:
        self.executor.prepare(task)

    def feed(self, stream: str, data: bytes) -> None:
        if self.starts is not None and len(self.starts[stream]) < EXECUTOR_READS:
            self.starts[stream] += data[: EXECUTOR_READS - len(self.starts[stream])]

    def finish(self, task: Task) -> None:
        if self.starts is not None:
            task.output, task.error = (bytes(self.starts[s]) for s in STREAMS)
        try:
            self.executor.finish(task)
        finally:
            task.output = task.error = None  # streams are loaded only by reading the store
