"""qme redact: replace secrets already stored by [redacted]."""

from __future__ import annotations

import argparse

from qme.cli.env import ERROR, OK

HELP = """\
Replace what PATTERN (a regular expression) matches by [redacted] in every
stored task's command, message and output, and in the search index. Without
PATTERN: the built-in secrets' patterns and the 'redact' setting's, which new
records go through before they are stored. Asks first unless --force.

  qme redact 'hunter2'
  qme redact 'corp-[0-9a-f]{32}'
  qme config --set redact 'corp-[0-9a-f]{32}'   # and for every record to come
"""


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "redact",
        help="replace secrets already stored by [redacted]",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("pattern", nargs="?", metavar="PATTERN")
    parser.add_argument("-f", "--force", action="store_true", help="do not ask")
    parser.add_argument("--json", action="store_true", help='print {"redacted": N}')
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.clear import agreed
    from qme.cli.render import print_json, safe

    queue = make_queue(args)
    what = f"'{safe(args.pattern)}'" if args.pattern else "the secrets' patterns"
    question = f"Replace what {what} matches in every stored task by [redacted]?"
    if not agreed(args, question, "redacting", "redacted"):
        return ERROR
    count = queue.redact(args.pattern)
    if args.json:
        print_json(args.env, {"redacted": count})
    else:
        args.env.err(f"Redacted {count} task{'s' if count != 1 else ''}.")
    return OK
