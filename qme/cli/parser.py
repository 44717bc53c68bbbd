"""The argparse parser: global options plus one subparser per command module."""

from __future__ import annotations

import argparse
import importlib
import sys

from qme import __version__, console

EXIT_USAGE = 2
# command -> the module in qme.cli that defines it
COMMANDS = {
    name.replace("_", "-"): name
    for name in [
        "run",
        "get",
        "ls",
        "search",
        "rerun",
        "cancel",
        "clear",
        "config",
        "generate_key",
        "shell",
        "init",
        "session",
        "start",
        "sync",
    ]
}
COMMANDS.update({"on": "switch", "off": "switch", "status": "switch"})
COMMANDS["exec"] = "exec"
COMMANDS.update({"export": "transfer", "import": "transfer"})


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"qme: error: {message}\n")


def build_parser(only: str | None = None) -> Parser:
    """The parser; with `only`, just that subcommand's (start-up time matters)."""
    parser = Parser(
        prog="qme",
        description="Keep a live, searchable record of the commands you run.",
        epilog="Run 'qme COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"qme {__version__}")
    parser.add_argument(
        "--config_dir",
        "--config-dir",
        metavar="DIR",
        help="qme's home: config.ini and the store (default: $QME_HOME or ~/.qme)",
    )
    parser.add_argument("-m", "--message", help="annotate the task that run or rerun records")
    parser.add_argument(
        "--log_level",
        "--log-level",
        type=str.upper,
        choices=sorted(console.LEVELS),
        help="how much qme says on stderr (default: $QME_LOG_LEVEL or WARNING)",
    )
    parser.add_argument(
        "--database",
        metavar="DB",
        help="use this store for one command (sqlite, sqlite://FILE, filesystem)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in [only] if only else COMMANDS:
        module = importlib.import_module(f"qme.cli.{COMMANDS[name]}")
        sub = module.add_parser(subparsers, name)
        sub.set_defaults(handler=module.run)
    return parser
