"""qme export | import: move a whole history between stores (see qme/transfer.py)."""

from __future__ import annotations

import os

from qme.cli.env import OK
from qme.cli.numbers import at_least
from qme.cli.timespec import point_in_time

KINDS = ("jsonl", "json", "sh", "md", "ipynb", "cast")
HELP = {
    "export": "write tasks to a file or stdout: JSON Lines with everything, or as a script, "
    "Markdown, a notebook or an asciicast recording",
    "import": "add the tasks of an export to the store",
}
DESCRIPTION = {
    "export": "Write every task (or those of EXECUTOR, of a session, started in a time "
    "range), oldest first, with all their fields and output, to FILE or stdout: JSON Lines "
    "by default, one JSON document with --json. To move a history between stores: "
    "'qme --database sqlite export | qme --database postgresql import'. With --as sh, md, "
    "ipynb or cast, write the TASKs named (else those the filters choose, else the last "
    "task) as a script that runs them again, a Markdown log, a Jupyter notebook or an "
    "asciicast v3 recording, to -o FILE or stdout. With -o, the arguments are TASKs in "
    "every format; without it, JSON Lines' one argument is FILE, as it always was.",
    "import": "Add the tasks of an export (either format) from FILE or stdin to the "
    "store, as they were: same ids, times, output. Tasks the store has already are "
    "skipped (so an interrupted import can be run again), or replaced with --replace.",
}


def add_parser(subparsers, name):
    parser = subparsers.add_parser(name, help=HELP[name], description=DESCRIPTION[name])
    if name == "export":
        parser.add_argument(
            "targets",
            nargs="*",
            metavar="TASK",
            help="tasks to export (ids, prefixes, @N); for JSON Lines without -o: FILE",
        )
        parser.add_argument(
            "--as",
            dest="kind",
            choices=KINDS,
            default=None,
            help="jsonl (default: everything, for qme import), json (one document), sh (a "
            "script), md (Markdown), ipynb (a notebook), cast (asciicast v3)",
        )
        parser.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
        parser.add_argument("--executor", help="only tasks of this executor")
        parser.add_argument(
            "--session",
            nargs="?",
            const="",
            metavar="ID",
            help="only the commands of this 'qme on' session (without ID: the current one)",
        )
        parser.add_argument("--since", type=point_in_time, metavar="TIME", help="started after")
        parser.add_argument("--until", type=point_in_time, metavar="TIME", help="started before")
        parser.add_argument("--json", action="store_true", help="one JSON document (--as json)")
        parser.add_argument(
            "--max-wait",
            type=at_least(0),
            metavar="SECONDS",
            help="cast: pauses a player shortens to this (its idle_time_limit)",
        )
        return parser
    parser.add_argument("file", nargs="?", default="-", metavar="FILE", help="default: -")
    if name == "import":
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
        return _export(queue, args)
    if args.from_queueme is not None:
        done = queue.import_queueme(args.from_queueme or None, replace=args.replace)
    else:
        with _open(args.file, "r", args.env.stdin) as source:
            done = queue.import_from(source, replace=args.replace)
    skipped = f" ({_tasks(done.skipped)} already there, skipped)" if done.skipped else ""
    args.env.err(f"qme: imported {_tasks(done.added)}{skipped}")
    return OK


def _export(queue, args) -> int:
    from qme.errors import QmeError

    kind = args.kind or ("json" if args.json else "jsonl")
    session = args.session
    if session == "":
        session = os.environ.get("QME_SESSION")
        if not session:
            raise QmeError("not in a 'qme on' session: name one (--session ID)")
    filters = {"executor": args.executor, "session": session}
    filters.update(since=args.since, until=args.until)
    tasks, path = args.targets, args.output or "-"
    if kind in ("jsonl", "json"):
        if args.output is None:
            if len(tasks) > 1:
                raise QmeError("JSON Lines without -o takes one FILE: name TASKs with -o FILE")
            tasks, path = [], (tasks[0] if tasks else "-")
        with _open(path, "w", args.env.stdout) as out:
            count = queue.export(out, as_json=kind == "json", tasks=tasks, **filters)
    else:
        with _open_binary(path, args.env) as out:
            count = queue.export_as(out, kind, tasks, max_wait=args.max_wait, **filters)
        if kind == "sh" and path != "-":
            os.chmod(path, os.stat(path).st_mode | 0o100)  # a script its owner can run
    args.env.err(f"qme: exported {_tasks(count)}")
    return OK


def _open_binary(path: str, env):
    if path == "-":
        return env.binary_stdout()
    from qme.errors import QmeError

    try:
        return open(path, "wb")
    except OSError as exc:
        raise QmeError(f"cannot open {path}: {exc.strerror}") from None


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
