"""qme config: show the effective configuration, or change it."""

from __future__ import annotations

import argparse

from qme.cli.env import OK
from qme.errors import ConfigError

HELP = """\
Without options: show every setting, its value and where it came from
(command line > environment > config file > default).

  qme config --database sqlite              # or filesystem, sqlite://FILE
  qme config --database postgresql          # or mysql+pymysql; the rest of the
                                            # URL from QME_DATABASE_STRING
  qme config --set max_output 16M           # a general setting
  qme config --set slurm sacct_format ...   # an executor's setting ([executor.slurm])
  qme config --unset max_output
"""


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "config",
        help="show or change settings",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database", dest="set_database", metavar="DB", help="set the store")
    parser.add_argument("--set", nargs="+", metavar="ARG", help="KEY VALUE, or EXECUTOR KEY VALUE")
    parser.add_argument("--unset", nargs="+", metavar="ARG", help="KEY, or EXECUTOR KEY")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    queue = make_queue(args)
    changes = []  # (key, value, executor)
    if args.set_database:
        changes.append(("database", args.set_database, None))
    if args.set:
        if len(args.set) not in (2, 3):
            raise ConfigError("--set takes KEY VALUE or EXECUTOR KEY VALUE")
        changes.append((args.set[-2], args.set[-1], args.set[0] if len(args.set) == 3 else None))
    if args.unset:
        if len(args.unset) not in (1, 2):
            raise ConfigError("--unset takes KEY or EXECUTOR KEY")
        changes.append((args.unset[-1], None, args.unset[0] if len(args.unset) == 2 else None))
    for key, value, executor in changes:
        shown = queue.set_setting(key, value, executor)
        where = f" [executor.{executor}]" if executor else ""
        done = f"Saved{where} {key} = {shown}" if value is not None else f"Removed{where} {key}"
        args.env.out(f"{done} in {queue.settings.config_file}")
    if changes:
        return OK
    return _show(args.env, queue.configuration(), args.json)


def _show(env, configuration: dict, as_json: bool) -> int:
    from qme.cli.render import print_json, table

    if as_json:
        print_json(env, configuration)
        return OK
    store = configuration["store"]
    env.out(f"home:   {configuration['home']}")
    env.out(f"store:  {store['kind']} at {store['path']}")
    env.out()
    rows = [[key, s["value"], s["source"]] for key, s in configuration["settings"].items()]
    table(env, ["SETTING", "VALUE", "FROM"], rows)
    return OK
