"""Start-up cost of recording a trivial command: `true` run bare, under `script`,
under qme, asciinema 2.4 and QueueMe 0.0.14. Also the exit code each passes on
for `false` (qme must return 1).

    python bench/startup.py [--runs N] [--baseline REV]
"""

from __future__ import annotations

import argparse

import peers
from peers import Cmd

# qme's rows (each once for the work tree and once for a --baseline revision)
QME_PIPES = "`qme run {word}` (pipes)"
QME_PTY = "`qme run {word}` on a pty¹"


def tools(qme: peers.Build) -> dict[str, str]:
    return {
        "python": qme.tool("python"),
        "asciinema": peers.tool(peers.asciinema_venv(), "asciinema"),
        "queueme": peers.tool(peers.queueme_venv(), "qme"),
    }


def commands(
    word: str, homes: dict[str, str], bins: dict[str, str], builds: list[peers.Build]
) -> list[Cmd]:
    """The commands to compare, each running `word` (true or false); qme's rows once
    for each build (the work tree, then a --baseline revision)."""
    python, asciinema, queueme = (bins[k] for k in ("python", "asciinema", "queueme"))
    qme_env = {b: peers.env(HOME=homes[b.name], QME_HOME=homes[b.name]) for b in builds}
    queueme_args = lambda db: [queueme, "--config_dir", homes[db], "run", word]  # noqa: E731
    queueme_env = lambda db: peers.env(HOME=homes[db], QME_DATABASE=db)  # noqa: E731
    cast = f"{homes['asciinema']}/rec.cast"
    return [
        Cmd(f"`{word}` (bare)", [word]),
        Cmd("`python -c pass` (qme venv)", [python, "-c", "pass"]),
        Cmd(f"`script -qec {word} /dev/null`", ["script", "-qec", word, "/dev/null"]),
        *(
            Cmd(b.label(QME_PIPES.format(word=word)), [b.tool("qme"), "run", word], qme_env[b])
            for b in builds
        ),
        *(
            Cmd(
                b.label(QME_PTY.format(word=word)),
                ["script", "-qec", f"{b.tool('qme')} run {word}", "/dev/null"],
                qme_env[b],
            )
            for b in builds
        ),
        Cmd(
            f"`asciinema rec -c {word}` 2.4.0²",
            [asciinema, "rec", "-c", word, "--quiet", "--overwrite", cast],
            peers.env(HOME=homes["asciinema"]),
        ),
        Cmd(
            f"QueueMe 0.0.14 `qme run {word}`, filesystem",
            queueme_args("filesystem"),
            queueme_env("filesystem"),
        ),
        Cmd(
            f"QueueMe 0.0.14 `qme run {word}`, sqlite",
            queueme_args("sqlite"),
            queueme_env("sqlite"),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each (default 30)")
    peers.add_baseline_option(parser)
    args = parser.parse_args()

    builds = peers.builds(args.baseline)
    homes = {
        k: str(peers.fresh_dir(f"startup-{k}-"))
        for k in (*(b.name for b in builds), "asciinema", "filesystem", "sqlite")
    }
    bins = tools(builds[0])
    cmds = commands("true", homes, bins, builds)
    codes = [c.run() for c in commands("false", homes, bins, builds)]
    codes[1] = "-"  # python -c pass runs no `false`
    load_before = peers.load()
    timings = peers.time_commands(cmds, runs=args.runs, warmup=2, builds=builds)

    reference = timings[cmds[2].label].median_ms  # script
    rows = []
    for cmd, code in zip(cmds, codes):
        t = timings[cmd.label]
        rows.append(
            [
                cmd.label,
                f"{t.median_ms:.1f}",
                f"{t.min_ms:.1f}",
                f"{t.median_ms / reference:.2f}×",
                code,
            ]
        )
    peers.header("Start-up: recording `true`", load_before)
    print(peers.table(["command", "median ms", "min ms", "÷ script", "exit code of `false`"], rows))
    print(
        "\n¹ run as `script -qec 'qme run true' /dev/null`, so its time includes that outer"
        " `script`; qme then gives the command a pty of its own.\n"
        "² asciinema records without a terminal too (it always makes a pty), so it runs"
        " directly; it records to a file in a fresh HOME.\n"
        "Each tool has its own fresh HOME (and QME_HOME / `--config_dir`); the stores are"
        " created by a warm-up run, so the times are for an existing store.\n"
        f"Medians of {args.runs} runs, taking turns; stdio on /dev/null (so qme uses pipes)."
    )
    for before in builds[1:]:
        ours = [QME_PIPES.format(word="true"), QME_PTY.format(word="true")]
        rows = [(r, "ms", timings[r].median_ms, timings[before.label(r)].median_ms) for r in ours]
        print()
        print(peers.after_before(before, rows))
    print(f"\nReproduce: `{peers.reproduce()}`")


if __name__ == "__main__":
    main()
