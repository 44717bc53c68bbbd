"""qme session: run a shell whose typed commands are recorded (what `qme on` starts)."""

from __future__ import annotations


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        name,
        help="start a recorded shell session (what 'qme on' runs)",
        description="Run an interactive shell inside qme's session proxy: every command "
        "typed is recorded as a task (grouped by a session id) until the shell exits. "
        "'qme off' / 'qme on' inside it pause and resume recording.",
    )
    parser.add_argument("--shell", metavar="PATH", help="bash, zsh or fish (default: $SHELL)")
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    return make_queue(args).record_session(args.shell)
