"""The dashboard: every route in-process (status codes, JSON, auth, CSRF, XSS, paging),
the live hub, and `qme start` as a real server process.

The browser end of it is in tests/test_browser.py.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from io import BytesIO, StringIO
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes
from urllib.request import Request, urlopen

import pytest
import sqlservers
from helpers import wait_for
from test_store_contract import make_task

from qme import Queue, executors
from qme.errors import QmeError
from qme.executors.base import Executor, action
from qme.task import Task
from qme.web import pages
from qme.web.app import create_app
from qme.web.hub import Hub, Subscriber

TOKEN = "test-token-Zq3rT8wYp0"
ORIGIN = "http://127.0.0.1:5000"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'


# -- an in-process client -------------------------------------------------------------------


class Response:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes):
        self.status = int(status.split()[0])
        self.header_list = headers
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        assert self.headers["content-type"].startswith("application/json"), self.headers
        return json.loads(self.body)

    def cookies(self) -> list[str]:
        return [v for k, v in self.header_list if k.lower() == "set-cookie"]


class Client:
    """Calls the WSGI app directly, as the server would (http://127.0.0.1:5000)."""

    def __init__(self, app):
        self.app = app

    def request(self, method: str, url: str, headers: dict | None = None) -> Response:
        path, _, query = url.partition("?")
        environ = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "5000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:5000",
            "wsgi.url_scheme": "http",
            "wsgi.input": BytesIO(b""),
            "wsgi.errors": StringIO(),
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": "0",
        }
        for name, value in (headers or {}).items():
            environ[f"HTTP_{name.upper().replace('-', '_')}"] = value
        started: list = []
        chunks = self.app(environ, lambda status, hdrs, exc=None: started.extend([status, hdrs]))
        body = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        return Response(started[0], started[1], body)

    def get(self, url, **headers):
        return self.request("GET", url, {**BEARER, **headers})

    def post(self, url, **headers):
        return self.request("POST", url, {**BEARER, **headers})

    def delete(self, url, **headers):
        return self.request("DELETE", url, {**BEARER, **headers})


def record(queue: Queue, command="echo hello", output=b"", error=b"", **fields) -> Task:
    """A task written straight to the store (what another `qme run` would write), on
    host "box" unless told otherwise (not this machine: running stays running)."""
    task = make_task(command, **{"status": "complete", **fields})
    queue.store.add(task)
    for stream, data in (("output", output), ("error", error)):
        if data:
            queue.store.append(task.id, stream, data)
    queue.store.update(task)
    return task


@pytest.fixture
def app(queue):
    return create_app(queue, TOKEN)


@pytest.fixture
def client(app):
    return Client(app)


# -- the token ------------------------------------------------------------------------------


PROTECTED = [
    ("GET", "/"),
    ("GET", "/tasks/{id}"),
    ("GET", "/executor/{id}"),
    ("GET", "/api/tasks"),
    ("GET", "/api/tasks/executor/shell"),
    ("GET", "/api/tasks/{id}"),
    ("GET", "/api/tasks/{id}/output"),
    ("GET", "/api/tasks/{id}/error"),
    ("GET", "/api/openapi.json"),
    ("GET", "/static/qme.js"),
    ("GET", "/ws"),
    ("GET", "/no/such/page"),
    ("DELETE", "/api/tasks/{id}"),
    ("POST", "/api/tasks/{id}/rerun"),
    ("POST", "/api/tasks/{id}/cancel"),
    ("POST", "/api/tasks/{id}/actions/status"),
]


def test_every_route_refuses_a_missing_or_wrong_token(queue, client):
    task = record(queue, "echo secret-command", output=b"secret-output\n", message="secret-note")
    cookie = "qme_session_5000"
    wrong = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Cookie": f"{cookie}={TOKEN}"},  # the cookie holds a derived value, not the token
        {"Cookie": f"{cookie}=forged"},
    ]
    for method, template in PROTECTED:
        url = template.format(id=task.id)
        for headers in wrong:
            response = client.request(method, url, headers)
            assert response.status == 401, (method, url, headers)
            assert "secret" not in response.text
            assert response.headers["www-authenticate"].startswith("Bearer")
        for query in ("token=wrong", f"token={TOKEN}0"):
            response = client.request(method, f"{url}?{query}")
            assert response.status == 401, (method, url, query)
    assert client.request("GET", "/api/tasks").json()["error"] == "this dashboard needs its token"
    assert queue.get(task.id).status == "complete"  # nothing was done


def test_token_in_the_url_becomes_an_httponly_strict_cookie(client):
    entered = client.request("GET", f"/?status=failed&token={TOKEN}")
    assert entered.status == 303
    assert entered.headers["location"] == "/?status=failed"  # the token leaves the address
    (cookie,) = entered.cookies()
    name, value = cookie.split(";")[0].split("=", 1)
    assert name == "qme_session_5000" and value and TOKEN not in value
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    page = client.request("GET", "/?status=failed", {"Cookie": f"{name}={value}"})
    assert page.status == 200 and "<table" in page.text
    # Scripts may also pass the token in the query of an API call.
    assert client.request("GET", f"/api/tasks?token={TOKEN}").status == 200


