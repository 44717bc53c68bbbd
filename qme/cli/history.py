"""qme history: search the whole history full-screen and print the chosen command.

What `qme init SHELL --ctrl-r` binds to Ctrl-R: the shell puts what this prints on
its prompt line (bash: READLINE_LINE, zsh: BUFFER, fish: commandline -r), to be
edited or run with Enter. Nothing is run here.
"""

from __future__ import annotations

import argparse

from qme.cli.env import ERROR, INTERRUPTED, OK

HELP = """\
Search every command qme recorded (commands, notes and tags, output) as you
type, with the selected task's output beside the list, and print the command
chosen with Enter (Esc or Ctrl-C: nothing, exit status 130).

Keys: Up/Down move; Alt-D this directory, Alt-S this session, Alt-H this host,
Alt-F failed only (each toggles); Ctrl-R cycles everywhere / host / session /
directory. `qme init SHELL --ctrl-r` binds it to Ctrl-R.
"""


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        name,
        help="search the whole history full-screen; print the chosen command",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--query", default="", metavar="TEXT", help="start with this query")
    parser.add_argument(
        "--filter",
        action="append",
        choices=["directory", "session", "host", "failed"],
        default=[],
        help="start with this filter on (repeatable)",
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.finder import Finder

    with make_queue(args) as queue:
        if not queue.list(limit=1):
            args.env.stderr.write("qme: nothing recorded yet\n")
            return ERROR
        chosen = Finder(queue, query=args.query, active=set(args.filter)).run()
    if chosen is None:
        return INTERRUPTED
    args.env.stdout.write(chosen.command + "\n")
    return OK
