"""QueueMe's import path: `from qme.main import Queue` keeps working."""

from qme.api import Queue

__all__ = ["Queue"]
