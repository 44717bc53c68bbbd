"""qme run: run a command exactly as if typed, and record it."""

from __future__ import annotations

import argparse
import sys

HELP = """\
Run COMMAND as if typed, recording its output, exit status and metadata.
The task exists while the command runs (see it with 'qme ls' / 'qme get').
qme exits with the command's exit code (128+N if it died of signal N) and
prints nothing of its own on stdout.

Quote a shell line to run it through $SHELL: qme run "make 2>&1 | tee log"
Options for qme go before COMMAND; everything after it is the command's own:
  qme run ls --help      (runs 'ls --help')
  qme run -- -weird-name (a command whose name starts with a dash)
"""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "run", help="run a command and record it", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-m", "--message", dest="run_message", help="annotate the task")
    parser.add_argument("--executor", metavar="NAME", help="use this executor (default: by command)")
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="print '[TASK-ID][returncode: N]' on stderr when the command ends",
    )
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND ...")
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        from qme.errors import QmeError

        raise QmeError("no command given (usage: qme run COMMAND [ARGS…])")
    queue = make_queue(args)
    task = queue.run(cmd, message=args.run_message or args.message, executor=args.executor)
    if args.verbose:
        print(f"[{task.id}][returncode: {task.returncode}]", file=sys.stderr)
    return task.returncode
