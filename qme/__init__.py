"""qme: a live, searchable record of the commands you run.

`from qme import Queue` is the Python API; the CLI and the dashboard are thin
layers over it. Both names are imported lazily, so that `qme run` starts fast.
"""

__all__ = ["Queue", "__version__"]


def __getattr__(name):
    if name == "Queue":
        from qme.api import Queue

        return Queue
    if name == "__version__":
        from qme.version import __version__

        return __version__
    raise AttributeError(f"module 'qme' has no attribute {name!r}")
