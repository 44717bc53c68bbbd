"""qme run: run a command exactly as if typed, and record it."""

from __future__ import annotations

HELP = """\
Run COMMAND as if typed, recording its output, exit status and metadata.
The task exists while the command runs (see it with 'qme ls' / 'qme get').
qme exits with the command's exit code (128+N if it died of signal N) and
prints nothing of its own on stdout, unless --json asks for the task's record
(one line, last: qme run --json make | tail -n 1).

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
    "--json": ("json", False),
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
    parser.add_argument(
        "--json",
        action="store_true",
        help="when the command ends, print the task (id, status, returncode, signal, "
        "duration, command) as one line of JSON on stdout, after the command's output",
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
        json=False,
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
    a writer process (qme/recorder/handoff.py): this one only runs the command."""
    from qme.api import Queue

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        from qme.cli.env import USAGE

        args.env.err("usage: qme run [-m MESSAGE] [--executor NAME] [-v] [--json] COMMAND ...")
        args.env.err("qme: error: no command given")
        return USAGE
    queue = Queue(args.config_dir, database=args.database, log_level=args.log_level)
    executor = args.executor
    if (args.verbose or args.json) and not executor:  # its id is printed: name it here
        executor = queue.executor_for(cmd)
    task = queue.run(
        cmd, message=args.run_message or args.message, executor=executor, writer_process=True
    )
    if args.verbose:
        args.env.err(f"[{task.id}][returncode: {task.returncode}]")
    if args.json:
        print_record(args.env, task)
    return task.returncode


def print_record(env, task) -> None:
    """--json: the new task on one line of stdout, after all the command printed
    there (so `qme run --json CMD | tail -n 1` reads it)."""
    import json

    record = {
        "id": task.id,
        "status": task.status,
        "returncode": task.returncode,
        "signal": task.signal,
        "duration": task.duration,
        "command": task.command,
    }
    env.stdout.flush()
    env.stdout.write(json.dumps(record, ensure_ascii=True) + "\n")
    env.stdout.flush()
