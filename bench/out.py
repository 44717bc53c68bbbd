"""`qme out` of a big recorded output beside `cat` of the same bytes: wall time in
pairs (taking turns), the ratio of each pair, and peak memory.

    python bench/out.py [--size 100M] [--runs N] [--database sqlite|filesystem]

The output is recorded once (`qme run cat FILE`, max_output 0 so that every byte
is kept) into a fresh home, after a task with no output (`qme run true`); then
`qme out > /dev/null`, `qme out | wc -c` and the same with `cat FILE` are timed,
with `qme out @2` (the empty output) and `cat` of an empty file beside them: their
times are each command's start-up, and "MB/s streaming" is the size over the time
beyond it. Standard library only.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import time

import peers
from peers import Cmd
from throughput import MB, data_file


def parse_size(text: str) -> int:
    units = {"K": 1_000, "M": MB, "G": 1000 * MB}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].isalpha() else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=100 * MB)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "filesystem"])
    args = parser.parse_args()
    load = peers.load()
    path = data_file(args.size)
    qme = peers.tool(peers.qme_venv(), "qme")
    home = peers.fresh_dir("out-")
    env = peers.env(QME_HOME=str(home), QME_MAX_OUTPUT="0", QME_DATABASE=args.database)
    Cmd("record empty", [qme, "run", "true"], env).run(True)
    Cmd("record", f"{shlex.quote(qme)} run cat {shlex.quote(path)} > /dev/null", env).run(True)
    while (
        '"running"'
        in subprocess.run(  # the writer child may still be storing it
            [qme, "ls", "--json", "-n", "1"], env=env, capture_output=True, text=True
        ).stdout
    ):
        time.sleep(0.2)
    check = subprocess.run(
        f"{shlex.quote(qme)} out | cmp - {shlex.quote(path)}", shell=True, env=env
    )
    if check.returncode != 0:
        raise SystemExit("qme out did not print the recorded bytes exactly")
    out, cat = f"{shlex.quote(qme)} out", f"cat {shlex.quote(path)}"
    pairs = [("> /dev/null", " > /dev/null"), ("| wc -c", " | wc -c > /dev/null")]
    empty = {"qme": "`qme out @2 > /dev/null` (empty)", "cat": "`cat EMPTY > /dev/null`"}
    cmds = [Cmd(empty["qme"], f"{out} @2 > /dev/null", env), Cmd(empty["cat"], "cat /dev/null")]
    for name, tail in pairs:
        cmds.append(Cmd(f"`qme out {name}`", out + tail, env))
        cmds.append(Cmd(f"`cat FILE {name}`", cat + tail, env))
    timings = peers.time_commands(cmds, runs=args.runs, warmup=1)
    peers.header(f"`qme out` of {args.size // MB} MB ({args.database}) beside `cat`", load)
    start_up = {tool: statistics.median(timings[label].times) for tool, label in empty.items()}
    rows = [[label, f"{start_up[tool] * 1000:.0f}", "", "", ""] for tool, label in empty.items()]
    for name, _ in pairs:
        qme_times = timings[f"`qme out {name}`"].times
        cat_times = timings[f"`cat FILE {name}`"].times
        ratios = [q / c for q, c in zip(qme_times, cat_times)]
        for tool, times in (("qme", qme_times), ("cat", cat_times)):
            label = f"`qme out {name}`" if tool == "qme" else f"`cat FILE {name}`"
            median = statistics.median(times)
            streaming = args.size / MB / max(median - start_up[tool], 1e-3)
            row = [label, f"{median * 1000:.0f}", f"{args.size / MB / median:.0f}"]
            rows.append([*row, f"{streaming:.0f}", ""])
        rows[-2][4] = f"{statistics.median(ratios):.2f}×"
    headers = ["command", "median ms", "MB/s", "MB/s streaming", "÷ cat (median of pairs)"]
    print(peers.table(headers, rows))
    rss_qme = peers.peak_rss_kib(Cmd("rss", out + " > /dev/null", env))
    rss_python = peers.peak_rss_kib(Cmd("rss", f"{qme} --version > /dev/null", env))
    print(
        f"\npeak RSS of `qme out > /dev/null`: {rss_qme / 1024:.1f} MiB "
        f"(`qme --version`: {rss_python / 1024:.1f} MiB; the output is {args.size / MB:.0f} MB)"
    )
    print(f"\nReproduce: `{peers.reproduce()}`")


if __name__ == "__main__":
    main()
