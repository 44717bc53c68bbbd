"""qme config: show the effective configuration, or change it."""

from __future__ import annotations

import argparse

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
    from qme import console
    from qme.config import GENERAL_SECTION, OPTIONS, Settings
    from qme.store.servers import password, redact

    settings = Settings.load(args.config_dir)
    changes = []
    if args.set_database:
        changes.append((GENERAL_SECTION, "database", args.set_database))
    if args.set:
        if len(args.set) not in (2, 3):
            raise ConfigError("--set takes KEY VALUE or EXECUTOR KEY VALUE")
        changes.append(_target(args.set[:-1], settings) + (args.set[-1],))
    if args.unset:
        if len(args.unset) not in (1, 2):
            raise ConfigError("--unset takes KEY or EXECUTOR KEY")
        changes.append(_target(args.unset, settings) + (None,))
    for section, key, value in changes:
        _check(section, key, value, settings)
        settings.save(section, key, value)
        if value is not None and password(value):
            console.warn(
                f"{settings.config_file} now holds a password (readable by you only); "
                "QME_DATABASE_STRING keeps it out of files"
            )
        shown = f"{key} = {redact(value)}" if value is not None else f"{key} removed"
        where = "" if section == GENERAL_SECTION else f" [{section}]"
        print(f"Saved{where} {shown} in {settings.config_file}")
    if changes:
        return 0
    return _show(settings, OPTIONS, args.json)


def _target(words: list[str], settings) -> tuple[str, str]:
    from qme import executors
    from qme.config import EXECUTOR_SECTION_PREFIX, GENERAL_SECTION, OPTIONS

    if len(words) == 1:
        if words[0] not in OPTIONS:
            known = ", ".join(OPTIONS)
            raise ConfigError(f"unknown setting '{words[0]}' (settings: {known})")
        return GENERAL_SECTION, words[0]
    executor, key = words
    cls = executors.executor_class(executor)
    if key not in cls.settings:
        known = ", ".join(cls.settings) or "none"
        raise ConfigError(f"executor {executor} has no setting '{key}' (its settings: {known})")
    return EXECUTOR_SECTION_PREFIX + executor, key


def _check(section: str, key: str, value: str | None, settings) -> None:
    """Refuse values that would break later commands."""
    from qme.config import GENERAL_SECTION, Settings, parse_size
    from qme.store import describe
    from qme.store.servers import is_server

    if value is None or section != GENERAL_SECTION:
        return
    if key == "database" and is_server(value) and "://" not in value:
        return  # the rest of its URL may come from QME_DATABASE_STRING later
    if key == "database":
        describe(Settings(home=settings.home, overrides={"database": value}))
    elif key == "max_output":
        parse_size(value)
    elif key == "busy_timeout":
        _ = Settings(home=settings.home, overrides={"busy_timeout": value}).busy_timeout
    elif key == "log_level":
        _ = Settings(home=settings.home, overrides={"log_level": value}).log_level  # validates


def _show(settings, options, as_json: bool) -> int:
    from qme.cli.render import print_json, table
    from qme.store import describe
    from qme.store.servers import redact

    rows = [
        [key, redact(value), source] for key in options for value, source in [settings.lookup(key)]
    ]
    kind, path = describe(settings)
    executor_rows = [
        [f"{name}.{key}", value, f"config file ({settings.config_file})"]
        for name, items in settings.executor_sections().items()
        for key, value in items.items()
    ]
    if as_json:
        print_json(
            {
                "home": str(settings.home),
                "config_file": str(settings.config_file),
                "store": {"kind": kind, "path": str(path)},
                "settings": {r[0]: {"value": r[1], "source": r[2]} for r in rows + executor_rows},
            }
        )
        return 0
    print(f"home:   {settings.home}")
    print(f"store:  {kind} at {path}")
    print()
    table(["SETTING", "VALUE", "FROM"], rows + executor_rows)
    return 0
