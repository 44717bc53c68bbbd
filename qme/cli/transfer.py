"""qme export | import: move a whole history between stores (see qme/transfer.py)."""

from __future__ import annotations

from qme.cli.env import OK
from qme.cli.timespec import point_in_time

HELP = {
    "export": "write tasks, with their output, to a file (JSON Lines) or stdout",
    "import": "add the tasks of an export to the store",
}
DESCRIPTION = {
    "export": "Write every task (or those of EXECUTOR, started in a time range), oldest "
    "first, with all their fields and output, to FILE or stdout: JSON Lines by default, "
    "one JSON document with --json. To move a history between stores: "
    "'qme --database sqlite export | qme --database postgresql import'.",
    "import": "Add the tasks of an export (either format) from FILE or stdin to the "
    "store, as they were: same ids, times, output. Tasks the store has already are "
    "skipped (so an interrupted import can be run again), or replaced with --replace.",
}


def add_parser(subparsers, name):
    parser = subparsers.add_parser(name, help=HELP[name], description=DESCRIPTION[name])
    parser.add_argument("file", nargs="?", default="-", metavar="FILE", help="default: -")
    if name == "export":
        parser.add_argument("--executor", help="only tasks of this executor")
        parser.add_argument("--since", type=point_in_time, metavar="TIME", help="started after")
        parser.add_argument("--until", type=point_in_time, metavar="TIME", help="started before")
        parser.add_argument("--json", action="store_true", help="one JSON document")
    else:
        parser.add_argument(
            "--replace", action="store_true", help="replace tasks the store has already"
        )
        parser.add_argument(
            "--from-queueme",
            nargs="?",
            const="",
            metavar="HOME",
            help="instead of an export: the tasks of a QueueMe 0.0.14 home (default: this "
            "one), from its files and its SQLite file, which are only read",
        )
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    queue = make_queue(args)
    if args.command == "export":
        with _open(args.file, "w", args.env.stdout) as out:
            count = queue.export(
                out, args.executor, since=args.since, until=args.until, as_json=args.json
            )
        args.env.err(f"qme: exported {_tasks(count)}")
        return OK
    if args.from_queueme is not None:
        done = queue.import_queueme(args.from_queueme or None, replace=args.replace)
    else:
        with _open(args.file, "r", args.env.stdin) as source:
            done = queue.import_from(source, replace=args.replace)
    skipped = f" ({_tasks(done.skipped)} already there, skipped)" if done.skipped else ""
    args.env.err(f"qme: imported {_tasks(done.added)}{skipped}")
    return OK


def _tasks(count: int) -> str:
    return f"{count} task{'' if count == 1 else 's'}"


def _open(path: str, mode: str, standard):
    """The file, or for '-' the standard stream given (left open when done)."""
    from contextlib import nullcontext

    if path == "-":
        return nullcontext(standard)
    from qme.errors import QmeError

    try:
        return open(path, mode, encoding="utf-8")
    except OSError as exc:
        raise QmeError(f"cannot open {path}: {exc.strerror}") from None
