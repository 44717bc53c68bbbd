"""qme ls: list tasks as a table (newest last) or as JSON."""

from __future__ import annotations

import os

from qme.cli.env import OK
from qme.cli.numbers import at_least
from qme.cli.template import HELP as TEMPLATE_HELP
from qme.cli.timespec import point_in_time
from qme.errors import QmeError
from qme.task import STATUSES

DEFAULT_LIMIT = 30

COUNT = at_least(0, int)  # --limit: 0 or more (0: all)


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "ls",
        help="list tasks",
        description="List tasks, oldest first so the newest is nearest your prompt "
        f"(--reverse: newest first). Shows the last {DEFAULT_LIMIT} unless --limit says "
        "otherwise (--limit 0: all).",
    )
    parser.add_argument("executor", nargs="?", help="only tasks of this executor")
    parser.add_argument("-s", "--status", choices=STATUSES, help="only tasks with this status")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cwd", metavar="DIR", help="only tasks run in this directory")
    where.add_argument("--here", action="store_true", help="only tasks run in this directory")
    parser.add_argument(
        "--since",
        type=point_in_time,
        metavar="TIME",
        help="started after TIME (2h, 3d, 2026-11-01)",
    )
    parser.add_argument("--until", type=point_in_time, metavar="TIME", help="started before TIME")
    parser.add_argument(
        "--session",
        nargs="?",
        const="current",
        metavar="ID",
        help="only commands typed in a shell session (qme on); without ID, this shell's",
    )
    parser.add_argument("--host", help="only tasks recorded on this machine (a shared store)")
    parser.add_argument("--user", help="only tasks recorded by this user (a shared store)")
    parser.add_argument("-t", "--tag", help="only tasks with this tag (qme tag)")
    parser.add_argument(
        "-n", "--limit", type=COUNT, metavar="N", help=f"how many (default {DEFAULT_LIMIT}; 0: all)"
    )
    parser.add_argument("-r", "--reverse", action="store_true", help="newest first")
    parser.add_argument("--json", action="store_true", help="print JSON (newest first)")
    parser.add_argument(
        "--format",
        default="table",
        metavar="FORMAT",
        help="table (the default); queueme: QueueMe 0.0.14's 'N  <taskid>\\t<command>', every "
        f"task, oldest first; or {TEMPLATE_HELP}",
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.render import STATUS_COLORS, age, duration, home_path, one_line, print_json, table
    from qme.cli.template import chosen

    template = chosen(args.format, ("table", "queueme"))
    cwd = os.getcwd() if args.here else (os.path.abspath(args.cwd) if args.cwd else None)
    session = args.session
    if session == "current":
        session = os.environ.get("QME_SESSION")
        if not session:
            raise QmeError("this shell is not in a qme session ('qme on' starts one)")
    from qme.cli import queueme

    queue = make_queue(args)
    queueme.hint(args.env, queue)
    tasks = queue.list(
        args.executor,
        status=args.status,
        cwd=cwd,
        since=args.since,
        until=args.until,
        limit=_limit(args),
        session=session,
        host=args.host,
        user=args.user,
        tag=args.tag,
    )
    if args.json:
        print_json(args.env, [t.to_dict() for t in tasks])
        return OK
    if not args.reverse:
        tasks.reverse()
    if args.format == "queueme":
        queueme.listing(args.env, tasks)
        return OK
    if template is not None:
        from qme.cli.template import render

        for task in tasks:
            args.env.out(render(template, task))
        return OK
    rows = [
        [
            t.short_id,
            _status(t),
            "" if t.returncode is None else str(t.returncode),
            duration(t.duration),
            age(t.started),
            home_path(t.cwd),
            one_line(t.command),
        ]
        for t in tasks
    ]
    if rows:
        headers = ["ID", "STATUS", "EXIT", "TIME", "STARTED", "CWD", "COMMAND"]
        table(args.env, headers, rows, [STATUS_COLORS.get(t.status) for t in tasks])
    else:  # on stderr: a script reading stdout gets no line that is not a task
        filtered = any(
            [args.executor, args.status, cwd, args.since, args.until, session, args.host, args.user]
        )
        args.env.err("qme: no tasks match" if filtered else "qme: no tasks yet")
    return OK


def _status(task) -> str:
    """The status, with why a pending task waits when its executor says (a Slurm
    job's reason: 'pending (Resources)')."""
    reason = task.data.get("reason") if task.status == "pending" else None
    return f"{task.status} ({reason})" if reason else task.status


def _limit(args) -> int | None:
    """-n N (0: all); by default the last DEFAULT_LIMIT, or all in QueueMe's format."""
    if args.limit is None:
        return None if args.format == "queueme" else DEFAULT_LIMIT
    return args.limit or None
