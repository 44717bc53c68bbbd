"""Generate a qme SQLite store of N realistic tasks, fast, for bench/query.py.

Rows go straight into qme's own schema (made by `qme.store.sqlite.SqliteStore`):
`tasks`, `chunks` (task = tasks.rowid, stream 0 = output, 1 = error) and the FTS5
table `search` (rowid = tasks.rowid), with executemany in big transactions.

    python bench/gen_tasks.py [--tasks 1000000] [--out DIR] [--force]

Writes DIR/qme.db and DIR/meta.json (the words bench/query.py searches for).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # qme from this work tree
import peers  # noqa: E402

from qme.store.sqlite import COLUMNS, SqliteStore  # noqa: E402

SEED = 2024
VERSION = 3  # bump when the generated data changes
BATCH = 50_000
YEAR = 365 * 24 * 3600
COMMON_WORD = "elapsed"  # the last line of every task's output: "elapsed 1.23s"
RARE_WORDS = {"quokka": 3, "zeppelin": 30}  # word -> in how many tasks' output
SHORT_PREFIX = "ba"  # a syllable that starts ~90 of the made-up words
STATUSES = [("complete", 90), ("failed", 8), ("cancelled", 2)]

# Programs and arguments; expanded into a fixed vocabulary of ~200 commands.
PROGRAMS = {
    "make": ["", "test", "build", "clean", "install", "-j2", "docs", "lint"],
    "pytest": ["", "-x", "-q tests", "tests/test_store.py", "-k search", "--lf", "-vv"],
    "git": [
        "status",
        "pull",
        "push",
        "fetch --all",
        "log --oneline -20",
        "diff",
        "gc",
        "rebase -i main",
        "checkout main",
        "stash pop",
    ],
    "python": [
        "train.py --epochs 10",
        "train.py --epochs 50 --lr 0.001",
        "setup.py sdist",
        "-m http.server",
        "manage.py migrate",
        "evaluate.py --split test",
        "scripts/export.py results.csv",
        "-m pip list",
    ],
    "pip": ["install -r requirements.txt", "install -e .", "freeze", "list --outdated"],
    "ls": ["", "-la", "-lh /var/log", "-R src"],
    "du": ["-sh .", "-sh *", "-h --max-depth=1 /data"],
    "df": ["-h", "-i"],
    "rsync": [
        "-av data/ backup:/srv/data/",
        "-avz --delete site/ web:/var/www/",
        "-a results/ cluster:/scratch/results/",
    ],
    "docker": ["ps", "build -t app .", "compose up -d", "logs -f web", "images", "system prune -f"],
    "kubectl": [
        "get pods",
        "get pods -A",
        "describe pod web-0",
        "logs job/nightly",
        "apply -f deploy.yaml",
        "rollout status deploy/web",
    ],
    "npm": ["install", "test", "run build", "run lint", "ci", "audit"],
    "cargo": ["build", "build --release", "test", "clippy", "fmt --check"],
    "go": ["build ./...", "test ./...", "vet ./...", "mod tidy"],
    "sbatch": ["job.sh", "--array=1-100 sweep.sh", "-p gpu train.slurm"],
    "squeue": ["-u bench", "--me", "-p gpu"],
    "sacct": ["-j 81234", "--starttime today"],
    "grep": ["-rn TODO src", "-ri error logs/", "-c fail results.txt"],
    "find": [". -name '*.py'", "/data -mtime -1", ". -size +100M"],
    "tar": ["czf backup.tgz data", "xzf release.tgz", "tf archive.tar"],
    "curl": ["-sS localhost:8080/health", "-O https://example.org/data.csv"],
    "ssh": ["cluster hostname", "web uptime", "db 'df -h'"],
    "ffmpeg": ["-i in.mp4 out.webm", "-i talk.mov -vn talk.mp3"],
    "convert": ["logo.png logo.jpg", "-resize 50% big.png small.png"],
    "Rscript": ["analysis.R", "plots.R --out figures"],
    "snakemake": ["-j2", "--dry-run", "-j2 all"],
    "nextflow": ["run main.nf", "run main.nf -resume"],
    "terraform": ["plan", "apply -auto-approve", "init"],
    "ansible-playbook": ["site.yml", "-i hosts deploy.yml --check"],
    "psql": ["-c 'select count(*) from events'", "-f migrate.sql"],
    "sqlite3": ["app.db .tables", "app.db 'vacuum'"],
    "uptime": [""],
    "free": ["-h"],
    "nvidia-smi": ["", "-l 1"],
    "htop": [""],
    "vim": ["README.md", "setup.cfg"],
    "sleep": ["1", "10", "60"],
    "echo": ["hello", "$PATH"],
    "bash": ["run.sh", "deploy.sh staging", "scripts/nightly.sh"],
    "./configure": ["--prefix=/opt/app", ""],
    "jupyter": ["lab", "nbconvert --execute report.ipynb", "notebook --no-browser"],
    "ruff": ["check .", "format .", "check --fix src"],
    "mypy": ["src", "--strict qme"],
    "black": [".", "--check src"],
    "tox": ["", "-e py311", "-p auto"],
    "conda": ["activate ml", "env update -f environment.yml", "list"],
    "wget": ["-c https://example.org/genome.fa.gz", "-r -np docs/"],
    "gzip": ["-9 big.log", "-d data.csv.gz"],
    "scp": ["results.tgz cluster:~", "web:/var/log/nginx/access.log ."],
    "systemctl": ["status nginx", "restart app", "list-units --failed"],
    "journalctl": ["-u app -n 100", "-f", "--since today"],
    "top": ["-b -n 1"],
    "ps": ["aux", "-ef"],
    "kill": ["-9 4242", "%1"],
    "mkdir": ["-p out/figures", "build"],
    "cp": ["-r data data.bak", "config.example config.ini"],
    "mv": ["out.log old.log", "draft.md final.md"],
    "rm": ["-rf build", "*.pyc"],
    "cat": ["log.txt", "/proc/cpuinfo", "results.csv"],
    "tail": ["-f app.log", "-n 50 train.log"],
    "head": ["-n 20 data.csv"],
    "wc": ["-l *.py", "-c data.bin"],
    "sort": ["-u names.txt", "-k2 -n scores.tsv"],
    "awk": ["'{print $1}' access.log", "-F, '{s+=$3} END {print s}' sales.csv"],
    "sed": ["-i s/foo/bar/g config.ini", "-n 1,10p notes.txt"],
    "latexmk": ["-pdf thesis.tex", "-c"],
    "pandoc": ["notes.md -o notes.pdf", "-s talk.md -t revealjs"],
    "hugo": ["server", "--minify"],
    "gcc": ["-O2 -o main main.c", "-g -Wall test.c"],
    "cmake": ["-B build", "--build build -j2"],
    "mpirun": ["-n 2 ./simulate", "-np 2 python mpi_train.py"],
    "singularity": ["exec img.sif python run.py", "pull docker://ubuntu"],
    "aws": ["s3 sync out/ s3://bucket/out/", "s3 ls s3://bucket"],
    "gh": ["pr list", "run watch", "issue list"],
}
CWDS = [
    f"/home/bench/{p}"
    for p in (
        "",
        "src/app",
        "src/lib",
        "data",
        "projects/ml",
        "projects/web",
        "papers/thesis",
        "tmp",
        "scratch",
    )
]
HOSTS = ["laptop", "workstation", "login1", "login2", "node042"]
SYLLABLES = [c + v for c in "bdfgklmnprstv" for v in "aeiou"]
COMMON_WORDS = [
    "the",
    "to",
    "of",
    "and",
    "in",
    "ok",
    "is",
    "for",
    "on",
    "done",
    "file",
    "line",
    "error",
    "warning",
    "build",
    "test",
    "passed",
    "failed",
    "running",
    "step",
    "total",
    "info",
    "debug",
    "loss",
    "epoch",
    "accuracy",
    "time",
    "bytes",
    "sent",
    "received",
    "copied",
    "updated",
    "created",
    "deleted",
    "skipped",
]


def vocabulary(rng: random.Random) -> list[str]:
    """~5,000 words: common English log words first, then made-up ones (no q or z,
    so the rare words never appear by chance)."""
    made_up = {"".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))) for _ in range(6000)}
    return COMMON_WORDS + sorted(made_up - set(COMMON_WORDS))[:5000]


def commands() -> list[tuple[str, str]]:
    """(command, argv as JSON) for every program and argument string."""
    import shlex

    result = []
    for program, variants in PROGRAMS.items():
        for args in variants:
            command = f"{program} {args}".strip()
            result.append((command, json.dumps(shlex.split(command))))
    return result


# The columns make_tasks fills, in its rows' order; columns added to qme's schema
# later (the shell session, …) keep their defaults.
FILLED = (
    "id",
    "executor",
    "command",
    "argv",
    "cwd",
    "user",
    "host",
    "started",
    "status",
    "pid",
    "ended",
    "returncode",
    "signal",
    "message",
    "max_rss",
    "cpu_user",
    "cpu_system",
    "term_cols",
    "term_rows",
    "output_size",
    "error_size",
    "rerun_of",
    "data",
    "recorder",
)


def make_tasks(n: int, rng: random.Random):
    """Yield (task row, output bytes, error bytes, message) in rowid order."""
    words = vocabulary(rng)
    zipf = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    cmds = commands()
    cmd_weights = list(itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(cmds))))
    statuses, status_weights = zip(*STATUSES)
    rare = {i: w for w, count in RARE_WORDS.items() for i in rng.sample(range(n), min(count, n))}
    now = time.time()
    starts = sorted(now - YEAR + rng.random() * YEAR for _ in range(n))
    choices, random_ = rng.choices, rng.random
    for i, started in enumerate(starts):
        command, argv = choices(cmds, cum_weights=cmd_weights)[0]
        status = choices(statuses, weights=status_weights)[0]
        duration = rng.expovariate(1 / 20)
        lines = [
            " ".join(choices(words, cum_weights=zipf, k=rng.randint(3, 12)))
            for _ in range(rng.randint(1, 6))
        ]
        if i in rare:
            lines.insert(0, f"note: {rare[i]} {choices(words, cum_weights=zipf)[0]}")
        lines.append(f"{COMMON_WORD} {duration:.2f}s")
        output = ("\n".join(lines) + "\n").encode()
        error = b""
        returncode = 0
        if status == "failed":
            returncode = choices((1, 2, 127), weights=(80, 15, 5))[0]
            error = f"error: {' '.join(choices(words, cum_weights=zipf, k=6))}\n".encode()
        elif status == "cancelled":
            returncode = -2
        message = " ".join(choices(words, k=4)) if random_() < 0.02 else None
        uuid = "%032x" % (rng.getrandbits(128) & ~(0xF << 76) | (4 << 76))
        task_id = f"shell-{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"
        values = {
            "id": task_id,
            "executor": "shell",
            "command": command,
            "argv": argv,
            "cwd": choices(CWDS)[0],
            "user": "bench",
            "host": choices(HOSTS)[0],
            "started": started,
            "status": status,
            "pid": 10_000 + i % 90_000,
            "ended": started + duration,
            "returncode": returncode,
            "signal": 2 if status == "cancelled" else None,
            "message": message,
            "max_rss": rng.randint(2, 500) << 20,
            "cpu_user": duration * 0.7,
            "cpu_system": duration * 0.1,
            "term_cols": 120,
            "term_rows": 40,
            "output_size": len(output),
            "error_size": len(error),
            "data": "{}",
        }
        row = tuple(values.get(column) for column in FILLED)
        yield row, output, error, message


def generate(n: int, out: Path) -> None:
    db_path = out / "qme.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    SqliteStore(db_path).close()  # qme's own schema, at qme's schema version

    import sqlite3

    db = sqlite3.connect(db_path, isolation_level=None)
    # A bulk load: no journal, no syncing, a big cache; WAL again at the end, as qme has it.
    for pragma in (
        "journal_mode = OFF",
        "synchronous = OFF",
        "cache_size = -1000000",
        "temp_store = MEMORY",
    ):
        db.execute(f"PRAGMA {pragma}")
    insert_task = (
        f"INSERT INTO tasks (rowid, {', '.join(FILLED)}) "
        f"VALUES ({', '.join('?' * (len(FILLED) + 1))})"
    )
    insert_chunk = "INSERT INTO chunks (task, stream, data) VALUES (?, ?, ?)"
    insert_search = (
        "INSERT INTO search (rowid, command, message, output, error) VALUES (?, ?, ?, ?, ?)"
    )
    started = time.perf_counter()
    tasks = make_tasks(n, random.Random(SEED))
    for first in range(1, n + 1, BATCH):
        batch = list(itertools.islice(tasks, BATCH))
        rowids = range(first, first + len(batch))
        db.execute("BEGIN")
        db.executemany(insert_task, ((r, *t[0]) for r, t in zip(rowids, batch)))
        db.executemany(
            insert_chunk,
            itertools.chain(
                ((r, 0, t[1]) for r, t in zip(rowids, batch)),
                ((r, 1, t[2]) for r, t in zip(rowids, batch) if t[2]),
            ),
        )
        db.executemany(
            insert_search,
            ((r, t[0][2], t[3] or "", t[1].decode(), t[2].decode()) for r, t in zip(rowids, batch)),
        )
        db.execute("COMMIT")
        done = first + len(batch) - 1
        rate = done / (time.perf_counter() - started)
        print(f"\r[bench] {done:,}/{n:,} tasks ({rate:,.0f}/s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("ANALYZE")
    db.close()


def store(n: int, out: Path | None = None, force: bool = False) -> tuple[Path, dict]:
    """The store of n tasks (made if missing): (its QME_HOME, its meta)."""
    out = out or peers.WORK / f"store-{n}"
    meta_file = out / "meta.json"
    meta = {
        "tasks": n,
        "seed": SEED,
        "version": VERSION,
        "common_word": COMMON_WORD,
        "rare_words": RARE_WORDS,
        "columns": COLUMNS,
    }
    if not force and meta_file.exists() and json.loads(meta_file.read_text()) == meta:
        return out, meta
    out.mkdir(parents=True, exist_ok=True)
    meta_file.unlink(missing_ok=True)
    start = time.perf_counter()
    generate(n, out)
    meta_file.write_text(json.dumps(meta, indent=1))
    size = os.path.getsize(out / "qme.db")
    print(
        f"[bench] {n:,} tasks in {time.perf_counter() - start:.0f} s, "
        f"{size / (1 << 20):,.0f} MiB: {out / 'qme.db'}",
        file=sys.stderr,
    )
    return out, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument("--out", type=Path, help="QME_HOME to write (default bench/.work/store-N)")
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    args = parser.parse_args()
    home, meta = store(args.tasks, args.out, args.force)
    print(
        f"QME_HOME={home}  (common word: {meta['common_word']}; rare: "
        f"{', '.join(f'{w} in {c}' for w, c in meta['rare_words'].items())})"
    )


if __name__ == "__main__":
    main()
