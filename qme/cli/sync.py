"""qme sync: deliver the records waiting in the spool, or list them."""

from __future__ import annotations

from qme.cli.env import OK

HELP = """\
When the store cannot be written (a server down, a database locked or broken,
a full disk), qme keeps each record in $QME_HOME/spool/ and delivers it the next
time a qme command opens that store: a record is delivered only to the store it
was meant for. 'qme sync' delivers now to the store it is run for, and says what
is left; 'qme sync --list' shows each record with the store it waits for.
"""


def add_parser(subparsers, name):
    import argparse

    parser = subparsers.add_parser(
        "sync",
        help="deliver the records waiting in the spool",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list them (TASK-ID, STORE it waits for, COMMAND, tab-separated); deliver nothing",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON: with --list, the records (id, store, command, file); else what "
        "was delivered (delivered, waiting, left, elsewhere, store)",
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.render import print_json

    queue = make_queue(args)
    if args.list and args.json:
        records = [
            {
                "id": r.task.id if r.task else None,
                "store": r.store,
                "command": r.task.command if r.task else None,
                "file": r.path,
            }
            for r in queue.spooled()
        ]
        print_json(args.env, records)
        return OK
    if args.list:
        from qme.cli.render import safe

        for record in queue.spooled():
            task = record.task
            store = record.store or "any (qme sync)"
            command = safe(task.command) if task else safe(record.path)
            args.env.out(f"{task.id if task else '?'}\t{store}\t{command}")
        return OK
    synced = queue.sync()
    if args.json:
        print_json(
            args.env,
            {
                "delivered": synced.delivered,
                "waiting": synced.waiting,
                "left": synced.left,
                "elsewhere": synced.elsewhere,
                "store": queue.store_identity(),
            },
        )
        return OK
    args.env.err(
        f"delivered {synced.delivered} of {synced.waiting} spooled record(s) "
        f"to {queue.store_identity() or 'the store'}"
    )
    if synced.left:
        args.env.err(f"{synced.left} still wait in {synced.folder} (being written?)")
    if synced.elsewhere:
        args.env.err(f"{synced.elsewhere} wait for other stores (qme sync --list)")
    return OK
