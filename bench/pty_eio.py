"""How often a record loses the end of a quick command's output on a pty, under load.

A command writes its stderr in 40 writes and exits (as GNU ls writes its error in
four); `qme run` records it on a fresh terminal, over and over, with the CPUs busy.
Linux can answer the read of a pty with EIO while the last bytes written before the
close are not yet readable; qme once took EIO for the end, and about one record in
a few thousand kept only the first write (issue 16, item 13). The table counts the
records that lack bytes, for the work tree and a --baseline revision, taking turns.

    python bench/pty_eio.py [--runs N] [--busy K] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import pty
import sqlite3
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


def errors(home: str) -> list[bytes]:
    """Each record's stderr, read from its SQLite store (stream 1 of the chunks)."""
    with sqlite3.connect(os.path.join(home, "qme.db")) as db:
        found = {task: b"" for (task,) in db.execute("SELECT rowid FROM tasks")}
        for task, data in db.execute(
            "SELECT task, data FROM chunks WHERE stream = 1 ORDER BY rowid"
        ):
            found[task] += data
    return list(found.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="records per build (2000)")
    parser.add_argument(
        "--busy", type=int, default=os.cpu_count() or 1, help="busy loops (one per CPU)"
    )
    peers.add_baseline_option(parser)
    args = parser.parse_args()
    builds = peers.builds(args.baseline)
    homes = {b.name: tempfile.mkdtemp(prefix=f"{b.name}-", dir=peers.WORK) for b in builds}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        for _ in range(args.runs):
            for build in builds:
                run_on_a_terminal(build.tool("qme"), homes[build.name])
    finally:
        for process in busy:
            process.kill()
            process.wait()
    rows = []
    for build in builds:
        found = errors(homes[build.name])
        short = [e for e in found if e != EXPECTED]
        first_only = sum(1 for e in short if e == b"p1 ")
        rows.append([build.label("qme run"), len(found), len(short), first_only])
    print(peers.table(["build", "records", "lacking bytes", "only the first write"], rows))
    print(
        f"\n`{' '.join(COMMAND[:2])} …` ({PIECES} writes to stderr, then exit 2) on a fresh"
        f" pty each time, with {args.busy} busy loop(s); builds in turn."
    )
    baseline = f" --baseline {args.baseline}" if args.baseline else ""
    print(f"\nReproduce: `python bench/pty_eio.py --runs {args.runs} --busy {args.busy}{baseline}`")


if __name__ == "__main__":
    main()
