"""`qme ls` and `qme search` on PostgreSQL and MySQL/MariaDB against SQLite FTS5, with
the same 1,000,000 tasks (gen_tasks.py) in each, and the ratio to SQLite.

    python bench/sql.py [--tasks 1000000] [--runs 10] [--reload]

The servers: `bash scripts/sqlservers.sh start`; their URLs come from
QME_TEST_POSTGRESQL and QME_TEST_MYSQL (defaults as in tests/sqlservers.py). The
tasks are bulk-loaded once into the schema (PostgreSQL) or database (MySQL)
qme_test_bench_N, with the indexes built afterwards: COPY on PostgreSQL,
multi-row INSERTs on MySQL. A later run reuses them while the generator is
unchanged (--reload loads again). qme runs from the work tree's .venv (with the
[all] extra).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import gen_tasks  # noqa: E402
import peers  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import sqlservers  # noqa: E402
from peers import Cmd  # noqa: E402

from qme import Queue  # noqa: E402
from qme.cli import ls  # noqa: E402
from qme.store.sql import SqlStore  # noqa: E402
from qme.store.sqlschema import chunks, meta, tasks  # noqa: E402
from qme.text import plain_words, searchable  # noqa: E402

BATCH = 20_000
KINDS = sqlservers.KINDS
MARK = f"bench-{gen_tasks.VERSION}"


def _url(kind: str, name: str) -> str:
    url = sa.make_url(sqlservers.URLS[kind])
    if kind == "postgresql":
        url = url.update_query_dict({"options": f"-csearch_path={name}"})
    else:
        url = url.set(database=name)
    return url.render_as_string(hide_password=False)


def _fresh(kind: str, name: str) -> None:
    noun, cascade = ("SCHEMA", " CASCADE") if kind == "postgresql" else ("DATABASE", "")
    with sa.create_engine(sqlservers.URLS[kind], isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(sa.text(f"DROP {noun} IF EXISTS {name}{cascade}"))
        c.execute(sa.text(f"CREATE {noun} {name}"))


def _rows(n: int):
    """(seq, task columns, output, error, search texts, words) in start order."""
    for seq, (row, output, error, message) in enumerate(
        gen_tasks.make_tasks(n, random.Random(gen_tasks.SEED)), start=1
    ):
        texts = [row[2], message or "", searchable(output), searchable(error)]
        yield seq, row, output, error, texts, plain_words("\n".join(texts))


def _load_postgresql(store: SqlStore, n: int) -> None:
    raw = store.engine.raw_connection()
    pg = raw.driver_connection
    columns = ", ".join(f'"{c}"' for c in ("seq", "uuid", *gen_tasks.FILLED))
    with pg.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE stage (task bigint, command text, message text, output text, "
            "error text, words text)"
        )
        rows = _rows(n)
        while batch := list(itertools.islice(rows, BATCH)):
            with cur.copy(f"COPY qme_tasks ({columns}) FROM STDIN") as copy:
                for seq, row, *_ in batch:
                    copy.write_row((seq, row[0][6:], *row))
            with cur.copy("COPY qme_chunks (task, stream, data) FROM STDIN") as copy:
                for seq, _, output, error, *_ in batch:
                    copy.write_row((seq, 0, output))
                    if error:
                        copy.write_row((seq, 1, error))
            with cur.copy("COPY stage FROM STDIN") as copy:
                for seq, _, _, _, texts, words in batch:
                    copy.write_row((seq, *texts, words))
            _progress(batch[-1][0], n)
        cur.execute(
            "INSERT INTO qme_search (task, command, message, output, error, tsv) "
            "SELECT task, command, message, output, error, to_tsvector('simple', words) FROM stage"
        )
        for table in ("qme_tasks", "qme_chunks"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), "
                f"(SELECT max(seq) FROM {table}))"
            )
    pg.commit()
    raw.close()


def _load_mysql(store: SqlStore, n: int) -> None:
    rows = _rows(n)
    names = ("command", "message", "output", "error")
    while batch := list(itertools.islice(rows, BATCH)):
        with store.engine.begin() as conn:
            conn.execute(
                tasks.insert(),
                [
                    {"seq": seq, "uuid": row[0][6:], **dict(zip(gen_tasks.FILLED, row))}
                    for seq, row, *_ in batch
                ],
            )
            conn.execute(
                chunks.insert(),
                [
                    {"task": seq, "stream": stream, "data": data}
                    for seq, _, output, error, *_ in batch
                    for stream, data in ((0, output), (1, error))
                    if data or not stream
                ],
            )
            conn.execute(
                store.texts.insert(),
                [
                    {"task": seq, **dict(zip(names, texts)), "words": words}
                    for seq, _, _, _, texts, words in batch
                ],
            )
            _progress(batch[-1][0], n)


def _progress(done: int, n: int) -> None:
    print(f"\r[bench] {done:,}/{n:,} tasks", end="", file=sys.stderr, flush=True)


def server_store(kind: str, n: int, reload: bool) -> str:
    """The URL of a database of kind holding the n tasks (loaded when missing)."""
    name = f"qme_test_bench_{n}"
    url = _url(kind, name)
    if not reload:
        try:
            with sa.create_engine(url).connect() as conn:
                done = conn.execute(sa.select(meta.c.value).where(meta.c.name == MARK)).scalar()
            if done == n:
                return url
        except sa.exc.SQLAlchemyError:
            pass
    _fresh(kind, name)
    store = SqlStore(kind, url)  # qme's own schema
    indexes = [*tasks.indexes, *chunks.indexes]
    if kind == "postgresql":  # InnoDB's FULLTEXT index, dropped, would not see new rows
        indexes += store.texts.indexes
    started = time.perf_counter()
    with store.engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    (_load_postgresql if kind == "postgresql" else _load_mysql)(store, n)
    loaded = time.perf_counter()
    with store.engine.begin() as conn:
        for index in indexes:
            index.create(conn)
        analyze = "ANALYZE" if kind == "postgresql" else "ANALYZE TABLE qme_tasks, qme_search"
        conn.execute(sa.text(analyze))
        conn.execute(meta.insert().values(name=MARK, value=n))
    print(
        f"\n[bench] {kind}: {n:,} tasks loaded in {loaded - started:.0f} s, "
        f"indexed in {time.perf_counter() - loaded:.0f} s",
        file=sys.stderr,
    )
    store.close()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="store size (default 1M)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each (default 10)")
    parser.add_argument("--reload", action="store_true", help="load the servers again")
    args = parser.parse_args()

    home, info = gen_tasks.store(args.tasks)
    qme = str(peers.ROOT / ".venv" / "bin" / "qme")
    empty = str(peers.fresh_dir("sql-empty-"))
    stores = {"sqlite": {"QME_HOME": str(home)}}
    empties = {"sqlite": {"QME_HOME": empty}}
    for kind in sqlservers.KINDS:
        url = server_store(kind, args.tasks, args.reload)
        stores[kind] = {"QME_HOME": empty, "QME_DATABASE": url}
        empties[kind] = {"QME_HOME": empty, "QME_DATABASE": _url(kind, "qme_test_bench_empty")}
        _fresh(kind, "qme_test_bench_empty")

    common, rare = info["common_word"], min(info["rare_words"], key=info["rare_words"].get)
    queries = {
        "`qme ls`": lambda q: q.list(limit=ls.DEFAULT_LIMIT),
        "`qme ls --status failed`": lambda q: q.list(status="failed", limit=ls.DEFAULT_LIMIT),
        f"`qme search {rare}` (in {info['rare_words'][rare]} tasks)": lambda q: q.search(rare),
        f"`qme search {common}` (in every task)": lambda q: q.search(common),
        f"`qme search '{gen_tasks.SHORT_PREFIX}*'`": lambda q: q.search(
            gen_tasks.SHORT_PREFIX + "*"
        ),
        f"`qme search --rank {rare}`": lambda q: q.search(rare, rank=True),
        f"`qme search --rank {common}`": lambda q: q.search(common, rank=True),
    }
    load_before = peers.load()
    startup = peers.time_commands(
        [Cmd(kind, [qme, "ls"], peers.env(HOME=empty, **empties[kind])) for kind in stores],
        runs=args.runs,
        warmup=1,
    )
    medians = {kind: _query_medians(stores[kind], queries, args.runs) for kind in stores}

    rows = [
        [
            "start-up: the whole `qme ls` on an empty store",
            *(f"{startup[kind].median_ms:.0f}" for kind in stores),
            *(_ratio(startup[k].median_ms / startup["sqlite"].median_ms) for k in KINDS),
        ]
    ]
    for label in queries:
        base = medians["sqlite"][label]
        rows.append(
            [
                label,
                *(f"{medians[kind][label]:.1f}" for kind in stores),
                *(_ratio(medians[kind][label] / base) for kind in KINDS),
            ]
        )
    peers.header(f"PostgreSQL and MariaDB against SQLite, {args.tasks:,} tasks", load_before)
    headers = ["", "SQLite ms", "PostgreSQL ms", "MariaDB ms", "PostgreSQL / SQLite"]
    print(peers.table([*headers, "MariaDB / SQLite"], rows))
    print(
        "\nFirst row: the whole command, median ms (Python, qme and, for the servers, "
        "SQLAlchemy, the driver and a connection). Other rows: the query itself as "
        "`qme ls` / `qme search` make it (Queue.list / Queue.search, 20 hits), median ms "
        "in one process with its connection open: what each costs beyond start-up. "
        f"Servers on this machine (127.0.0.1), default settings. Medians of {args.runs} "
        f"runs.\n\nReproduce: `bash scripts/sqlservers.sh start && {peers.reproduce()}`"
    )


def _ratio(value: float) -> str:
    return f"{value:.1f}×" if value >= 0.1 else f"{value:.3f}×"


def _query_medians(env: dict[str, str], queries: dict, runs: int) -> dict[str, float]:
    queue = Queue(config_dir=env["QME_HOME"], database=env.get("QME_DATABASE"))
    medians = {}
    for label, query in queries.items():
        query(queue)  # warm-up
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            query(queue)
            times.append((time.perf_counter() - started) * 1000)
        medians[label] = statistics.median(times)
    queue.close()
    return medians


if __name__ == "__main__":
    main()
