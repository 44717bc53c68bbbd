"""qme on | off | status, when the shell integration is not loaded in this shell.

Where it is loaded (qme init), the shell function `qme` handles these three
itself, because recording is a setting of that very shell; this is the
fallback: `qme on` starts a recorded shell session, the others explain.
"""

from __future__ import annotations

import os

from qme.cli.env import ERROR, OK

HELP = {
    "on": "record every command typed in this shell (starts a qme session)",
    "off": "pause recording (inside a qme session)",
    "status": "say whether this shell's commands are being recorded",
}


def add_parser(subparsers, name):
    parser = subparsers.add_parser(name, help=HELP[name], description=HELP[name] + ".")
    if name == "status":
        parser.add_argument(
            "--json", action="store_true", help='print {"recording": …, "session": …} on stdout'
        )
    return parser


def run(args) -> int:
    session = os.environ.get("QME_SESSION")
    if args.command == "on":
        if session:
            args.env.err(
                "qme: already in a qme session; load the shell integration "
                "(qme init) to pause and resume it"
            )
            return ERROR
        from qme.cli.session import run as run_session

        args.shell = None
        return run_session(args)
    if getattr(args, "json", False):
        import json

        # The hooks pass on whether they record ("SHELL 1"); without them loaded, a
        # session records whatever is typed.
        hooks = os.environ.get("QME_HOOKS", "").split()
        recording = bool(session) and hooks[1:2] != ["0"]
        args.env.out(json.dumps({"recording": recording, "session": session or None}))
        return OK
    if session:
        args.env.err(
            f"qme: this shell is in qme session {session}, but without the shell "
            "integration loaded (qme init) it cannot be paused from here"
        )
    else:
        args.env.err("qme: not recording: this shell is not in a qme session ('qme on' starts one)")
    return OK if args.command == "status" else ERROR
