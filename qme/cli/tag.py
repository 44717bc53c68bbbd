"""qme tag: put tags on a task, take them off, or list them."""

from __future__ import annotations

import argparse

from qme.cli.env import OK

HELP = """\
Put each TAG on TASK (--remove: take them off); without TAG, print its tags. A tag
is a word (no spaces, quotes, backslashes or commas; at most 64 characters), kept
in lower case. 'qme ls --tag TAG' lists the tasks that have one, 'qme search'
finds them by their tags, and qme get and qme ls --json show them ("tags").

TASK is an id or unique prefix, or a reference: @1 the most recent task, @2 the one
before… (in a 'qme on' session, its own commands first; @@N: of all tasks).

  qme tag @1 deploy prod
  qme tag @1 --remove prod
"""


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "tag",
        help="tag a task (or list its tags)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("id", metavar="TASK")
    parser.add_argument("tags", nargs="*", metavar="TAG")
    parser.add_argument(
        "-r", "--remove", nargs="+", default=[], metavar="TAG", help="take these tags off"
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.render import safe

    queue = make_queue(args)
    if not args.tags and not args.remove:
        task = queue.get(args.id, streams=False)
    else:
        task = queue.tag(args.id, args.tags, remove=args.remove)
    if task.tags:
        args.env.out(safe(" ".join(task.tags)))
    return OK
