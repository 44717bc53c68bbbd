"""qme note: give a task a note, or show it."""

from __future__ import annotations

import argparse

from qme.cli.env import OK

HELP = """\
Give TASK a note: TEXT replaces the note it had (-a adds it as a line of its own),
'' or --remove takes it away; without TEXT, print the note. The note is the task's
message: 'qme run -m TEXT' gives its first one. Notes are searched (qme search),
shown by qme get and qme ls --json (as "message") and in the dashboard.

TASK is an id or unique prefix, or a reference: @1 the most recent task, @2 the one
before… (in a 'qme on' session, its own commands first; @@N: of all tasks).

  qme note @1 'works with --fast; 2x slower without'
  qme note 5b8a -a 'and on the cluster too'
"""


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "note",
        help="give a task a note (or show it)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("id", metavar="TASK")
    parser.add_argument("text", nargs="*", metavar="TEXT", help="the note (words joined by spaces)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("-a", "--append", action="store_true", help="add TEXT to the note as a line")
    how.add_argument("--remove", action="store_true", help="take the note away")
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.errors import QmeError

    queue = make_queue(args)
    if args.remove and args.text:
        raise QmeError("give TEXT or --remove, not both")
    if not args.text and not args.remove:
        note = queue.get(args.id, streams=False).message
        if note:
            args.env.out(note)
        return OK
    task = queue.note(args.id, " ".join(args.text), append=args.append)
    did = "noted" if task.message else "took the note off"
    args.env.err(f"qme: {did} task {task.short_id}")
    return OK
