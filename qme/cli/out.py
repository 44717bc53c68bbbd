"""qme out: print a task's recorded output, as the command wrote it."""

from __future__ import annotations

import argparse

from qme.cli.env import OK
from qme.task import CUT_LINE

HELP = """\
Print the output TASK recorded: its stdout as the bytes the command wrote (escape
sequences included, as cat would print them), so that it can be piped on without
running the command again:

  qme out | jq .              # the last finished task's output
  qme out @2 | grep ERROR     # the one before
  qme out 5b8a --err          # its stderr

TASK is an id or unique prefix, or a reference: @1 the most recent task, @2 the
one before… (in a 'qme on' session, its own commands first; @@N: of all tasks).
Without TASK: the last finished task, in a session the previous command typed
there. The output is read from the store a piece at a time, so memory stays flat
however long it is. A task whose output was cut (max_output) has its head and
tail printed, and a line on stderr says so.
"""


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "out",
        help="print a task's recorded output (the last finished task by default)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("id", nargs="?", metavar="TASK")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-e", "--err", action="store_true", help="its stderr instead")
    which.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="its stdout and stderr, interleaved in the order they came where the record "
        "keeps their timing (read whole then), else its stdout, then its stderr",
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    queue = make_queue(args)
    task = queue.get(args.id, streams=False) if args.id else queue.recent_task(finished=True)
    streams = ["error"] if args.err else ["output", "error"] if args.all else ["output"]
    env = args.env
    out = env.binary_stdout()
    if args.all and task.timing:
        pieces = [(stream, data) for _, stream, data in queue.timed_output(task)]
    else:
        pieces = ((s, d) for s in streams for d in queue.stream_output(task, s))  # flat
    cut = _CutLines(streams)
    for stream, data in pieces:
        out.write(data)
        cut.feed(stream, data)
    for stream in streams:
        wrote = task.output_size if stream == "output" else task.error_size
        if cut.seen[stream]:  # (a record may also be shorter for secrets redacted)
            name = "stdout" if stream == "output" else "stderr"
            env.err(
                f"qme: task {task.short_id} wrote {wrote} bytes to {name}; its record keeps "
                "the head and the tail (max_output), with a line saying what was left out"
            )
    out.flush()
    return OK


class _CutLines:
    """Whether each stream holds the line that says max_output left bytes out,
    looked for in the pieces as they pass (one may end inside it)."""

    END = CUT_LINE.split(b"%d")[1]

    def __init__(self, streams: list[str]):
        self.seen = dict.fromkeys(streams, False)
        self.last = dict.fromkeys(streams, b"")

    def feed(self, stream: str, data: bytes) -> None:
        if not self.seen[stream]:
            joined = self.last[stream] + data[: len(self.END)]
            self.seen[stream] = self.END in joined or self.END in data
            self.last[stream] = data[-len(self.END) :]
