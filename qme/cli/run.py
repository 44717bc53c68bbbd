"""qme run: run a command exactly as if typed, and record it."""

from __future__ import annotations

import sys
import time

HELP = """\
Run COMMAND as if typed, recording its output, exit status and metadata.
The task exists while the command runs (see it with 'qme ls' / 'qme get').
qme exits with the command's exit code (128+N if it died of signal N) and
prints nothing of its own on stdout.

Quote a shell line to run it through $SHELL: qme run "make 2>&1 | tee log"
Options for qme go before COMMAND; everything after it is the command's own:
  qme run ls --help      (runs 'ls --help')
  qme run -- -weird-name (a command whose name starts with a dash)
"""

# option -> (attribute, takes a value); shared by argparse and the fast parser.
GLOBAL_OPTIONS = {
    "--config_dir": ("config_dir", True),
    "--config-dir": ("config_dir", True),
    "-m": ("message", True),
    "--message": ("message", True),
    "--log_level": ("log_level", True),
    "--log-level": ("log_level", True),
    "--database": ("database", True),
    "--debug": ("debug", False),
}
RUN_OPTIONS = {
    "-m": ("run_message", True),
    "--message": ("run_message", True),
    "--executor": ("executor", True),
    "-v": ("verbose", False),
    "--verbose": ("verbose", False),
}


def add_parser(subparsers, name):
    import argparse

    parser = subparsers.add_parser(
        "run",
        help="run a command and record it",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-m", "--message", dest="run_message", help="annotate the task")
    parser.add_argument(
        "--executor", metavar="NAME", help="use this executor (default: by command)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print '[TASK-ID][returncode: N]' on stderr when the command ends",
    )
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND ...")
    return parser


def parse_fast(argv: list[str]):
    """Parse `qme [global options] run [options] COMMAND…` without argparse, whose
    import and set-up cost more than the rest of qme run's start-up. Returns None
    for anything else (help, mistakes, other commands): argparse handles those."""
    args = _Args(
        command="run",
        handler=run,
        config_dir=None,
        message=None,
        log_level=None,
        database=None,
        debug=False,
        run_message=None,
        executor=None,
        verbose=False,
        cmd=[],
    )
    options, position = GLOBAL_OPTIONS, 0
    while position < len(argv):
        arg = argv[position]
        if options is GLOBAL_OPTIONS and arg == "run":
            options = RUN_OPTIONS
        elif options is RUN_OPTIONS and (arg == "--" or not arg.startswith("-")):
            args.cmd = argv[position + (arg == "--") :]
            break
        else:
            name, _, value = arg.partition("=")
            if name not in options:
                return None
            attribute, takes_value = options[name]
            if not takes_value:
                if value:
                    return None
                value = True
            elif not value:
                position += 1
                if position == len(argv):
                    return None
                value = argv[position]
            setattr(args, attribute, value)
        position += 1
    if not args.cmd or (args.log_level and not _valid_level(args)):
        return None
    return args


def _valid_level(args) -> bool:
    from qme.console import LEVELS

    args.log_level = args.log_level.upper()
    return args.log_level in LEVELS


class _Args:
    """argparse's Namespace, without importing argparse or types."""

    def __init__(self, **values):
        self.__dict__.update(values)


def run(args) -> int:
    """Everything about the record (the executor, the store, indexing) is left to
    a writer child (qme/recorder/handoff.py): this process only runs the command.
    It starts the command first: the rest of its start-up overlaps the command's."""
    from qme.errors import QmeError
    from qme.origin import command_line
    from qme.recorder.spawn import spawn

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise QmeError("no command given (usage: qme run COMMAND [ARGS…])")
    argv, text = command_line(cmd)
    executor = _executor(args, text)
    started = time.time()
    child = spawn(argv)

    from qme import console, liveness
    from qme.config import OPTIONS, Settings, parse_size
    from qme.errors import ConfigError
    from qme.origin import current_directory, current_user, hostname
    from qme.recorder.handoff import ChildWriter
    from qme.recorder.recording import record
    from qme.task import Task, new_uuid4

    task = Task(
        id=f"{executor}-{new_uuid4()}" if executor else new_uuid4(),
        executor=executor,
        command=text,
        argv=argv,
        cwd=current_directory(),
        user=current_user(),
        host=hostname(),
        started=started,
        message=args.run_message or args.message,
        recorder=liveness.token(),
    )
    settings = Settings.load(args.config_dir, database=args.database, log_level=args.log_level)
    try:
        limit = settings.max_output
    except ConfigError:  # the writer child reports it: it reads the same file
        limit = parse_size(OPTIONS["max_output"].default)
    error = record(task, child, ChildWriter(settings, lock_name=task.recorder), limit)
    if error:
        console.warn(error)
    if args.verbose:
        print(f"[{task.id}][returncode: {task.returncode}]", file=sys.stderr)
    return task.returncode


def _executor(args, text: str) -> str:
    """The executor's name, found here only when it is named or its id is printed:
    otherwise the writer child finds it (the registry costs start-up time)."""
    if not (args.executor or args.verbose):
        return ""
    from qme import executors
    from qme.config import Settings

    settings = Settings.load(args.config_dir, database=args.database)
    if args.executor:
        return executors.get(args.executor, settings).name
    return executors.for_command(text, settings).name
