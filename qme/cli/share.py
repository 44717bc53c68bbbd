"""qme share: let a group read one of your tasks (a PostgreSQL store shared by many)."""

from __future__ import annotations

from qme.cli.env import OK

HELP = """\
On a PostgreSQL store set up with 'qme admin init-postgres', each user sees only
their own tasks. 'qme share TASK GROUP' lets the members of the database role
GROUP (a group role, or one user's role) read the task, its output included;
only you change or delete it. 'qme share TASK --remove GROUP' takes that back;
'qme share TASK' lists the roles it is shared with. MySQL/MariaDB cannot keep
users apart, so there is nothing to share on them.
"""


def add_parser(subparsers, name):
    import argparse

    parser = subparsers.add_parser(
        "share",
        help="let a group read one of your tasks (PostgreSQL)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("id", metavar="TASK", help="the task's id or a unique prefix")
    parser.add_argument("group", nargs="?", metavar="GROUP", help="a database role")
    parser.add_argument("--remove", metavar="GROUP", help="share it no longer with GROUP")
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.errors import QmeError
    from qme.text import printable

    if args.group and args.remove:
        raise QmeError("give a GROUP to share with or --remove GROUP, not both")
    queue = make_queue(args)
    group = args.group or args.remove
    if group is None:
        for role in queue.shares(args.id):
            args.env.out(printable(role))
        return OK
    changed = queue.share(args.id, group, remove=bool(args.remove))
    task = queue.get(args.id, streams=False)
    if args.remove:
        said = "no longer shared with" if changed else "was not shared with"
    else:
        said = "shared with" if changed else "was already shared with"
    args.env.err(f"task {task.short_id} {said} {printable(group)}")
    return OK
