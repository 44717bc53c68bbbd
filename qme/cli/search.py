"""qme search: full-text search over commands, messages and output."""

from __future__ import annotations

from qme.cli.env import ERROR, OK
from qme.cli.ls import COUNT
from qme.cli.template import HELP as TEMPLATE_HELP

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
    parser.add_argument("-n", "--limit", type=COUNT, default=DEFAULT_LIMIT, metavar="N")
    parser.add_argument(
        "--rank", action="store_true", help="most relevant first (slower on huge stores)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--format", metavar="TEMPLATE", help=TEMPLATE_HELP)
    return parser


def run(args) -> int:
    from qme.cli import make_queue, queueme
    from qme.cli.render import age, colored, print_json, safe
    from qme.cli.template import chosen, render
    from qme.text import marked_spans

    template = None if args.format is None else chosen(args.format, ())
    queue = make_queue(args)
    queueme.hint(args.env, queue)
    hits = queue.search(*args.terms, executor=args.executor, limit=args.limit, rank=args.rank)
    if args.json:
        print_json(
            args.env,
            [
                {**hit.task.to_dict(), "match": _match(hit.field, *marked_spans(hit.line))}
                for hit in hits
            ],
        )
        return OK if hits else ERROR
    if template is not None:
        for hit in hits:
            args.env.out(render(template, hit.task))
        return OK if hits else ERROR
    env = args.env
    color = env.colors
    for hit in hits:
        task = hit.task
        short_id = colored(task.short_id, "2", color)
        env.out(f"{short_id}  {age(task.started):>8}  {safe(task.command)}")
        if hit.field != "command":
            env.out(f"    {hit.field}: {_highlighted(*marked_spans(hit.line), color)}")
    return OK if hits else ERROR


def _match(field: str, line: str, spans: list[tuple[int, int]]) -> dict:
    return {"field": field, "line": line, "spans": [list(span) for span in spans]}


def _highlighted(line: str, spans: list[tuple[int, int]], color: bool) -> str:
    """The line made safe for the terminal (qme.cli.render.safe) piece by piece, the
    matched words in bold yellow when colouring."""
    from qme.cli.render import colored, safe

    pieces, done = [], 0
    for start, end in spans:
        pieces.append(safe(line[done:start]))
        pieces.append(colored(safe(line[start:end]), "1;33", color))
        done = end
    pieces.append(safe(line[done:]))
    return "".join(pieces)
