"""qme get: show one task as JSON, or print one of its captured streams."""

from __future__ import annotations

from qme.cli.env import OK


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "get",
        help="show a task as JSON (picked on a terminal, else the last one)",
        description="Show a task as JSON. ID is a task id, or any unique prefix of the id "
        "or of its uuid part (as 'qme ls' shows it), or a reference: @1 the most recent "
        "task, @2 the one before (in a 'qme on' session, its own commands first; @@N: of "
        'all tasks). Its note is "message", its tags "tags". Without ID, on a '
        "terminal, pick the task from the recent ones; with --last, or when stdin or stdout "
        "is not a terminal, the last task started.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("id", nargs="?", metavar="ID")
    which.add_argument("--last", action="store_true", help="the last task, without asking")
    stream = parser.add_mutually_exclusive_group()
    stream.add_argument(
        "--output",
        action="store_true",
        help="print the captured stdout as raw bytes, escape sequences included (for "
        "piping: the JSON shows it safely)",
    )
    stream.add_argument(
        "--error",
        action="store_true",
        help="print the captured stderr as raw bytes, escape sequences included (for piping)",
    )
    parser.add_argument(
        "--format",
        choices=["qme", "queueme"],
        default="qme",
        help="queueme: QueueMe 0.0.14's nested JSON ({executor, uid, command, data})",
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue, queueme
    from qme.cli.picker import given_or_picked
    from qme.cli.render import print_json

    queue = make_queue(args)
    queueme.hint(args.env, queue)
    task = queue.get(given_or_picked(queue, args, "Show which task?"))
    if args.output or args.error:
        with args.env.binary_stdout() as out:
            out.write(task.output if args.output else task.error)
        return OK
    print_json(args.env, queue.queueme_record(task) if args.format == "queueme" else task.to_dict())
    return OK
