"""The `qme` command: parse arguments, call the Queue API, render the result.

Library errors become one `qme: error: …` line and exit status 1; a traceback
is shown only with --debug. Each subcommand lives in its own module with
`add_parser(subparsers, name)` and `run(args) -> int`, its heavy imports inside
`run`; it reads and writes only through `args.env` (an `Environment`, see env.py,
which also names the exit statuses), so `main(argv, env)` runs in-process in tests.
`qme run` may wrap every command a user types, so it is parsed without argparse
when its arguments are plain (see `qme.cli.run.parse_fast`).
"""

from __future__ import annotations

import os
import sys

from qme import console
from qme.cli.env import ERROR, INTERRUPTED, OK, USAGE, Environment
from qme.errors import QmeError


def requested_command(argv: list[str]) -> str | None:
    """The subcommand named in argv, found without building every subparser."""
    from qme.cli.parser import COMMANDS
    from qme.cli.run import GLOBAL_OPTIONS

    args = iter(argv)
    for arg in args:
        if GLOBAL_OPTIONS.get(arg, (None, False))[1]:
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def parse(argv: list[str], env: Environment | None = None):
    """The parsed arguments. argparse's help, version and usage errors go to env's
    streams and raise SystemExit (0, or USAGE)."""
    from qme.cli.run import parse_fast

    args = parse_fast(argv)
    if args is not None:
        return args
    from qme.cli.parser import build_parser

    env = Environment() if env is None else env
    parser = build_parser(requested_command(argv), env)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # told with the usage of the command they were given to
        parser.commands.get(args.command, parser).error(
            f"unrecognized arguments: {' '.join(unknown)}"
        )
    if args.command is None:
        parser.print_help(env.stderr)
        raise SystemExit(USAGE)
    return args


def make_queue(args):
    """The Queue a command works with; the settings' problems are told once the
    command is done (see handle), unless its error tells them."""
    from qme.api import Queue

    # In a `qme on` session, references (@1) count its commands first.
    queue = Queue(
        config_dir=args.config_dir, database=args.database, session=os.environ.get("QME_SESSION")
    )
    args.setting_problems = queue.setting_problems
    return queue


def _warn_settings(args, env: Environment, error: str | None = None) -> None:
    problems = getattr(args, "setting_problems", None)
    if problems is None:
        return
    args.setting_problems = None
    try:
        lines = problems()
    except Exception:  # noqa: BLE001 - a warning must not fail the command
        return
    for line in lines:
        if line != error:
            env.err(f"qme: warning: {printable(line)}")


def _apply_log_level(args) -> None:
    if args.log_level is not None:
        console.set_level(args.log_level)
    else:  # from the configuration, read only when there is a message to filter
        console.set_level(lambda: _configured_level(args))


def _configured_level(args) -> str | None:
    from qme.api import Queue

    return Queue(args.config_dir).settings.log_level_if_readable()


def launch() -> None:
    """The `qme` program (bin/qme, python -m qme): main(), then exit; after `qme run`
    without Python's finalization, which costs its start-up budget milliseconds and
    has nothing to do there (no threads, no atexit handlers, stdio flushed here)."""
    _fill_closed_stdio()
    env = Environment()
    args = parse(sys.argv[1:], env)
    code = handle(args, env)
    if args.command != "run":
        raise SystemExit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the fd was closed when Python started
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _fill_closed_stdio() -> None:
    """Put /dev/null on a closed fd 0, 1 or 2 (`qme run cmd >&-`), for qme and so
    for the command: otherwise the first pipe qme opens would take that number
    and the command's streams would be crossed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one
            if null == fd:
                os.set_inheritable(fd, True)
            else:
                os.dup2(null, fd)
                os.close(null)


def main(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run qme with argv (default: sys.argv[1:]) in env (default: this process's
    streams); its exit status. --help, --version and usage errors return theirs
    rather than raising SystemExit."""
    env = Environment() if env is None else env
    try:
        args = parse(sys.argv[1:] if argv is None else argv, env)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (ERROR if exc.code else OK)
    return handle(args, env)


def handle(args, env: Environment | None = None) -> int:
    """Run the parsed command in env (given to it as args.env); its exit status."""
    env = args.env = Environment() if env is None else env
    if args.config_dir is None:
        args.config_dir = env.config_dir
    else:
        env.config_dir = args.config_dir
    try:
        _apply_log_level(args)
        code = args.handler(args)
        _warn_settings(args, env)
        return code
    except QmeError as exc:
        if args.debug:
            raise
        _warn_settings(args, env, str(exc))
        env.err(f"qme: error: {printable(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        return INTERRUPTED
    except BrokenPipeError:
        # `qme ls | head`: the reader left; exit quietly like other Unix tools.
        _silence(env.stdout)
        return OK
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless --debug
        if args.debug:
            raise
        env.err(
            f"qme: error: {type(exc).__name__}: {printable(str(exc))} "
            "(run with --debug for details)"
        )
        return ERROR


def printable(text: str) -> str:
    """qme.text.printable, imported only when an error is shown (it imports re,
    which `qme run` does without)."""
    from qme.text import printable

    return printable(text)


def _silence(stream) -> None:
    """/dev/null under a stream whose reader left, so that flushing it at exit does
    not fail again."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's StringIO)
        return
    os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
