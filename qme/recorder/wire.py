"""What passes between a recorder (handoff.py, the parent) and its writer child
(background.py): the two sides import this, never each other.

Operations go over one pipe as frames of `OP TASK_ID LENGTH\\n` + LENGTH bytes,
where OP is add, resume (a task another child began and died writing) or update
(the repr() of the task's fields), output or error (bytes to append), or close.
Reports come back on a second pipe: lines, each a failure (SPOOLING in front when
the spool takes what the store would not), and two markers: TOOK_FIRST (the store
took the first batch: the child then lets go of the user's stderr) and SYNCED
(the output is all in the store; one follows each finished task's final update,
so the parent knows which tasks are safe).
"""

from __future__ import annotations

import os

TOOK_FIRST, SYNCED = b"\x05\n", b"\x06\n"
SPOOLING = "\x0e"
READ_SIZE = 1 << 20

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from qme.task import Task


def frame(op: bytes, task_id: str, payload: bytes) -> bytes:
    return b"%s %s %d\n" % (op, task_id.encode(), len(payload)) + payload


def fields(task: Task) -> bytes:
    """The task's fields but its streams, as a Python literal: repr() is exact for
    these types and costs no import (the child reads it with ast.literal_eval)."""
    values = {n: getattr(task, n) for n in task.FIELDS if n not in ("output", "error", "queue")}
    return repr(values).encode()


def frames(fd: int) -> Iterator[tuple[str, str, bytes]]:
    """(op, task id, payload) of each frame, until the parent closes the pipe."""
    buffer = bytearray()
    while True:
        newline = buffer.find(b"\n")
        if newline >= 0:
            op, task_id, size = bytes(buffer[:newline]).split(b" ")
            end = newline + 1 + int(size)
            if len(buffer) >= end:
                payload = bytes(buffer[newline + 1 : end])
                del buffer[:end]
                yield op.decode(), task_id.decode(), payload
                continue
        chunk = os.read(fd, READ_SIZE)
        if not chunk:
            return  # the parent is gone: a task it left running will be found lost
        buffer += chunk
