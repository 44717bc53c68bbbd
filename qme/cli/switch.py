"""qme on | off | status, when the shell integration is not loaded in this shell.

Where it is loaded (qme init), the shell function `qme` handles these three
itself, because recording is a setting of that very shell; this is the
fallback: `qme on` starts a recorded shell session, the others explain.
"""

from __future__ import annotations

import os
import sys

HELP = {
    "on": "record every command typed in this shell (starts a qme session)",
    "off": "pause recording (inside a qme session)",
    "status": "say whether this shell's commands are being recorded",
}


def add_parser(subparsers, name):
    return subparsers.add_parser(name, help=HELP[name], description=HELP[name] + ".")


def run(args) -> int:
    session = os.environ.get("QME_SESSION")
    if args.command == "on":
        if session:
            print(
                "qme: already in a qme session; load the shell integration "
                "(qme init) to pause and resume it",
                file=sys.stderr,
            )
            return 1
        from qme.cli.session import run as run_session

        args.shell = None
        return run_session(args)
    if session:
        print(
            f"qme: this shell is in qme session {session}, but without the shell "
            "integration loaded (qme init) it cannot be paused from here",
            file=sys.stderr,
        )
    else:
        print(
            "qme: not recording: this shell is not in a qme session ('qme on' starts one)",
            file=sys.stderr,
        )
    return 0 if args.command == "status" else 1
