"""qme cancel: stop a running task, as the dashboard's Cancel button does."""

from __future__ import annotations

from qme.cli.env import OK

HELP = """\
Cancel a running task: its executor's own cancel where it has one (a Slurm job:
scancel; a detached container: stop), else SIGTERM to the command (its whole
process group when it ran on a terminal). A task running on another machine is
refused: cancel it there. Without ID, on a terminal, pick the task from the recent ones;
with --last, or with no terminal, the last task.
"""


def add_parser(subparsers, name):
    import argparse

    parser = subparsers.add_parser(
        "cancel",
        help="cancel a running task (picked on a terminal, else the last task)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("id", nargs="?", metavar="ID")
    which.add_argument("--last", action="store_true", help="the last task, without asking")
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.picker import given_or_picked
    from qme.cli.render import print_json

    queue = make_queue(args)
    task = queue.get(given_or_picked(queue, args, "Cancel which task?"), streams=False)
    done, answer = queue.cancel(task)
    if args.json:
        print_json(args.env, {"id": task.id, "done": done, "result": answer})
    else:
        args.env.err(done)
    return OK
