"""qme sync: deliver the records waiting in the spool, or list them."""

from __future__ import annotations

from qme.cli.env import OK

HELP = """\
When the store cannot be written (a server down, a database locked or broken),
qme keeps each record in $QME_HOME/spool/ and delivers it the next time a qme
command opens the store. 'qme sync' delivers now, and says what is left.
"""


def add_parser(subparsers, name):
    import argparse

    parser = subparsers.add_parser(
        "sync",
        help="deliver the records waiting in the spool",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--list", action="store_true", help="list them; deliver nothing")
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    queue = make_queue(args)
    if args.list:
        for path, task in queue.spooled():
            args.env.out(f"{task.id if task else '?'}\t{task.command if task else path}")
        return OK
    synced = queue.sync()
    args.env.err(f"delivered {synced.delivered} of {synced.waiting} spooled record(s)")
    if synced.left:
        args.env.err(f"{synced.left} still wait in {synced.folder} (being written?)")
    return OK
