"""qme: a live, searchable record of the commands you run.

`from qme import Queue` is the Python API; the CLI and the dashboard are thin
layers over it. Heavy modules are imported lazily so that `qme run` starts fast.
"""

__version__ = "0.1.0"
__all__ = ["Queue", "__version__"]


def __getattr__(name):
    if name == "Queue":
        from qme.api import Queue

        return Queue
    raise AttributeError(f"module 'qme' has no attribute {name!r}")
