"""qme shell: an interactive Python session with a `queue` ready."""

from __future__ import annotations

import os

from qme.cli.env import OK
from qme.errors import QmeError

SHELLS = ("ipython", "bpython", "python")


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "shell",
        help="open Python with a Queue ready as `queue`",
        description="Open an interactive Python session with `queue` (a qme.Queue) ready. "
        "Uses IPython, else bpython, else the plain interpreter; $QME_SHELL or "
        "--interpreter picks one.",
    )
    parser.add_argument("--interpreter", choices=SHELLS, help="which one to use")
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    queue = make_queue(args)
    namespace = {"queue": queue}
    wanted = args.interpreter or os.environ.get("QME_SHELL", "").lower() or None
    if wanted and wanted not in SHELLS:
        raise QmeError(f"QME_SHELL must be one of {', '.join(SHELLS)}, not '{wanted}'")
    banner = f"qme: `queue` is ready (store: {queue.database} in {queue.settings.home})"
    for name in [wanted] if wanted else SHELLS:
        if _start(name, namespace, banner):
            return OK
    raise QmeError(f"{wanted} is not installed")


def _start(name: str, namespace: dict, banner: str) -> bool:
    if name == "ipython":
        try:
            import IPython
        except ImportError:
            return False
        IPython.start_ipython(argv=[], user_ns=namespace, display_banner=False)
        return True
    if name == "bpython":
        try:
            import bpython
        except ImportError:
            return False
        bpython.embed(locals_=namespace, banner=banner)
        return True
    import code

    code.interact(banner=banner, local=namespace, exitmsg="")
    return True
