from __future__ import annotations

from qme.executors.base import Executor


class ShellExecutor(Executor):
    """Any command no other executor claims: runs it, records output and exit."""

    name = "shell"
