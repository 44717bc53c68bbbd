"""How often a record loses the end of a quick command's output on a pty, under load.

A command writes its stderr in 40 writes and exits (as GNU ls writes its error in
four); `qme run` records it on a fresh terminal, over and over, with the CPUs busy.
Linux can answer the read of a pty with EIO while the last bytes written before the
close are not yet readable; qme once took EIO for the end, and about one record in
a few thousand kept only the first write (issue 16, item 13). The table counts the
records that lack bytes, for the work tree and a --baseline revision, taking turns.
With --cold (root) the page cache is dropped before each pair of runs: qme and the
command then start from the disk, and the loss is far likelier.

    python bench/pty_eio.py [--runs N] [--busy K] [--cold] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
import sys
import tempfile

import peers

PIECES = 40
COMMAND = [
    "perl",
    "-e",
    f'syswrite STDERR, "p$_ " for 1..{PIECES}; syswrite STDERR, "\\n"; exit 2',
]
EXPECTED = ("".join(f"p{i} " for i in range(1, PIECES + 1)) + "\r\n").encode()


def run_on_a_terminal(qme: str, home: str) -> None:
    """`qme run COMMAND` on a fresh pty, read to its end."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(HOME=home, QME_HOME=home)
        os.execv(qme, [qme, "run", *COMMAND])
    try:
        while os.read(fd, 65536):
            pass
    except OSError:  # EIO: qme has exited (qme itself reads on, see pump.py)
        pass
    os.close(fd)
    os.waitpid(pid, 0)


# Run by each build's own Python: every record's stderr, hex, one a line.
READ_ERRORS = """
import sys
from qme import Queue
with Queue(config_dir=sys.argv[1]) as queue:
    for task in queue.list():
        print(queue.read(task.id, "error").hex())
"""


def drop_page_cache() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as control:
        control.write("3")


def errors(build: peers.Build, home: str) -> list[bytes]:
    """Each record's stderr, read through the build's own Queue."""
    found = subprocess.run(
        [build.tool("python"), "-c", READ_ERRORS, home],
        capture_output=True,
        text=True,
        check=True,
        env=peers.env(HOME=home, QME_HOME=home),
    )
    return [bytes.fromhex(line) for line in found.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="records per build (2000)")
    parser.add_argument(
        "--busy", type=int, default=os.cpu_count() or 1, help="busy loops (one per CPU)"
    )
    parser.add_argument(
        "--cold", action="store_true", help="drop the page cache before each pair (root)"
    )
    peers.add_baseline_option(parser)
    args = parser.parse_args()
    builds = peers.builds(args.baseline)
    homes = {b.name: tempfile.mkdtemp(prefix=f"{b.name}-", dir=peers.WORK) for b in builds}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        for run in range(args.runs):
            if args.cold:
                drop_page_cache()
            for build in builds if run % 2 == 0 else builds[::-1]:  # each goes first in turn
                run_on_a_terminal(build.tool("qme"), homes[build.name])
    finally:
        for process in busy:
            process.kill()
            process.wait()
    rows = []
    for build in builds:
        found = errors(build, homes[build.name])
        short = [e for e in found if e != EXPECTED]
        first_only = sum(1 for e in short if e == b"p1 ")
        rows.append([build.label("qme run"), len(found), len(short), first_only])
    print(peers.table(["build", "records", "lacking bytes", "only the first write"], rows))
    print(
        f"\n`{' '.join(COMMAND[:2])} …` ({PIECES} writes to stderr, then exit 2) on a fresh"
        f" pty each time, with {args.busy} busy loop(s)"
        f"{', the page cache dropped before each pair' if args.cold else ''}; builds in turn."
    )
    options = (" --cold" if args.cold else "") + (
        f" --baseline {args.baseline}" if args.baseline else ""
    )
    print(f"\nReproduce: `python bench/pty_eio.py --runs {args.runs} --busy {args.busy}{options}`")


if __name__ == "__main__":
    main()
