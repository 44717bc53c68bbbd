"""Throughput of recording a big output: `cat FILE` bare, through tee, under `script`,
and under qme, with pipes and on a terminal; plus qme's peak memory.

    python bench/throughput.py [--size 1G] [--runs N]
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
    args = parser.parse_args()

    size = parse_size(args.size)
    path = data_file(size)
    f = shlex.quote(path)
    qme = shlex.quote(peers.tool(peers.qme_venv(), "qme"))
    home = str(peers.fresh_dir("throughput-qme-"))
    qme_env = peers.env(HOME=home, QME_HOME=home)
    cat = f"cat {f}"
    cmds = [
        Cmd("`cat FILE` (bare)", f"{cat} > /dev/null"),
        Cmd("`cat FILE | tee /dev/null`", f"{cat} | tee /dev/null > /dev/null"),
        Cmd("`script -qec 'cat FILE' /dev/null`", f"{under_script(cat)} > /dev/null"),
        Cmd("`qme run cat FILE` (pipes)", f"{qme} run {cat} > /dev/null", qme_env),
        # Only the outer script's output goes to /dev/null: the inner one, like qme,
        # writes everything through the outer pty.
        Cmd(
            "on a terminal: `script -qec 'cat FILE'`",
            f"{under_script(under_script(cat))} > /dev/null",
        ),
        Cmd(
            "on a terminal: `qme run cat FILE`",
            f"{under_script(f'{qme} run {cat}')} > /dev/null",
            qme_env,
        ),
    ]
    load_before = peers.load()
    timings = peers.time_commands(cmds, runs=args.runs, warmup=1)
    speed = {c.label: size / MB / (timings[c.label].median_ms / 1000) for c in cmds}
    rss_cmd = Cmd("rss", f"{qme} run cat {f} > /dev/null", qme_env)
    rss = sorted(peers.peak_rss_kib(rss_cmd) for _ in range(3))[1]

    rows = [
        [
            c.label,
            f"{timings[c.label].median_ms:.0f}",
            f"{timings[c.label].min_ms:.0f}",
            f"{speed[c.label]:.0f}",
        ]
        for c in cmds
    ]
    s = {c.label: speed[c.label] for c in cmds}
    script_pipe, qme_pipe, script_tty, qme_tty = (s[cmds[i].label] for i in (2, 3, 4, 5))
    title = f"Throughput: recording `cat` of {size / (1 << 20):.0f} MiB"
    peers.header(title, load_before)
    print(peers.table(["command", "median ms", "min ms", "MB/s"], rows))
    print()
    print(
        peers.table(
            ["ratio", "value", "target"],
            [
                ["qme (pipes) ÷ script", f"{qme_pipe / script_pipe:.2f}×", "≥ 5×"],
                [
                    "qme on a terminal ÷ script on a terminal",
                    f"{qme_tty / script_tty:.2f}×",
                    "≥ 0.9×",
                ],
                ["peak RSS of `qme run cat FILE > /dev/null`", f"{rss / 1024:.1f} MiB", "≤ 32 MiB"],
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
        f"FILE: {path} (log-like text lines).\n\nReproduce: `{peers.reproduce()}`"
    )


if __name__ == "__main__":
    main()
