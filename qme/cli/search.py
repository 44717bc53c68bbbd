"""qme search: full-text search over commands, messages and output."""

from __future__ import annotations

from qme.cli.env import ERROR, OK

DEFAULT_LIMIT = 20


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "search",
        help="find tasks by words in their command, message or output",
        description="Find tasks whose command, message, output or error contain every "
        "TERM as a word (case-insensitive; 'deploy*' for words starting with deploy), "
        "newest first, with the matching line.",
    )
    parser.add_argument("terms", nargs="+", metavar="TERM")
    parser.add_argument("--executor", metavar="NAME", help="only tasks of this executor")
    parser.add_argument("-n", "--limit", type=int, default=DEFAULT_LIMIT, metavar="N")
    parser.add_argument(
        "--rank", action="store_true", help="most relevant first (slower on huge stores)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def run(args) -> int:
    from qme.cli import make_queue, queueme
    from qme.cli.render import age, colored, one_line, print_json

    queue = make_queue(args)
    queueme.hint(args.env, queue)
    hits = queue.search(*args.terms, executor=args.executor, limit=args.limit, rank=args.rank)
    if args.json:
        print_json(
            args.env,
            [
                {**hit.task.to_dict(), "match": {"field": hit.field, "line": _plain(hit.line)}}
                for hit in hits
            ],
        )
        return OK if hits else ERROR
    env = args.env
    color = env.colors
    for hit in hits:
        task = hit.task
        line = one_line(hit.line).replace("\x02", "\x1b[1;33m" if color else "")
        line = line.replace("\x03", "\x1b[0m" if color else "")
        short_id = colored(task.short_id, "2", color)
        env.out(f"{short_id}  {age(task.started):>8}  {one_line(task.command)}")
        if hit.field != "command":
            env.out(f"    {hit.field}: {line}")
    return OK if hits else ERROR


def _plain(line: str) -> str:
    return line.replace("\x02", "").replace("\x03", "")
