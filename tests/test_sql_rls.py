"""A PostgreSQL store shared by many users, each seeing only their own tasks
(`qme admin init-postgres`, qme/store/pgsecurity.py): two real login roles and a
group role on the suite's server, each role reaching the store through `qme`,
the dashboard's REST API and websocket, and plain `psql` with its own password.
MySQL/MariaDB, SQLite and the filesystem refuse to share, in one line."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import time

import pytest
import sqlservers
from helpers import ok, one_error_line, unavailable

pytestmark = pytest.mark.slow  # a few dozen qme processes against a server


def superuser_sql(sql: str) -> str:
    """sql run by the server's superuser (roles are the cluster's, not a schema's)."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        unavailable("creating PostgreSQL roles needs root (runuser -u postgres psql)")
    command = ["runuser", "-u", "postgres", "--", "psql", "-X", "-d", "qme_test"]
    command += ["-v", "ON_ERROR_STOP=1"]
    done = subprocess.run([*command, "-Atc", sql], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Role:
    """A login role of the server, with its URL of the test's schema and a home."""

    def __init__(self, name: str, admin_url: str, home):
        import sqlalchemy as sa

        self.name, self.password = name, secrets.token_hex(8)
        url = sa.make_url(admin_url).set(username=name, password=self.password)
        self.url = url.render_as_string(hide_password=False)
        self.schema = url.query["options"].partition("search_path=")[2]
        self.home = home / name

    @property
    def env(self) -> dict[str, str]:
        return {"QME_DATABASE": self.url, "QME_HOME": str(self.home)}

    def psql(self, *statements: str) -> list[str]:
        """Statements run by plain psql logged in as this role: its output lines."""
        command = ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        command += ["-h", "127.0.0.1", "-U", self.name, "-d", "qme_test"]
        command += ["-c", f"SET search_path = {self.schema}"]
        for statement in statements:
            command += ["-c", statement]
        env = {**os.environ, "PGPASSWORD": self.password}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return [line for line in done.stdout.splitlines() if line != "SET"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A secured store in a schema of its own; roles ada and bob (bob in the group
    role team), each with one task recorded through qme. Dropped at the end."""
    if shutil.which("psql") is None:
        unavailable("psql is not installed")
    base = tmp_path_factory.mktemp("shared")
    admin_url = sqlservers.database_url("postgresql", base)
    tag = secrets.token_hex(3)
    ada, bob = (Role(f"qme_{who}_{tag}", admin_url, base) for who in ("ada", "bob"))
    team = f"qme_team_{tag}"
    superuser_sql(
        f"CREATE ROLE {ada.name} LOGIN PASSWORD '{ada.password}';"
        f"CREATE ROLE {bob.name} LOGIN PASSWORD '{bob.password}';"
        f"CREATE ROLE {team} NOLOGIN; GRANT {team} TO {bob.name};"
    )
    try:
        admin = {"QME_DATABASE": admin_url, "QME_HOME": str(base / "admin")}
        said = run("admin", "init-postgres", env=admin)
        assert said.returncode == 0, said.stderr
        tasks = {}
        for role in (ada, bob):
            ok(run("run", "-m", "private", "echo", f"{role.name}-secret", env=role.env))
            tasks[role.name] = json.loads(ok(run("ls", "--json", env=role.env)))[0]["id"]
        yield {"ada": ada, "bob": bob, "team": team, "tasks": tasks, "admin": admin, "said": said}
    finally:
        superuser_sql(f"DROP ROLE IF EXISTS {ada.name}, {bob.name}, {team}")


def run(*args: str, env: dict[str, str]):
    import sys

    return subprocess.run(
        [sys.executable, "-m", "qme", *args],
        capture_output=True,
        env={**os.environ, **env},
        timeout=60,
    )


def listed(role: Role) -> list[str]:
    return [t["command"] for t in json.loads(ok(run("ls", "--json", env=role.env)))]


def test_init_postgres_protects_every_table_and_says_so(shared):
    said = shared["said"].stderr.decode()
    assert "qme_tasks: qme_own, qme_shared" in said and "each role now sees only" in said
    assert "qme-test-pw" not in said
    schema = shared["ada"].schema
    rows = superuser_sql(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        f"WHERE relnamespace = '{schema}'::regnamespace AND relkind = 'r' ORDER BY relname"
    ).split()
    assert rows == [
        "qme_chunks|t|t",
        "qme_meta|t|f",  # its owner records the schema's version: read-only to others
        "qme_search|t|t",
        "qme_shares|t|t",
        "qme_tasks|t|t",
    ]
    again = run("admin", "init-postgres", env=shared["admin"])  # idempotent
    assert again.returncode == 0, again.stderr


def test_each_role_sees_only_its_own_through_qme(shared):
    for me, other in (("ada", "bob"), ("bob", "ada")):
        role, theirs = shared[me], shared[other]
        assert listed(role) == [f"echo {role.name}-secret"]
        assert ok(run("search", "secret", env=role.env)).count("secret") >= 1
        assert theirs.name not in ok(run("search", "secret", env=role.env))
        result = run("get", shared["tasks"][theirs.name], env=role.env)
        assert "no task matches" in one_error_line(result)
        mine = json.loads(ok(run("get", "--last", env=role.env)))
        assert mine["output"] == f"{role.name}-secret\n"


def test_each_role_sees_only_its_own_through_psql(shared):
    ada, bob = shared["ada"], shared["bob"]
    bobs = shared["tasks"][bob.name]
    assert ada.psql("SELECT command, owner FROM qme_tasks") == [
        f"echo {ada.name}-secret|{ada.name}"
    ]
    chunks = ada.psql("SELECT btrim(convert_from(data, 'UTF8'), E'\\n') FROM qme_chunks")
    assert chunks == [f"{ada.name}-secret"]
    assert ada.psql("SELECT count(*) FROM qme_search WHERE output LIKE '%secret%'") == ["1"]
    assert ada.psql(
        f"UPDATE qme_tasks SET message = 'mine now' WHERE id = '{bobs}'",
        f"UPDATE qme_tasks SET owner = '{ada.name}' WHERE id = '{bobs}'",
        f"DELETE FROM qme_tasks WHERE id = '{bobs}'",
        "DELETE FROM qme_chunks WHERE task NOT IN (SELECT seq FROM qme_tasks)",
        "UPDATE qme_meta SET value = 99 WHERE name = 'schema'",
    ) == ["UPDATE 0", "UPDATE 0", "DELETE 0", "DELETE 0", "UPDATE 0"]
    # A row claimed for another role is refused; the server sets the owner.
    command = ["psql", "-X", "-h", "127.0.0.1", "-U", ada.name, "-d", "qme_test", "-c"]
    forged = subprocess.run(
        [
            *command,
            f"INSERT INTO {ada.schema}.qme_tasks (uuid, id, owner) VALUES ('x', 'x', '{bob.name}')",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": ada.password},
    )
    assert "row-level security" in forged.stderr
    assert listed(bob) == [f"echo {bob.name}-secret"]  # untouched
    assert bob.psql("SELECT message FROM qme_tasks") == ["private"]


def test_the_dashboard_shows_what_the_role_may_see(shared):
    from test_web import TOKEN, Dashboard

    ada, bob = shared["ada"], shared["bob"]
    served = Dashboard(ada.home, env={**ada.env, "QME_SOCKET_UPDATE_SECONDS": "60"})
    try:
        status, body = served.get("/api/tasks")
        assert status == 200
        assert [t["command"] for t in json.loads(body)["tasks"]] == [f"echo {ada.name}-secret"]
        assert served.get(f"/api/tasks/{shared['tasks'][bob.name]}")[0] == 404
        status, body = served.get("/api/tasks?q=secret")
        assert bob.name not in body.decode() and ada.name in body.decode()
        # Live: bob's new task reaches no page of ada's; her own does, at once.
        key = base64.b64encode(os.urandom(16)).decode()
        handshake = (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
            conn.sendall(handshake.encode())
            assert b" 101 " in conn.recv(4096).split(b"\r\n")[0]
            ok(run("run", "echo", "bob-live", env=bob.env))
            bobs_live = json.loads(ok(run("get", "--last", env=bob.env)))["id"]
            ok(run("run", "echo", "ada-live", env=ada.env))
            received = b""
            deadline = time.monotonic() + 10
            while b"ada-live" not in received and time.monotonic() < deadline:
                received += conn.recv(65536)
        assert b"ada-live" in received
        assert b"bob-live" not in received and bobs_live.encode() not in received
    finally:
        assert served.stop() == 0
        for role in (ada, bob):
            ok(run("clear", "--force", "--last", env=role.env))


def test_notifications_carry_no_task_id(shared):
    import psycopg

    ada, bob = shared["ada"], shared["bob"]
    with psycopg.connect(
        host="127.0.0.1",
        user=bob.name,
        password=bob.password,
        dbname="qme_test",
        autocommit=True,
    ) as conn:
        conn.execute("LISTEN qme_changes")
        ok(run("run", "echo", "told", env=ada.env))
        payloads = [n.payload for n in conn.notifies(timeout=5, stop_after=1)]
    assert payloads and set(payloads) == {""}  # a change, not whose or which
    ok(run("clear", "--force", "--last", env=ada.env))


def test_a_shared_task_is_read_by_the_group_only(shared):
    ada, bob, team = shared["ada"], shared["bob"], shared["team"]
    adas, bobs = shared["tasks"][ada.name], shared["tasks"][bob.name]
    said = run("share", adas, team, env=ada.env)
    assert said.returncode == 0 and f"shared with {team}" in said.stderr.decode()
    assert ok(run("share", adas, env=ada.env)).split() == [team]
    # bob is a member of team: he reads ada's task, output and all, in qme and psql.
    assert sorted(listed(bob)) == sorted([f"echo {ada.name}-secret", f"echo {bob.name}-secret"])
    assert json.loads(ok(run("get", adas, env=bob.env)))["output"] == (f"{ada.name}-secret\n")
    assert bob.psql(
        "SELECT btrim(convert_from(data, 'UTF8'), E'\\n') FROM qme_chunks ORDER BY seq"
    ) == [
        f"{ada.name}-secret",
        f"{bob.name}-secret",
    ]
    # …but changes nothing of it, nor shares it on.
    assert bob.psql(
        f"UPDATE qme_tasks SET message = 'x' WHERE id = '{adas}'",
        f"DELETE FROM qme_chunks WHERE task = (SELECT seq FROM qme_tasks WHERE id = '{adas}')",
    ) == ["UPDATE 0", "DELETE 0"]
    assert "not yours" in one_error_line(run("share", adas, bob.name, env=bob.env))
    ok(run("clear", "--force", adas, env=bob.env))
    assert f"echo {ada.name}-secret" in listed(bob)
    # ada is no member of team: bob's task shared with it stays out of her sight.
    ok(run("share", bobs, team, env=bob.env))
    assert listed(ada) == [f"echo {ada.name}-secret"]
    assert ada.psql("SELECT count(*) FROM qme_tasks") == ["1"]
    # Taken back, it is gone from bob's sight.
    ok(run("share", adas, "--remove", team, env=ada.env))
    ok(run("share", bobs, "--remove", team, env=bob.env))
    assert listed(bob) == [f"echo {bob.name}-secret"]
    assert "no role" in one_error_line(run("share", adas, "qme_nobody_here", env=ada.env))


@pytest.mark.parametrize("kind", ["mysql", "sqlite", "filesystem"])
def test_stores_without_row_level_security_refuse_in_one_line(kind, qme, qme_home):
    database = sqlservers.database(kind, qme_home)
    env = {"QME_DATABASE": database}
    ok(qme("run", "true", env=env))
    line = one_error_line(qme("share", "sometask", "team", env=env))
    assert "needs PostgreSQL" in line, line
    if kind == "mysql":
        assert "MySQL/MariaDB have no row-level security" in line
    line = one_error_line(qme("admin", "init-postgres", env=env))
    assert "needs PostgreSQL" in line, line


def test_tasks_recorded_before_owners_go_to_the_role_named_as_their_user(shared):
    """As on a store an older qme wrote: tasks without an owner, which no user sees
    until init-postgres gives each to the role named as its user."""
    import sqlalchemy as sa
    from test_store_contract import make_task

    from qme import Queue

    ada = shared["ada"]
    queue = Queue(database=shared["admin"]["QME_DATABASE"])
    old = make_task("echo from an older qme", user=ada.name)
    queue.store.add(old)
    with queue.store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE qme_tasks NO FORCE ROW LEVEL SECURITY"))
        conn.execute(sa.text("ALTER TABLE qme_tasks ALTER COLUMN owner DROP NOT NULL"))
        conn.execute(sa.text("UPDATE qme_tasks SET owner = NULL WHERE id = :id"), {"id": old.id})
        conn.execute(sa.text("ALTER TABLE qme_tasks FORCE ROW LEVEL SECURITY"))
    queue.close()
    assert "echo from an older qme" not in listed(ada)
    said = run("admin", "init-postgres", env=shared["admin"])
    assert "1 task(s) recorded before owners were kept" in said.stderr.decode()
    assert "echo from an older qme" in listed(ada)
    ok(run("clear", "--force", old.id, env=ada.env))


def test_a_user_cannot_migrate_a_secured_store_and_is_told_who_can(shared):
    import sqlalchemy as sa

    from qme.store.sqlschema import MIGRATIONS

    engine = sa.create_engine(shared["admin"]["QME_DATABASE"])
    older = sa.text("UPDATE qme_meta SET value = :v WHERE name = 'schema'")
    try:
        with engine.begin() as conn:
            conn.execute(older, {"v": len(MIGRATIONS) - 1})
        line = one_error_line(run("ls", env=shared["ada"].env))
        assert "only the owner of the store's tables (qme)" in line
        assert "qme admin init-postgres" in line
    finally:
        with engine.begin() as conn:
            conn.execute(older, {"v": len(MIGRATIONS)})
        engine.dispose()
