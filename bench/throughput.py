"""Throughput of recording a big output: `cat FILE` bare, through tee, under `script`,
and under qme, with pipes and on a terminal; plus qme's peak memory.

    python bench/throughput.py [--size 1G] [--runs N] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import string

import peers
from peers import Cmd

MB = 1_000_000
LEVELS = ["INFO"] * 8 + ["DEBUG", "WARNING"]
# qme's rows (each once for the work tree and once for a --baseline revision)
QME_PIPES = "`qme run cat FILE` (pipes)"
QME_TTY = "on a terminal: `qme run cat FILE`"
QME_RSS = "peak RSS of `qme run cat FILE > /dev/null`"


def data_file(size: int) -> str:
    """A text file of `size` bytes under bench/.work, made once: log-like lines (a
    timestamp, a level, words, numbers, a random hex id), a 4 MiB block repeated."""
    path = peers.WORK / f"data-{size}.log"
    if path.exists() and path.stat().st_size == size:
        return str(path)
    peers.WORK.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(3000)]
    lines, block_size = [], 0
    while block_size < 4 << 20:
        n = len(lines)
        line = (
            f"2026-11-{1 + n // 86400 % 28:02d} {n // 3600 % 24:02d}:{n // 60 % 60:02d}:"
            f"{n % 60:02d}.{rng.randrange(1000):03d} {rng.choice(LEVELS)} step {n} "
            f"{' '.join(rng.choices(words, k=rng.randint(3, 12)))} "
            f"loss={rng.random():.4f} id={rng.getrandbits(32):08x}\n"
        )
        lines.append(line)
        block_size += len(line)
    block = "".join(lines).encode()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        left = size
        while left > 0:
            piece = block[:left]
            out.write(piece)
            left -= len(piece)
    os.replace(tmp, path)
    return str(path)


def under_script(command: str) -> str:
    """command run by `script` on a pty of its own, its output on script's stdout."""
    return f"script -qec {shlex.quote(command)} /dev/null"


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="file size, e.g. 64M or 1G (default 1G)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (default 3)")
    peers.add_baseline_option(parser)
    args = parser.parse_args()

    size = parse_size(args.size)
    path = data_file(size)
    f = shlex.quote(path)
    builds = peers.builds(args.baseline)
    qme = {b: shlex.quote(b.tool("qme")) for b in builds}
    homes = {b: str(peers.fresh_dir(f"throughput-{b.name}-")) for b in builds}
    qme_env = {b: peers.env(HOME=homes[b], QME_HOME=homes[b]) for b in builds}
    cat = f"cat {f}"
    script_pipe_label = "`script -qec 'cat FILE' /dev/null`"
    script_tty_label = "on a terminal: `script -qec 'cat FILE'`"
    cmds = [
        Cmd("`cat FILE` (bare)", f"{cat} > /dev/null"),
        Cmd("`cat FILE | tee /dev/null`", f"{cat} | tee /dev/null > /dev/null"),
        Cmd(script_pipe_label, f"{under_script(cat)} > /dev/null"),
        *(Cmd(b.label(QME_PIPES), f"{qme[b]} run {cat} > /dev/null", qme_env[b]) for b in builds),
        # Only the outer script's output goes to /dev/null: the inner one, like qme,
        # writes everything through the outer pty.
        Cmd(script_tty_label, f"{under_script(under_script(cat))} > /dev/null"),
        *(
            Cmd(b.label(QME_TTY), f"{under_script(f'{qme[b]} run {cat}')} > /dev/null", qme_env[b])
            for b in builds
        ),
    ]
    load_before = peers.load()
    timings = peers.time_commands(cmds, runs=args.runs, warmup=1, builds=builds)
    speed = {c.label: size / MB / (timings[c.label].median_ms / 1000) for c in cmds}
    rss_runs: dict[peers.Build, list[int]] = {b: [] for b in builds}
    for _ in range(3):  # taking turns too
        for b in builds:
            rss_cmd = Cmd("rss", f"{qme[b]} run cat {f} > /dev/null", qme_env[b])
            rss_runs[b].append(peers.peak_rss_kib(rss_cmd))
    rss = {b: sorted(runs)[1] / 1024 for b, runs in rss_runs.items()}  # MiB

    rows = [
        [
            c.label,
            f"{timings[c.label].median_ms:.0f}",
            f"{timings[c.label].min_ms:.0f}",
            f"{speed[c.label]:.0f}",
        ]
        for c in cmds
    ]
    script_pipe, script_tty = speed[script_pipe_label], speed[script_tty_label]
    title = f"Throughput: recording `cat` of {size / (1 << 20):.0f} MiB"
    peers.header(title, load_before)
    print(peers.table(["command", "median ms", "min ms", "MB/s"], rows))
    print()
    print(
        peers.table(
            ["ratio", "value", "target"],
            [
                *(
                    [
                        b.label("qme (pipes) ÷ script"),
                        f"{speed[b.label(QME_PIPES)] / script_pipe:.2f}×",
                        "≥ 5×",
                    ]
                    for b in builds
                ),
                *(
                    [
                        b.label("qme on a terminal ÷ script on a terminal"),
                        f"{speed[b.label(QME_TTY)] / script_tty:.2f}×",
                        "≥ 0.9×",
                    ]
                    for b in builds
                ),
                *([b.label(QME_RSS), f"{rss[b]:.1f} MiB", "≤ 32 MiB"] for b in builds),
            ],
        )
    )
    print(
        '\n"On a terminal" rows run the command under an outer'
        " `script -qec '…' /dev/null > /dev/null`, so qme's (or the inner script's) stdout"
        " is a pty; both rows pay for that outer pty.\n"
        "MB = 10⁶ bytes, from the median time. qme keeps its default QME_MAX_OUTPUT (1M:"
        " head and tail) in a fresh SQLite store. Peak RSS is the largest process in the"
        " tree (getrusage RUSAGE_CHILDREN), median of 3 runs.\n"
        f"FILE: {path} (log-like text lines)."
    )
    for before in builds[1:]:
        rows = [
            *((r, "MB/s", speed[r], speed[before.label(r)]) for r in (QME_PIPES, QME_TTY)),
            (QME_RSS, "MiB", rss[builds[0]], rss[before]),
        ]
        print()
        print(peers.after_before(before, rows))
    print(f"\nReproduce: `{peers.reproduce()}`")


if __name__ == "__main__":
    main()
