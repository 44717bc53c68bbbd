"""The history search (Ctrl-R, `qme history`, the pickers of rerun/get/clear/exec) on a
store of 1,000,000 tasks (made by gen_tasks.py): the time from a query to its first
results, through the code path the screen uses (qme.cli.finder.find), as a person
types it, with and without filters.

    python bench/picker.py [--tasks 1000000] [--runs 5]

Target: first results in under 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # qme from this work tree
import gen_tasks  # noqa: E402
import peers  # noqa: E402

from qme import Queue  # noqa: E402
from qme.cli.finder import Scope, find  # noqa: E402

TARGET_MS = 50
# What a person types, key by key, then whole words, rare words, no words.
QUERIES = ["", "m", "ma", "mak", "make", "make ", "make te", "make tes", "git pu", "pytest -x"]
QUERIES += ["elapsed", "zeppelin", "quokka", "error", "kubectl logs", "fai"]
FILTERS = [set(), {"directory"}, {"host"}, {"failed"}, {"directory", "failed"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each query")
    args = parser.parse_args()
    home, _ = gen_tasks.store(args.tasks)
    scope = Scope(cwd=gen_tasks.CWDS[1], session="", host=gen_tasks.HOSTS[0])
    peers.header(f"History search on a store of {args.tasks:,} tasks")
    print("| query | filters | results | first ms (median) | max ms |")
    print("|---|---|---:|---:|---:|")
    worst = []
    with Queue(config_dir=home) as queue:
        queue.list(limit=1)  # the store opened, as the screen has it before the first key
        for filters in FILTERS:
            for query in QUERIES:
                times, found = [], []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    found = find(queue, query, filters, scope)
                    times.append((time.perf_counter() - started) * 1000)
                median = statistics.median(times)
                worst.append(median)
                shown = ", ".join(sorted(filters)) or "none"
                print(f"| `{query}` | {shown} | {len(found)} | {median:.1f} | {max(times):.1f} |")
    within = sum(1 for t in worst if t < TARGET_MS)
    print(
        f"\n{within} of {len(worst)} query/filter pairs under {TARGET_MS} ms (median of "
        f"{args.runs}); median of medians {statistics.median(worst):.1f} ms.\n\n"
        f"Reproduce: `{peers.reproduce()}`"
    )


if __name__ == "__main__":
    main()
