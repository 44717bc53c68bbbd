"""The argparse parser: global options plus one subparser per command module."""

from __future__ import annotations

import argparse
import importlib
import sys

from qme import __version__, console
from qme.cli.env import USAGE, Environment

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
        "redact",
        "config",
        "generate_key",
        "shell",
        "init",
        "session",
        "start",
        "sync",
        "replay",
    ]
}
COMMANDS.update({"on": "switch", "off": "switch", "status": "switch"})
COMMANDS["exec"] = "exec"
COMMANDS["history"] = "history"
COMMANDS.update({"out": "out", "note": "note", "tag": "tag"})
COMMANDS.update({"export": "transfer", "import": "transfer"})
COMMANDS["mcp"] = "mcp"
COMMANDS.update({"completion": "completion", "doctor": "doctor"})
COMMANDS.update({"admin": "admin", "share": "share"})
COMMANDS["notify"] = "notify"


class Parser(argparse.ArgumentParser):
    """argparse's parser, writing its help, usage and errors to env's streams."""

    def __init__(self, *args, env: Environment | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.env = Environment() if env is None else env

    def error(self, message: str):
        self.print_usage(self.env.stderr)
        self.exit(USAGE, f"qme: error: {message}\n")

    def _print_message(self, message: str, file=None) -> None:
        # argparse writes all it says through here, to sys.stdout or sys.stderr.
        file = self.env.stdout if file is sys.stdout else file
        file = self.env.stderr if file is None or file is sys.stderr else file
        if message:
            try:
                file.write(message)
            except (AttributeError, OSError):
                pass  # as argparse: a closed stream cannot be told


def build_parser(only: str | None = None, env: Environment | None = None) -> Parser:
    """The parser; with `only`, just that subcommand's (start-up time matters)."""
    env = Environment() if env is None else env
    parser = Parser(
        env=env,
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
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=lambda **kw: Parser(env=env, **kw)
    )
    parser.commands = {}  # name -> its subparser, for its usage in errors
    for name in [only] if only else COMMANDS:
        module = importlib.import_module(f"qme.cli.{COMMANDS[name]}")
        sub = parser.commands[name] = module.add_parser(subparsers, name)
        sub.set_defaults(handler=module.run)
    return parser
