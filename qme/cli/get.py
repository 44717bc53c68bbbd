"""qme get: show one task as JSON, or print one of its captured streams."""

from __future__ import annotations

import sys


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "get",
        help="show a task (the last one by default) as JSON",
        description="Show a task as JSON. ID is a task id, or any unique prefix of the id "
        "or of its uuid part (as 'qme ls' shows it); without ID, the last task started.",
    )
    parser.add_argument("id", nargs="?", metavar="ID")
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
    from qme.cli.render import print_json

    task = make_queue(args).get(args.id)
    if args.output or args.error:
        sys.stdout.flush()
        sys.stdout.buffer.write(task.output if args.output else task.error)
        sys.stdout.buffer.flush()
        return 0
    print_json(task.to_dict())
    return 0
