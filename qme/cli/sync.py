"""qme sync: deliver the records waiting in the spool, or list them."""

from __future__ import annotations

import sys

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
    from qme import pending
    from qme.config import Settings
    from qme.errors import QmeError
    from qme.store import open_store, spool

    settings = Settings.load(args.config_dir, database=args.database)
    pending.wait(settings.home)  # records `qme run` is still writing (or spooling)
    if args.list:
        for path in spool.pending(settings.home):
            task = spool.spooled_task(path)
            print(f"{task.id if task else '?'}\t{task.command if task else path}")
        return 0
    waiting = len(spool.pending(settings.home))
    try:
        with open_store(settings) as store:
            delivered = spool.deliver(settings.home, store)
    except Exception as exc:  # noqa: BLE001 - the store's own errors, whatever the backend
        left = len(spool.pending(settings.home))
        raise QmeError(
            f"the store refused the spooled records ({exc}); "
            f"{left} wait in {spool.folder(settings.home)}"
        ) from None
    left = len(spool.pending(settings.home))
    print(f"delivered {delivered} of {waiting} spooled record(s)", file=sys.stderr)
    if left:
        print(
            f"{left} still wait in {spool.folder(settings.home)} (being written?)", file=sys.stderr
        )
    return 0
