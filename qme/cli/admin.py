"""qme admin: what the administrator of a shared store runs once."""

from __future__ import annotations

from qme.cli.env import OK

HELP = """\
Commands for the administrator of a store shared by many users.

init-postgres: on a PostgreSQL store, make each database role see and change only
its own tasks (row-level security), unless a task is shared with a role it
belongs to (qme share). Run it once, as the owner of qme's tables or a superuser,
and again after upgrading qme; it migrates the schema, turns the policies on,
and grants --grant-to (default PUBLIC: every role) what qme needs. The tables'
owner and superusers still read everything. See docs/stores.md.
"""


def add_parser(subparsers, name):
    import argparse

    parser = subparsers.add_parser(
        "admin",
        help="set up a shared store (PostgreSQL: each user sees only their own tasks)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(
        dest="action",
        metavar="ACTION",
        required=True,
        parser_class=lambda **kw: type(parser)(env=parser.env, **kw),
    )
    init = actions.add_parser(
        "init-postgres",
        help="row-level security and grants on a PostgreSQL store",
        description=HELP.split("\n\n")[1],
    )
    init.add_argument(
        "--grant-to",
        default="PUBLIC",
        metavar="ROLE",
        help="the role (a group of qme's users) allowed to use the store (default: PUBLIC)",
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    queue = make_queue(args)
    for line in queue.secure_store(args.grant_to):
        args.env.err(line)
    kind, where = queue.store_location()
    args.env.err(f"{where}: each role now sees only its own tasks and those shared with it")
    return OK
