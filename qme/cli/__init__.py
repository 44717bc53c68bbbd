"""The `qme` command: parse arguments, call the Queue API, render the result.

Library errors become one `qme: error: …` line and exit status 1; a traceback
is shown only with --debug. Each subcommand lives in its own module with
`add_parser(subparsers)` and `run(args) -> int`; their heavy imports are
inside `run` so that `qme run` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from qme import __version__, console
from qme.errors import ConfigError, QmeError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

COMMANDS = ["run", "get", "ls", "search", "rerun", "clear", "config", "generate_key", "shell"]


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"qme: error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="qme",
        description="Keep a live, searchable record of the commands you run.",
        epilog="Run 'qme COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"qme {__version__}")
    parser.add_argument(
        "--config_dir", "--config-dir", metavar="DIR",
        help="qme's home: config.ini and the store (default: $QME_HOME or ~/.qme)",
    )
    parser.add_argument(
        "-m", "--message", help="annotate the task that run or rerun records"
    )
    parser.add_argument(
        "--log_level", "--log-level", type=str.upper, choices=sorted(console.LEVELS),
        help="how much qme says on stderr (default: $QME_LOG_LEVEL or WARNING)",
    )
    parser.add_argument(
        "--database", metavar="DB",
        help="use this store for one command (sqlite, sqlite://FILE, filesystem)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"qme.cli.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(handler=module.run)
    return parser


def make_queue(args):
    from qme.api import Queue

    return Queue(config_dir=args.config_dir, database=args.database)


def _apply_log_level(args) -> None:
    level = args.log_level
    if level is None:
        from qme.config import Settings

        try:
            level = Settings.load(args.config_dir).log_level
        except ConfigError:
            return  # the command reports a broken configuration where it matters
    console.set_level(level)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        _apply_log_level(args)
        return args.handler(args)
    except QmeError as exc:
        if args.debug:
            raise
        console.set_level("ERROR")
        print(f"qme: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `qme ls | head`: the reader left; exit quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless --debug
        if args.debug:
            raise
        print(
            f"qme: error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_ERROR
