"""The PostgreSQL and MySQL/MariaDB stores on real servers (tests/sqlservers.py finds
them): configuration, failures without passwords, many writers and migrators at
once, full-text details, and PostgreSQL's LISTEN/NOTIFY reaching the dashboard.
The store contract itself runs on them in tests/test_store_contract.py."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlservers
from helpers import ok, one_error_line
from test_store_contract import finished, make_task

from qme import Queue
from qme.web.hub import Hub

PASSWORD = "qme-test-pw"


def url_parts(url: str) -> tuple[str, str]:
    """(scheme, the rest) of a test server's URL."""
    scheme, _, rest = url.partition("://")
    return scheme, rest


@pytest.fixture(params=sqlservers.KINDS)
def server(request, qme_home):
    """(kind, URL of an empty database of this test's own)."""
    return request.param, sqlservers.database_url(request.param, qme_home)


# -- configuration ----------------------------------------------------------------------------


def test_config_names_the_server_and_the_environment_gives_the_rest(server, qme, qme_home):
    kind, url = server
    scheme, rest = url_parts(url)
    short = {"postgresql": "postgresql", "mysql": "mysql+pymysql"}[kind]
    assert "Saved database = " + short in ok(qme("config", "--database", short))
    assert PASSWORD not in (qme_home / "config.ini").read_text()
    env = {"QME_DATABASE_STRING": rest}
    ok(qme("run", "-m", "shared", "echo", "from", "afar", env=env))
    (task,) = json.loads(ok(qme("ls", "--json", env=env)))
    assert (task["command"], task["message"], task["status"]) == (
        "echo from afar",
        "shared",
        "complete",
    )
    shown = ok(qme("config", env=env))
    assert f"store:  {kind} at " in shown and PASSWORD not in shown


def test_a_full_url_in_config_ini_warns_and_is_readable_by_the_owner_only(server, qme, qme_home):
    _, url = server
    saved = qme("config", "--database", url)
    assert saved.returncode == 0
    warnings = saved.stderr.decode().splitlines()
    assert len(warnings) == 1 and "holds a password" in warnings[0]
    assert PASSWORD not in saved.stdout.decode() + saved.stderr.decode()
    assert stat.S_IMODE((qme_home / "config.ini").stat().st_mode) == 0o600
    ok(qme("run", "true"))
    assert len(json.loads(ok(qme("ls", "--json")))) == 1


def test_qme_database_for_one_command(server, qme):
    kind, url = server
    scheme, rest = url_parts(url)
    env = {"QME_DATABASE": kind, "QME_DATABASE_STRING": rest}
    ok(qme("run", "echo", "once", env=env))
    assert ok(qme("search", "once", env=env)).strip()
    assert json.loads(ok(qme("ls", "--json"))) == []  # the default store is untouched


def test_ls_filters_host_and_user(server, qme):
    _, url = server
    queue = Queue(database=url)
    for host, user in (("login1", "ada"), ("login2", "ada"), ("login1", "grace")):
        queue.store.add(make_task(f"on {host} by {user}", host=host, user=user))
    env = {"QME_DATABASE": url}
    listed = json.loads(ok(qme("ls", "--json", "--host", "login1", "--user", "grace", env=env)))
    assert [t["command"] for t in listed] == ["on login1 by grace"]
    assert len(queue.list(host="login1")) == 2 and len(queue.list(user="ada")) == 2
    queue.close()


# -- failures ---------------------------------------------------------------------------------


def broken_urls(kind: str, url: str) -> dict[str, str]:
    scheme, rest = url_parts(url)
    credentials, _, place = rest.partition("@")
    host = place.split("/")[0].split(":")[0]
    user = credentials.split(":")[0]
    return {
        "server down": f"{scheme}://{credentials}@{host}:1/qme_test",
        "wrong password": f"{scheme}://{user}:not-{PASSWORD}@{place}",
        "database missing": f"{scheme}://{credentials}@{host}/qme_nosuchdb",
    }


@pytest.mark.parametrize("failure", ["server down", "wrong password", "database missing"])
def test_failures_are_one_line_without_the_password(server, qme, failure):
    kind, url = server
    env = {"QME_DATABASE": broken_urls(kind, url)[failure]}
    for args in (["ls"], ["get", "--last"], ["search", "x"], ["clear", "--force"]):
        result = qme(*args, env=env)
        line = one_error_line(result)
        assert f"{kind} store" in line and PASSWORD not in result.stderr.decode(), line
    ran = qme("run", "sh", "-c", "echo still runs; exit 3", env=env)
    assert ran.returncode == 3 and ran.stdout == b"still runs\n"
    # One line, which says where the record waits (qme/store/spool.py).
    [warning] = ran.stderr.decode().splitlines()
    assert warning.startswith("qme: warning: ") and "spool" in warning, warning
    assert PASSWORD not in warning


