"""`qme ls` and `qme search` against a store of 1,000,000 tasks (made by gen_tasks.py),
each as a whole command and beyond the interpreter's own start-up.

    python bench/query.py [--tasks 1000000] [--runs N]
"""

from __future__ import annotations

import argparse

import gen_tasks
import peers
from peers import Cmd

TARGET_MS = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="store size (default 1M)")
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each (default 15)")
    args = parser.parse_args()

    home, meta = gen_tasks.store(args.tasks)
    venv = peers.qme_venv()
    qme, python = peers.tool(venv, "qme"), peers.tool(venv, "python")
    empty = str(peers.fresh_dir("query-empty-"))
    env = peers.env(QME_HOME=str(home), HOME=empty)
    common, rare = meta["common_word"], min(meta["rare_words"], key=meta["rare_words"].get)

    baseline = Cmd("`python -c pass` (qme venv)", [python, "-c", "pass"])
    cmds = [
        baseline,
        Cmd("`qme --version`", [qme, "--version"], env),
        Cmd("`qme ls`, empty store", [qme, "ls"], peers.env(QME_HOME=empty, HOME=empty)),
        Cmd("`qme ls`", [qme, "ls"], env),
        Cmd("`qme ls --status failed`", [qme, "ls", "--status", "failed"], env),
        Cmd(
            f"`qme search {rare}` (in {meta['rare_words'][rare]} tasks)", [qme, "search", rare], env
        ),
        Cmd(f"`qme search {common}` (in every task)", [qme, "search", common], env),
        Cmd(
            f"`qme search '{gen_tasks.SHORT_PREFIX}*'` (prefix of many words)",
            [qme, "search", gen_tasks.SHORT_PREFIX + "*"],
            env,
        ),
        Cmd(f"`qme search --rank {common}`", [qme, "search", "--rank", common], env),
    ]
    for cmd in cmds[3:]:  # a broken command would time only its error path
        cmd.run(check=True)
    peers.Cmd("create the empty store", [qme, "ls"], cmds[2].env).run(check=True)
    load_before = peers.load()
    timings = peers.time_commands(cmds, runs=args.runs, warmup=2)

    start_up = timings[baseline.label].median_ms
    rows = []
    for cmd in cmds:
        t = timings[cmd.label]
        beyond = t.median_ms - start_up
        verdict = "" if cmd is baseline else ("yes" if beyond < TARGET_MS else "**no**")
        rows.append(
            [
                cmd.label,
                f"{t.median_ms:.1f}",
                f"{t.min_ms:.1f}",
                "" if cmd is baseline else f"{beyond:.1f}",
                verdict,
            ]
        )
    peers.header(f"Queries on a store of {args.tasks:,} tasks", load_before)
    print(
        peers.table(
            ["command", "median ms", "min ms", "beyond start-up ms", f"< {TARGET_MS} ms"], rows
        )
    )
    print(
        f'\n"Beyond start-up" = median − median of `python -c pass` in the same venv. '
        f"Output to /dev/null (no colour, no pager). Store: {home}/qme.db, made by "
        f"`python bench/gen_tasks.py --tasks {args.tasks}` (words: '{common}' ends every "
        f"task's output; '{rare}' is in {meta['rare_words'][rare]} tasks; "
        f"'{gen_tasks.SHORT_PREFIX}' starts ~90 distinct words). qme searches "
        f"whole words (a term ending in * is a prefix). `--rank` orders by bm25 over every match, "
        f"which is why it is not the default.\n"
        f"Medians of {args.runs} runs, taking turns.\n\nReproduce: `{peers.reproduce()}`"
    )


if __name__ == "__main__":
    main()
