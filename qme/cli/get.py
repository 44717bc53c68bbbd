"""qme get: show one task as JSON, or print one of its captured streams."""

from __future__ import annotations

import sys


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "get",
        help="show a task as JSON (picked on a terminal, else the last one)",
        description="Show a task as JSON. ID is a task id, or any unique prefix of the id "
        "or of its uuid part (as 'qme ls' shows it). Without ID, on a terminal, pick the "
        "task from the recent ones; with --last, or when stdin or stdout is not a "
        "terminal, the last task started.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("id", nargs="?", metavar="ID")
    which.add_argument("--last", action="store_true", help="the last task, without asking")
    stream = parser.add_mutually_exclusive_group()
    stream.add_argument(
        "--output", action="store_true", help="print the captured stdout, byte for byte"
    )
    stream.add_argument(
        "--error", action="store_true", help="print the captured stderr, byte for byte"
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.picker import given_or_picked
    from qme.cli.render import print_json

    queue = make_queue(args)
    task = queue.get(given_or_picked(queue, args, "Show which task?"))
    if args.output or args.error:
        sys.stdout.flush()
        sys.stdout.buffer.write(task.output if args.output else task.error)
        sys.stdout.buffer.flush()
        return 0
    print_json(task.to_dict())
    return 0