def test_a_missing_extra_names_the_pip_command(server, qme_home):
    kind, url = server
    for module in ("sqlalchemy", "psycopg" if kind == "postgresql" else "pymysql"):
        # The module made unimportable, as on a machine without the extra.
        code = (
            f"import sys; sys.modules[{module!r}] = None; "
            "from qme.cli import main; sys.exit(main())"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, "ls"],
            capture_output=True,
            env={**os.environ, "QME_DATABASE": url},
        )
        extra = "postgres" if kind == "postgresql" else "mysql"
        assert f"pip install 'qme[{extra}]'" in one_error_line(result)


# -- many at once -----------------------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_writers_lose_nothing(server, qme):
    _, url = server
    env = {"QME_DATABASE": url}
    ok(qme("ls", env=env))  # the schema first: migrating at once has its own test
    count = 24

    def run(i):
        return qme("run", "sh", "-c", f"echo writer {i}; echo oops {i} >&2", env=env)

    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(run, range(count)))
    assert [(r.returncode, r.stderr) for r in results] == [
        (0, f"oops {i}\n".encode()) for i in range(count)
    ]
    queue = Queue(database=url)
    tasks = queue.list()
    assert sorted(t.command for t in tasks) == sorted(
        f"sh -c 'echo writer {i}; echo oops {i} >&2'" for i in range(count)
    )
    for task in tasks:
        full = queue.get(task.id)
        number = task.command.split()[4].rstrip(";")
        assert (full.output, full.error) == (
            f"writer {number}\n".encode(),
            f"oops {number}\n".encode(),
        )
    assert len(queue.search("writer", limit=100)) == count
    queue.close()


def test_several_qme_migrate_an_empty_database_at_once(server, qme):
    _, url = server
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: qme("ls", env={"QME_DATABASE": url}), range(6)))
    assert [r.returncode for r in results] == [0] * 6, [r.stderr for r in results]
    import sqlalchemy as sa

    from qme.store.sqlschema import MIGRATIONS

    queue = Queue(database=url)
    with queue.store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, value FROM qme_meta ORDER BY name")).all()
    assert [tuple(r) for r in rows] == [("changes", 0), ("schema", len(MIGRATIONS))]
    queue.close()


# -- full text --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", *sqlservers.KINDS])
def test_words_split_as_fts5_splits_them(kind, tmp_path):
    store = sqlservers.store(kind, tmp_path) if kind != "sqlite" else None
    if store is None:
        from qme.store.sqlite import SqliteStore

        store = SqliteStore(tmp_path / "qme.db")
    task = finished(
        store, "ls /usr/local/bin", b"snake_case x.y on a Caf\xc3\xa9 de la gare\n", message="to do"
    )

    def found(*words):
        return [h.task.id for h in store.search(list(words), executor=None, limit=5, rank=False)]

    for words in (["bin"], ["local", "usr"], ["case"], ["snake"], ["y"], ["x"], ["a"], ["on"]):
        assert found(*words) == [task.id], words  # short words, stopwords, parts of paths
    assert found("cafe") == [task.id]  # diacritics do not matter
    assert found("to", "do", "la", "gare") == [task.id]
    assert found("b*") == [task.id] and found("ca*") == [task.id]
    assert found("nope") == []
    store.close()


# -- live updates -----------------------------------------------------------------------------


def test_postgresql_announces_changes_made_by_another_process(qme_home, qme):
    url = sqlservers.database_url("postgresql", qme_home)
    queue = Queue(database=url)
    listener = queue.listen()
    assert listener is not None and listener.wait(0.2) is False
    env = {"QME_DATABASE": url}
    ok(qme("run", "true", env=env))
    started = time.monotonic()
    assert listener.wait(10) is True
    assert time.monotonic() - started < 1
    listener.close()

    hub = Hub(queue, period=60)  # polling alone would take a minute
    hub.start()
    subscriber = hub.subscribe()
    try:
        ok(qme("run", "echo", "live", env=env))
        done = time.monotonic()
        text = subscriber.messages.get(timeout=10)
        assert time.monotonic() - done < 2
        assert json.loads(text)["tasks"][0]["command"] == "echo live"
    finally:
        hub.stop()
        queue.close()


def test_the_dashboard_pushes_a_task_recorded_elsewhere_at_once(qme_home, qme):
    """`qme start` on gevent: the listener must wait in gevent's loop, not block it."""
    from test_web import TOKEN, Dashboard

    env = {"QME_DATABASE": sqlservers.database_url("postgresql", qme_home)}
    served = Dashboard(qme_home, env={**env, "QME_SOCKET_UPDATE_SECONDS": "60"})
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n"
    )
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
            conn.sendall(handshake.encode())
            assert b" 101 " in conn.recv(4096).split(b"\r\n")[0]
            ok(qme("run", "echo", "pushed", "live", env=env))
            received = b""
            deadline = time.monotonic() + 5  # polling alone would take 60 s
            while b"pushed live" not in received and time.monotonic() < deadline:
                received += conn.recv(65536)
            assert b"pushed live" in received
    finally:
        assert served.stop() == 0


def test_mysql_has_no_announcements_and_is_polled(qme_home):
    queue = Queue(database=sqlservers.database_url("mysql", qme_home))
    assert queue.listen() is None and queue.data_version() is not None
    queue.close()