def test_state_changes_need_post_or_delete_from_the_dashboards_own_pages(queue, client):
    task = record(queue, "true", cwd=str(Path.cwd()))
    session = client.request("GET", f"/?token={TOKEN}").cookies()[0].split(";")[0]
    url = f"/api/tasks/{task.id}"
    refused = [
        {"Cookie": session},  # no Origin, no Referer
        {"Cookie": session, "Origin": "http://evil.example"},
        {"Cookie": session, "Origin": "http://127.0.0.1:8080"},  # another local web app
        {"Cookie": session, "Origin": "null"},
        {"Cookie": session, "Referer": "http://evil.example/page"},
        {"Cookie": session, "Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
        {"Cookie": session, "Origin": ORIGIN, "Sec-Fetch-Site": "same-site"},
    ]
    for headers in refused:
        for method, target in (("POST", f"{url}/rerun"), ("DELETE", url)):
            response = client.request(method, target, headers)
            assert response.status == 403, (method, headers)
            assert "does not come from this dashboard" in response.json()["error"]
    assert [t.id for t in queue.list()] == [task.id]  # neither rerun nor deleted
    # GET never changes anything: these addresses take POST only.
    for verb in ("rerun", "cancel", "actions/status"):
        assert client.get(f"{url}/{verb}").status == 405
    # From the dashboard's own page, with the cookie; and from a script with the token.
    same = {"Cookie": session, "Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
    assert client.request("DELETE", url, same).status == 200
    other = record(queue, "true")
    assert client.request("DELETE", f"/api/tasks/{other.id}", BEARER).status == 200
    assert queue.list() == []


def test_the_websocket_address_refuses_plain_requests(client):
    response = client.get("/ws")
    assert response.status == 400
    assert "websocket" in response.json()["error"]


# -- pages and what they show ---------------------------------------------------------------


def test_hostile_task_data_is_only_ever_text(queue, client, tmp_path):
    hostile_dir = tmp_path / HOSTILE.replace("/", "∕")
    escapes = b"\x1b]0;pwned title\x07\x1b]8;;javascript:alert(3)\x07link\x1b]8;;\x07\x1b[2J"
    task = record(
        queue,
        f"echo {HOSTILE}",
        output=HOSTILE.encode() + b"\n" + escapes,
        error=b"</pre><script>alert(4)</script>",
        message=HOSTILE,
        cwd=str(hostile_dir),
        host='"><svg onload=alert(5)>',
    )
    for url in ("/", f"/tasks/{task.id}", "/?q=alert"):
        page = client.get(url)
        assert page.status == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "<svg onload" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # escaped, still there
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
    for stream in ("output", "error"):
        raw = client.get(f"/api/tasks/{task.id}/{stream}")
        assert raw.headers["content-type"] == "text/plain; charset=utf-8"
        assert raw.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in raw.headers["content-security-policy"]
    data = client.get(f"/api/tasks/{task.id}").json()
    assert data["command"] == f"echo {HOSTILE}" and data["message"] == HOSTILE  # JSON as is


def test_table_page_embeds_its_first_page(queue, client):
    tasks = [record(queue, f"echo {i}", started=time.time() + i) for i in range(3)]
    page = client.get("/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    embedded = re.search(r'data-page="([^"]*)"', page.text).group(1)
    data = json.loads(embedded.replace("&quot;", '"').replace("&#039;", "'").replace("&amp;", "&"))
    assert [t["id"] for t in data["tasks"]] == [t.id for t in reversed(tasks)]
    for asset in ("qme.css", "qme.js", "table.js"):
        assert f"/static/{asset}?v=" in page.text
        assert client.get(f"/static/{asset}").status == 200
    empty = client.get("/?status=lost")
    assert "No task matches" in empty.text


def test_task_page_per_executor(queue, client, monkeypatch):
    assert pages.task_template("shell") == "executor_shell"
    assert pages.task_template("slurm") == "executor_slurm"
    for name in ("docker", "podman", "apptainer"):  # one container page, for each of them
        assert pages.task_template(name) == f"executor_{name}"
    assert pages.task_template("tar") == "executor_shell"  # no template of its own
    assert pages.task_template("../layout") == "executor_shell"
    shell = record(queue, "make all", output=b"built\n")
    page = client.get(f"/tasks/{shell.uuid[:8]}")  # a prefix is enough
    assert page.status == 200
    assert "<code>make all</code>" in page.text and 'id="output"' in page.text
    assert "Slurm job" not in page.text
    slurm = record(queue, "sbatch job.sh", executor="slurm", data={"job_id": "42"})
    page = client.get(f"/tasks/{slurm.id}")
    assert "Slurm job" in page.text and 'id="output"' in page.text
    podman = record(queue, "podman run -d nginx", executor="podman", data={"image": "nginx"})
    page = client.get(f"/tasks/{podman.id}")
    assert "podman container" in page.text and "<code>nginx</code>" in page.text
    assert "Slurm job" not in page.text and 'id="output"' in page.text
    moved = client.get(f"/executor/{shell.uuid[:8]}")  # QueueMe's address
    assert moved.status == 301 and moved.headers["location"].endswith(f"/tasks/{shell.id}")
    missing = client.get("/tasks/shell-00000000")
    assert missing.status == 404 and "no task matches" in missing.text


# -- the REST API ---------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "filesystem", *sqlservers.KINDS])
def test_listing_pages_filters_and_searches(qme_home, database):
    queue = Queue(config_dir=qme_home, database=sqlservers.database(database, qme_home))
    client = Client(create_app(queue, TOKEN))
    now = time.time()
    for i in range(23):
        status = "failed" if i % 5 == 0 else "complete"
        word = "needle" if i % 2 else "hay"
        record(
            queue, f"echo {word} {i}", output=f"{word}\n".encode(), status=status, started=now + i
        )

    first = client.get("/api/tasks?limit=10").json()
    assert [t["command"] for t in first["tasks"]][:2] == ["echo hay 22", "echo needle 21"]
    assert (first["total"], first["total_exact"], first["more"]) == (23, True, True)
    assert first["next"] == "/api/tasks?limit=10&offset=10" and first["previous"] is None
    assert set(first["tasks"][0]) >= {"id", "short_id", "status", "returncode", "cwd", "duration"}
    assert "output" not in first["tasks"][0]
    last = client.get("/api/tasks?limit=10&offset=20").json()
    assert [t["command"] for t in last["tasks"]] == ["echo hay 2", "echo needle 1", "echo hay 0"]
    assert last["more"] is False and last["next"] is None
    assert last["previous"] == "/api/tasks?limit=10&offset=10"
    assert len(client.get("/api/tasks").json()["tasks"]) == 23  # 50 by default

    failed = client.get("/api/tasks?status=failed").json()
    assert failed["total"] == 5 and {t["status"] for t in failed["tasks"]} == {"failed"}
    assert client.get("/api/tasks/executor/shell?limit=5").json()["total"] == 23
    assert client.get("/api/tasks?executor=shell&status=failed").json()["total"] == 5

    found = client.get("/api/tasks?q=needle&limit=5").json()
    assert [t["command"] for t in found["tasks"]][0] == "echo needle 21"
    assert found["more"] and (found["total"], found["total_exact"]) == (11, True)
    assert found["tasks"][0]["match"]["line"].replace("\x02", "").replace("\x03", "")
    page2 = client.get(found["next"]).json()
    assert [t["command"] for t in page2["tasks"]][0] == "echo needle 11"
    assert client.get("/api/tasks?q=needle&status=failed").json()["tasks"][0]["status"] == "failed"
    assert client.get("/api/tasks?q=--").json()["total"] == 23  # no words: no search

    for bad, status in [
        ("limit=0", 400),
        ("limit=1001", 400),
        ("limit=ten", 400),
        ("offset=-1", 400),
        ("offset=9223372036854775808", 400),  # past SQLite's integers
        ("status=finished", 400),
        ("executor=nosuch", 400),  # a parameter (in the path, below: 404)
    ]:
        response = client.get(f"/api/tasks?{bad}")
        assert response.status == status, bad
        assert response.json()["status"] == status and response.json()["error"]
    assert client.get("/api/tasks/executor/nosuch").status == 404
    queue.close()


def test_one_task_and_its_raw_streams(queue, client):
    binary = b"caf\xc3\xa9 \xff\xfe raw\r\n\x1b[31mred\x1b[0m\n"
    task = record(queue, "cat data", output=binary, error=b"warning\n", returncode=0)
    got = client.get(f"/api/tasks/{task.uuid[:6]}").json()
    assert got["id"] == task.id and got["short_id"] == task.short_id
    assert got["output"] == binary.decode("utf-8", "replace") and got["error"] == "warning\n"
    assert got["actions"] == {} and got["returncode"] == 0
    assert "output" not in client.get(f"/api/tasks/{task.id}?streams=0").json()
    raw = client.get(f"/api/tasks/{task.id}/output")
    assert raw.status == 200 and raw.body == binary and raw.headers["x-qme-offset"] == "0"
    assert client.get(f"/api/tasks/{task.id}/output?offset=6").body == binary[6:]
    assert client.get(f"/api/tasks/{task.id}/output?offset=999").body == b""
    assert client.get(f"/api/tasks/{task.id}/error").body == b"warning\n"
    assert client.get(f"/api/tasks/{task.id}/output?offset=x").status == 400
    assert client.get(f"/api/tasks/{task.id}/secrets").status == 404

    record(queue, "another")
    ambiguous = client.get("/api/tasks/shell-")
    assert ambiguous.status == 400 and "several tasks" in ambiguous.json()["error"]
    missing = client.get("/api/tasks/shell-00000000-0000-4000-8000-000000000000")
    assert missing.status == 404
    assert missing.json() == {
        "error": "no task matches 'shell-00000000-0000-4000-8000-000000000000'",
        "status": 404,
    }


def test_paths_cannot_escape_the_store_or_the_assets(qme_home, client):
    (qme_home / "config.ini").parent.mkdir(parents=True, exist_ok=True)
    (qme_home / "config.ini").write_text("[DEFAULT]\nsecret_marker = 1\n")
    filesystem = Client(create_app(Queue(config_dir=qme_home, database="filesystem"), TOKEN))
    attempts = [
        "/static/../../../../etc/passwd",
        "/static/..%2f..%2f..%2fapi.py",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static//etc/passwd",
        "/static/..%5c..%5capi.py",
        "/api/tasks/..%2f..%2fconfig.ini",
        "/api/tasks/..%2fconfig.ini/output",
        "/api/tasks/shell-..%2f..%2fconfig/output",
        "/api/tasks/..",
        "/api/tasks/.%2e",
        "/tasks/..%2f..%2fconfig.ini",
        "/api/tasks/executor/..%2f..",
    ]
    for dashboard in (client, filesystem):
        for url in attempts:
            response = dashboard.get(url)
            assert response.status in (400, 403, 404), url
            assert "root:" not in response.text and "secret_marker" not in response.text, url
            assert "def " not in response.text, url


def test_openapi_describes_every_route(app, client):
    spec = client.get("/api/openapi.json").json()
    described = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    routes = set()
    for route in app.routes:
        if not route.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(\w+)(:[^>]*)?>", r"{\1}", route.rule)
        for stream in ("output", "error") if "{stream}" in path else (None,):
            routes.add((route.method, path.replace("{stream}", stream or "")))
    assert routes == described


def test_errors_and_responses_carry_the_security_headers(client):
    for response in (client.get("/"), client.get("/nope"), client.request("GET", "/")):
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"
    assert client.get("/api/tasks").headers["cache-control"] == "no-store"
    assert re.fullmatch(r"app;dur=\d+\.\d", client.get("/api/tasks").headers["server-timing"])
    page = client.get("/nope", Accept="text/html")
    assert page.status == 404 and page.headers["content-type"].startswith("text/html")


# -- actions --------------------------------------------------------------------------------


def test_delete_refuses_a_running_task_and_tells_every_page(queue, client):
    hub = Hub(queue)
    dashboard = Client(create_app(queue, TOKEN, hub=hub))
    subscriber = hub.subscribe()
    running = record(queue, "sleep 100", status="running")
    refused = dashboard.delete(f"/api/tasks/{running.id}")
    assert refused.status == 409 and "cancel it first" in refused.json()["error"]
    done = record(queue, "echo done")
    deleted = dashboard.delete(f"/api/tasks/{done.short_id}")
    assert deleted.status == 200
    assert deleted.json() == {"message": f"deleted task {done.short_id}", "deleted": done.id}
    assert json.loads(subscriber.messages.get_nowait()) == {"type": "deleted", "ids": [done.id]}
    assert [t.id for t in queue.list()] == [running.id]
    assert client.delete(f"/api/tasks/{done.id}").status == 404


def test_rerun_runs_in_the_background_and_names_the_new_task(queue, client, tmp_path):
    task = record(queue, "echo again", cwd=str(tmp_path))
    queue.store.update(task.copy(argv=["echo", "again"]))
    response = client.post(f"/api/tasks/{task.id}/rerun")
    assert response.status == 202
    body = response.json()
    assert body["rerun_of"] == task.id and body["task"]["rerun_of"] == task.id
    assert body["message"] == f"rerunning task {task.short_id} as {body['task']['short_id']}"
    new = wait_for(lambda: queue.get(body["task"]["id"]).finished and queue.get(body["task"]["id"]))
    assert new.output == b"again\n" and new.cwd == str(tmp_path)
    gone = record(queue, "true", cwd=str(tmp_path / "removed"))
    refused = client.post(f"/api/tasks/{gone.id}/rerun")
    assert refused.status == 409 and "does not exist here" in refused.json()["error"]


def test_cancel_a_running_task_on_this_host_only(queue, client, qme_home, tmp_path):
    marker = tmp_path / "started"
    runner = subprocess.Popen(
        [sys.executable, "-m", "qme", "run", "sh", "-c", f"touch {marker}; exec sleep 60"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "QME_HOME": str(qme_home)},
    )
    try:
        wait_for(marker.exists, what="the command to start")
        task = wait_for(lambda: queue.list(status="running"), what="the task to be recorded")[0]
        response = client.post(f"/api/tasks/{task.id}/cancel")
        assert response.status == 202, response.text
        assert response.json()["message"].startswith(f"sent SIGTERM to task {task.short_id}")
        assert runner.wait(timeout=10) == 128 + signal.SIGTERM
        ended = queue.get(task.id)
        assert ended.status == "cancelled" and ended.signal == signal.SIGTERM
    finally:
        runner.kill()
        runner.wait()
    again = client.post(f"/api/tasks/{task.id}/cancel")
    assert again.status == 409 and "not running (it is cancelled)" in again.json()["error"]
    elsewhere = record(queue, "sleep 100", status="running", host="login7", pid=1234)
    refused = client.post(f"/api/tasks/{elsewhere.id}/cancel")
    assert refused.status == 409
    assert "runs on login7" in refused.json()["error"] and "kill 1234" in refused.json()["error"]


class DemoExecutor(Executor):
    """An executor with actions of its own, as the Slurm executor has."""

    name = "demo"

    @action("say how it is going")
    def status(self, task: Task) -> dict:
        return {"state": "RUNNING", "of": task.short_id}

    @action("refuse")
    def fail(self, task: Task) -> dict:
        raise QmeError("the scheduler is down")


def test_executor_actions_run_through_task_run_action(queue, client, monkeypatch):
    plain = record(queue, "echo plain")
    missing = client.post(f"/api/tasks/{plain.id}/actions/status")
    assert missing.status == 404
    assert "the shell executor has no action 'status'" in missing.json()["error"]

    # An executor installed like a plugin, through the registry.
    entry = executors.Entry(f"{__name__}:DemoExecutor", None)
    monkeypatch.setitem(executors.BUILTIN, "demo", entry)
    demo = record(queue, "demo job", executor="demo")
    offered = client.get(f"/api/tasks/{demo.id}").json()["actions"]
    assert offered == {"fail": "refuse", "status": "say how it is going"}
    page = client.get(f"/tasks/{demo.id}").text
    assert 'data-executor-action="status" title="say how it is going"' in page
    done = client.post(f"/api/tasks/{demo.id}/actions/status")
    assert done.status == 200
    result = {"state": "RUNNING", "of": demo.short_id}
    assert done.json() == {"id": demo.id, "action": "status", "result": result}
    failed = client.post(f"/api/tasks/{demo.id}/actions/fail")
    assert failed.status == 400 and failed.json()["error"] == "the scheduler is down"
    other = client.post(f"/api/tasks/{demo.id}/actions/cancel-everything")
    assert other.status == 404 and "'cancel-everything'" in other.json()["error"]


# -- the live hub ---------------------------------------------------------------------------


def messages(subscriber) -> list[dict]:
    found = []
    while not subscriber.messages.empty():
        text = subscriber.messages.get_nowait()
        if text is not None:
            found.append(json.loads(text))
    return found


@pytest.mark.parametrize("database", ["sqlite", "filesystem", *sqlservers.KINDS])
def test_hub_pushes_new_changed_and_vanished_tasks(qme_home, database):
    database = sqlservers.database(database, qme_home)
    queue = Queue(config_dir=qme_home, database=database)
    other = Queue(config_dir=qme_home, database=database)  # another process, as it were
    old = record(other, "old", started=time.time() - 3600)
    hub = Hub(queue)
    hub.poll()
    subscriber = hub.subscribe()
    hub.poll()
    assert messages(subscriber) == []  # nothing new

    task = record(other, "make", status="running")
    hub.poll()
    (pushed,) = messages(subscriber)
    assert pushed["type"] == "tasks" and [t["id"] for t in pushed["tasks"]] == [task.id]
    assert pushed["tasks"][0]["status"] == "running" and old.id not in json.dumps(pushed)
    hub.poll()
    assert messages(subscriber) == []  # told once

    task.status, task.returncode, task.ended = "failed", 2, time.time()
    other.store.update(task)
    hub.poll()
    (pushed,) = messages(subscriber)
    assert [(t["id"], t["status"], t["returncode"]) for t in pushed["tasks"]] == [
        (task.id, "failed", 2)
    ]

    gone = record(other, "sleep 100", status="running")
    hub.poll()
    messages(subscriber)
    other.clear(gone.id)
    hub.poll()
    assert messages(subscriber) == [{"type": "deleted", "ids": [gone.id]}]
    queue.close()
    other.close()


def test_hub_sends_output_from_the_offsets_a_page_has(queue):
    task = record(queue, "build", output=b"0123456789", status="running")
    hub = Hub(queue)
    hub.poll()
    subscriber = hub.subscribe()
    hub.follow(subscriber, task.short_id, {"output": 4, "error": "junk"})
    first = messages(subscriber)
    assert first[0]["type"] == "tasks" and first[0]["tasks"][0]["id"] == task.id
    assert [(m["stream"], m["offset"], base64.b64decode(m["data"])) for m in first[1:]] == [
        ("output", 4, b"456789")
    ]
    queue.store.append(task.id, "output", b"abc")
    queue.store.append(task.id, "error", b"oops")
    hub.poll()
    sent = [m for m in messages(subscriber) if m["type"] == "output"]
    assert [(m["stream"], m["offset"], base64.b64decode(m["data"])) for m in sent] == [
        ("output", 10, b"abc"),
        ("error", 0, b"oops"),
    ]
    hub.follow(subscriber, "shell-00000000", {})
    assert messages(subscriber) == [{"type": "deleted", "ids": ["shell-00000000"]}]


def test_a_slow_page_is_dropped_never_waited_for(queue):
    hub = Hub(queue)
    hub.poll()
    slow, fast = Subscriber(limit=8), hub.subscribe()
    hub.subscribers.add(slow)
    for i in range(slow.limit + 2):
        record(queue, f"echo {i}")
        hub.poll()
        messages(fast)  # this one keeps up
    assert slow.closed and not fast.closed
    assert list(slow)  # what was queued, then the end
    running = record(queue, "yes", output=b"y\n" * 100, status="running")
    backlogged = hub.subscribe()
    for _ in range(10):
        backlogged.put("{}")
    hub.follow(backlogged, running.id, {})
    assert not any('"output"' in m for m in list(backlogged.messages.queue))  # held back
    messages(backlogged)
    hub.poll()
    assert any(m["type"] == "output" for m in messages(backlogged))  # caught up


# -- `qme start`, the real server -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Dashboard:
    """`qme start` in a subprocess; .url is the address it printed (with the token)."""

    def __init__(self, home: Path, *args: str, env: dict | None = None):
        self.env = {**os.environ, "QME_HOME": str(home), "QME_SERVER_KEY": TOKEN, **(env or {})}
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qme", "start", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self.lines = []
        for line in self.process.stdout:
            self.lines.append(line)
            if "?token=" in line:
                self.url = line.strip()
                break
        else:
            raise AssertionError(
                f"qme start printed no URL: {self.lines} {self.process.stderr.read()}"
            )
        self.ready_after = time.monotonic() - self.started
        self.base = self.url.split("?")[0].rstrip("/")
        self.port = int(self.base.rsplit(":", 1)[1])
        # Drained all along: with --debug every request is logged there too.
        self.stderr: list[str] = []
        self._drain = threading.Thread(target=self.stderr.extend, args=(self.process.stderr,))
        self._drain.start()

    def get(self, path: str, **headers) -> tuple[int, bytes]:
        request = Request(self.base + path, headers={**BEARER, **headers})
        try:
            with urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except Exception as exc:  # HTTPError carries the status
            return getattr(exc, "code", 0), getattr(exc, "read", lambda: b"")()

    def upgrade(self, target: str = "/ws", **headers) -> str:
        """A websocket handshake; the status line of the answer."""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
        ]
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            return conn.recv(4096).decode("latin-1").split("\r\n")[0]

    def raw(self, line: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        """One request sent byte for byte as given (no client library tidies it):
        status, headers (lower-case names), body."""
        head = [line, f"Host: 127.0.0.1:{self.port}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            answer = b"".join(iter(lambda: conn.recv(65536), b""))
        top, _, body = answer.partition(b"\r\n\r\n")
        status, *fields = top.decode("latin-1").split("\r\n")
        pairs = (field.split(":", 1) for field in fields if ":" in field)
        return int(status.split()[1]), {k.lower(): v.strip() for k, v in pairs}, body

    def stop(self, signum=signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=10)
        finally:
            self._drain.join(timeout=10)
            self.process.stdout.close()
            self.process.stderr.close()


@pytest.fixture
def dashboard(qme_home):
    served = Dashboard(qme_home)
    yield served
    if served.process.poll() is None:
        served.process.kill()
        served.process.wait()


def test_qme_start_serves_binds_locally_and_stops_on_sigterm(dashboard, qme_home, qme):
    assert dashboard.url.startswith("http://127.0.0.1:")
    assert dashboard.url.endswith(f"?token={TOKEN}")
    assert dashboard.ready_after < 3.0  # typically ~0.5 s, mostly Python and gevent imports
    assert qme("run", "echo", "served").returncode == 0
    status, body = dashboard.get("/api/tasks")
    assert status == 200 and json.loads(body)["tasks"][0]["command"] == "echo served"
    assert dashboard.get("/api/tasks", Authorization="Bearer nope")[0] == 401
    with pytest.raises(OSError):
        socket.create_connection(("::1", dashboard.port), timeout=2).close()

    # Websockets: upgraded only with the token, and only from the dashboard's origin.
    assert " 401 " in dashboard.upgrade()
    origin = f"http://127.0.0.1:{dashboard.port}"
    assert " 101 " in dashboard.upgrade(Authorization=f"Bearer {TOKEN}")
    session = f"qme_session_{dashboard.port}="
    cookie = client_cookie(dashboard)
    assert " 403 " in dashboard.upgrade(Cookie=cookie, Origin="http://evil.example")
    assert " 101 " in dashboard.upgrade(Cookie=cookie, Origin=origin)
    assert cookie.startswith(session)

    assert dashboard.stop(signal.SIGTERM) == 0
    log = (qme_home / "dashboard.log").read_text()
    assert "GET /api/tasks" in log and TOKEN not in log and "token=[redacted]" in log


def client_cookie(dashboard: Dashboard) -> str:
    """Open the printed URL as a browser would; the session cookie it sets."""
    conn = socket.create_connection(("127.0.0.1", dashboard.port), timeout=10)
    path = dashboard.url.split(f":{dashboard.port}", 1)[1]
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{dashboard.port}\r\n\r\n".encode())
    answer = conn.recv(65536).decode("latin-1")
    conn.close()
    return re.search(r"Set-Cookie: ([^;]+);", answer).group(1)


def test_qme_start_stops_on_ctrl_c_and_works_with_the_filesystem_store(qme_home, qme):
    served = Dashboard(qme_home, env={"QME_DATABASE": "filesystem"})
    try:
        assert "filesystem store" in "".join(served.lines)
        qme("run", "echo", "files", env={"QME_DATABASE": "filesystem"})
        status, body = served.get("/api/tasks")
        assert [t["command"] for t in json.loads(body)["tasks"]] == ["echo files"]
    finally:
        assert served.stop(signal.SIGINT) == 0


def test_qme_start_reports_a_busy_port_and_a_bad_period(qme_home, qme):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = qme("start", "--port", str(port))
        assert busy.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr.decode()
    bad = qme("start", "--port", "0", env={"QME_SOCKET_UPDATE_SECONDS": "soon"})
    assert bad.returncode == 1 and "QME_SOCKET_UPDATE_SECONDS" in bad.stderr.decode()


# -- the token never reaches a log; no value gives a 500 ------------------------------------


def test_the_token_never_reaches_the_log_or_stderr_in_any_spelling(qme_home):
    served = Dashboard(qme_home, "--debug")
    encoded = "".join(f"%{byte:02X}" for byte in TOKEN.encode())
    spellings = {
        "as typed": TOKEN,
        "percent-encoded": encoded,
        "lower-case escapes": encoded.lower(),
        "one letter escaped": TOKEN.replace("Z", "%5a"),
        "encoded twice": encoded.replace("%", "%25"),
        "a near miss": TOKEN[:-1],
        "in Basic auth": base64.b64encode(f"qme:{TOKEN}".encode()).decode(),
    }
    session = f"qme_session_{served.port}"
    try:
        logged_in = [
            served.raw(f"GET {target} HTTP/1.1")[0]
            for target in (
                f"/api/tasks?token={TOKEN}",
                f"/api/tasks?%74oken={TOKEN}",
                f"/api/tasks?%74%6F%6B%65%6E={encoded}",
                f"/api/tasks?limit=5&token={spellings['one letter escaped']}",
            )
        ]
        assert logged_in == [200] * 4
        entered = served.raw(f"GET /?status=failed&token={TOKEN} HTTP/1.1")
        assert entered[0] == 303
        cookie = entered[1]["set-cookie"].split(";")[0]
        refused = [
            ("GET", f"/api/tasks?token={spellings['a near miss']}", {}),
            ("GET", f"/api/tasks?token={spellings['encoded twice']}", {}),
            ("GET", "/api/tasks", {"Authorization": f"Basic {spellings['in Basic auth']}"}),
            ("GET", "/api/tasks", {"X-Api-Key": TOKEN, "Cookie": f"token={TOKEN}"}),
            ("GET", "/api/tasks", {"Cookie": f"{session}={TOKEN}"}),
            ("POST", f"/api/tasks/x/rerun?token={TOKEN}", {"Origin": "http://evil.example"}),
        ]
        for method, target, headers in refused:
            assert served.raw(f"{method} {target} HTTP/1.1", headers)[0] in (401, 403), target
        bearer = {**BEARER, "Cookie": cookie}
        for target in (
            f"/api/tasks?key={TOKEN}&q={TOKEN}&access_token={encoded}",
            f"/api/tasks/{TOKEN}",
            f"/api/tasks/{encoded}/output",
            f"/{TOKEN}",
            f"/static/{TOKEN}",
            f"/api/tasks?q=%ff{TOKEN}",
        ):
            assert served.raw(f"GET {target} HTTP/1.1", bearer)[0] in (200, 400, 404), target
        origin = f"http://127.0.0.1:{served.port}"
        assert " 101 " in served.upgrade(f"/ws?token={TOKEN}", Origin=origin)
        # What gevent refuses before the app sees it is logged as an error, request line and all.
        assert served.raw(f"GET /?token={TOKEN} HTTP/9.9")[0] == 400
        assert served.raw(f"GET /?token={TOKEN}&pad={'x' * 9000} HTTP/1.1")[0] == 414
    finally:
        assert served.stop() == 0
    log = (qme_home / "dashboard.log").read_text()
    stderr = "".join(served.stderr)
    assert "GET /api/tasks?limit=5&token=[redacted]" in log and "GET /api/tasks" in stderr
    for where, text in (("dashboard.log", log), ("stderr", stderr)):
        for how, spelling in spellings.items():
            assert spelling not in text, f"the token {how} is in {where}"
        assert cookie.split("=")[1] not in text, f"the session cookie is in {where}"


def test_exposure_warning_whenever_the_address_is_not_loopback():
    from qme.web.server import exposure_warning

    for address in ("127.0.0.1", "127.0.0.2", "::1"):
        for container in (False, True):
            assert exposure_warning(address, address, 5000, container) is None
    exposed = [("0.0.0.0", "0.0.0.0"), ("", "0.0.0.0"), ("::", "::"), ("box", "10.1.2.3")]
    for host, address in exposed:
        here = exposure_warning(host, address, 5000, False)
        assert here.startswith(f"qme: warning: listening on {host}: other machines can reach")
        inside = exposure_warning(host, address, 5000, True)
        assert inside.startswith(f"qme: warning: listening on {host} in a container")
        assert "the port it is published on" in inside and "-p 127.0.0.1:5000:5000" in inside


# Raw query values (percent-escaped where need be), the hostile ones first.
FUZZ_VALUES = [
    "9223372036854775808",
    "-9223372036854775809",
    "-1",
    "0",
    "1e309",
    "NaN",
    "inf",
    "0x10",
    "%ff",
    "%ff%fe",
    "%c3",
    "%ed%a0%80",  # a UTF-16 surrogate in UTF-8: not UTF-8
    "%00",
    "a%00b",
    "",
    "%e2%80%ae%3Cscript%3E",
    "x" * 6000,
    "5",
]
UNKNOWN_PARAMETERS = ["zz", "LIMIT", "%ff"]
# A value for each kind of path wildcard in the app's routes (a new kind must add one).
PATH_SAMPLES = {"task_id": None, "executor": "shell", "stream": None, "path": "qme.js", "name": "x"}
PATH_SAMPLES["session_id"] = "5e55a0b1-2c3d-4e5f-8a9b-0c1d2e3f4a5b"


def test_no_query_value_gives_a_500_on_any_route(queue, qme_home):
    """Every route of the app (as Bottle lists them), each known parameter (from the
    OpenAPI description) and a few unknown ones, with hostile values, over real HTTP:
    never a 500, and a 400 (JSON for the API) where the value is bad."""
    task = record(queue, "echo fuzzed", output=b"out\n", cwd=str(qme_home))
    app = create_app(queue, TOKEN)
    spec = json.loads((Path(pages.__file__).parent / "openapi.json").read_text())
    executors_known = queue.executor_names()
    served = Dashboard(qme_home)
    tried, began = 0, time.monotonic()
    try:
        for route in app.routes:
            for target in _targets(route, task.id):
                described = spec["paths"].get(_described_as(route.rule, target), {})
                params = {
                    p["name"]: p["schema"]
                    for p in described.get(route.method.lower(), {}).get("parameters", [])
                    if p["in"] == "query" and (route.rule != "/" or p["name"] != "format")
                }
                for name in [*params, *UNKNOWN_PARAMETERS]:
                    for value in FUZZ_VALUES:
                        for query in (f"{name}={value}", f"{name}=5&{name}={value}"):
                            bad = _unreadable(query) or _bad_value(
                                name, value, params.get(name), executors_known
                            )
                            _check(served, route.method, f"{target}?{query}", bad)
                            tried += 1
    finally:
        assert served.stop() == 0
    assert tried > 1000 and time.monotonic() - began < 120
    errors = (qme_home / "dashboard.log").read_text()
    assert "Traceback" not in errors and '" 500 ' not in errors


def _targets(route, task_id: str) -> list[str]:
    """The route's rule with its wildcards filled in; a task that does not exist for
    the methods that change something (so that the fuzzing changes nothing)."""
    samples = {**PATH_SAMPLES, "task_id": task_id if route.method == "GET" else "shell-0000"}
    targets = [route.rule]
    for kind in re.findall(r"<(\w+)[^>]*>", route.rule):
        assert kind in samples, f"{route.rule}: add a sample value for <{kind}> to PATH_SAMPLES"
        values = ["output", "error"] if kind == "stream" else [samples[kind]]
        pattern = rf"<{kind}[^>]*>"
        targets = [re.sub(pattern, value, target) for target in targets for value in values]
    return targets


def _described_as(rule: str, target: str) -> str:
    """The OpenAPI path of a route (the table `/` takes /api/tasks's parameters, but
    for `format`, which only the API answers)."""
    if rule == "/":
        return "/api/tasks"
    path = re.sub(r"<(\w+)(:[^>]*)?>", r"{\1}", rule)
    return path.replace("{stream}", target.rsplit("/", 1)[-1])


def _unreadable(query: str) -> bool:
    raw = unquote_to_bytes(query)
    try:
        return "\0" in raw.decode("utf-8")
    except UnicodeDecodeError:
        return True


def _bad_value(name: str, raw: str, schema: dict | None, executors_known) -> bool:
    """Whether the route must refuse the value (400): what its description allows."""
    value = unquote(raw)
    if schema is None or value == "":
        return False
    if name == "executor":  # a string in the description; the names are the store's
        return value not in executors_known
    if schema.get("type") == "integer":
        try:
            number = int(value)
        except ValueError:
            return True
        return not schema.get("minimum", -math.inf) <= number <= schema.get("maximum", math.inf)
    return "enum" in schema and value not in schema["enum"]


def _check(served: Dashboard, method: str, url: str, bad: bool) -> None:
    status, headers, body = served.raw(f"{method} {url} HTTP/1.1", BEARER)
    shown = url if len(url) < 200 else f"{url[:200]}…"
    assert status != 500 and b"Traceback" not in body, (method, shown, body[:300])
    if not bad:
        return
    assert status == 400, (method, shown, status, body[:300])
    if url.startswith(("/api/", "/ws")):
        assert headers["content-type"] == "application/json", (method, shown)
        assert json.loads(body)["error"], (method, shown)
    else:
        assert headers["content-type"].startswith("text/html"), (method, shown)
