"""The dashboard attacked: a real `qme start` on 127.0.0.1, and counts of what held.

    .venv/bin/python bench/abuse_web.py

- unauthorised requests: every route of the app (as Bottle lists them) with every
  method, with no token, a wrong or almost right one, the token in a cookie or
  under Basic, a forged session cookie or another port's; held: 401.
- cross-site writes: POST, DELETE and PATCH with the session cookie and a foreign
  Origin, Referer or Sec-Fetch-Site (or none), and websocket upgrades from other
  origins; held: 403, and the task neither deleted nor rerun.
- fuzzed query values: each route's parameters (from qme/web/openapi.json) and a
  few unknown ones, with huge, negative, non-numeric, non-UTF-8, NUL, empty and
  long values, once and repeated; held: no 500.
- token leaks: the token sent in every spelling (query, other names, path, cookie,
  headers, a broken request line), then dashboard.log and --debug stderr searched
  for each spelling; held: not found.

Standard library and qme (run it with qme's venv). `figures()` returns the rows,
for a table that combines them with other figures. Bounded: about 4,000 requests,
a few seconds, loopback only.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "abuse-" + base64.urlsafe_b64encode(os.urandom(24)).decode()
HOSTILE_VALUES = [
    "9223372036854775808",
    "-9223372036854775809",
    "-1",
    "1e309",
    "NaN",
    "%ff",
    "%ff%fe",
    "%ed%a0%80",
    "%00",
    "a%00b",
    "",
    "%3Cscript%3E",
    "y" * 7000,
]
EXTRA_PARAMETERS = ["token", "callback", "%fe"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


class Served:
    """`qme start --debug --port 0` in a fresh QME_HOME, stderr kept in a file."""

    def __init__(self, home: Path):
        self.home = home
        self.errors = open(home / "stderr.txt", "w+")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "QME_HOME": str(home), "QME_SERVER_KEY": TOKEN}
        command = [sys.executable, "-m", "qme", "start", "--port", "0", "--debug"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.errors, text=True, env=env
        )
        for line in self.process.stdout:
            if "?token=" in line:
                self.port = int(re.search(r":(\d+)/", line).group(1))
                break
        else:
            self.errors.seek(0)
            raise RuntimeError(f"qme start printed no address: {self.errors.read()}")

    def send(self, method: str, target: str, headers: dict | None = None) -> tuple[int, bytes]:
        """One request exactly as given; (status, body)."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += ["Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            conn.settimeout(2)
            answer = b""
            try:
                while chunk := conn.recv(65536):
                    answer += chunk
            except TimeoutError:  # an upgraded websocket stays open
                pass
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body

    def stop(self) -> str:
        """Stop it; what it wrote to dashboard.log and stderr."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        self.errors.seek(0)
        written = self.errors.read()
        self.errors.close()
        return (self.home / "dashboard.log").read_text() + written


def routes(queue, task_id: str) -> list[tuple[str, str, str]]:
    """(method, rule, target) for every route of the app, its wildcards filled in
    (the task under attack where a GET may read it, one that does not exist where a
    request could change something)."""
    from qme.web.app import create_app

    filled = []
    for route in create_app(queue, TOKEN).routes:
        targets = [route.rule]
        for wildcard in re.findall(r"<[^>]+>", route.rule):
            kind = wildcard[1:-1].split(":")[0]
            sample = task_id if route.method == "GET" else "shell-0000"
            values = {"stream": ["output", "error"], "path": ["qme.js"]}.get(kind, [sample])
            targets = [t.replace(wildcard, v) for t in targets for v in values]
        filled += [(route.method, route.rule, target) for target in targets]
    return filled


def unauthorised(served: Served, targets) -> tuple[int, int]:
    forged = "0" * 64
    credentials = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Basic " + base64.b64encode(f"qme:{TOKEN}".encode()).decode()},
        {"Cookie": f"qme_session_{served.port}={TOKEN}"},
        {"Cookie": f"qme_session_{served.port}={forged}"},
        {"Cookie": f"qme_session_{served.port + 1}={served.session}"},
        {"X-Api-Key": TOKEN},
    ]
    queries = ["", "?token=wrong", f"?token={TOKEN[:-1]}", f"?Token={TOKEN}"]
    tried = held = 0
    for target in sorted({t for _, _, t in targets}):
        for method in METHODS:
            for query in queries:
                for headers in credentials if not query else [{}]:
                    status, body = served.send(method, target + query, headers)
                    tried += 1
                    held += status == 401 and b"abuse-task" not in body
    return tried, held


def cross_site(served: Served, queue, task_id: str) -> tuple[int, int]:
    own = f"http://127.0.0.1:{served.port}"
    cookie = {"Cookie": f"qme_session_{served.port}={served.session}"}
    variants = [
        {},
        {"Origin": "http://evil.example"},
        {"Origin": f"http://127.0.0.1:{served.port + 1}"},
        {"Origin": f"http://localhost:{served.port}"},
        {"Origin": f"https://127.0.0.1:{served.port}"},
        {"Origin": f"{own}.evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {"Referer": f"{own}.evil.example/"},
        {"Origin": own, "Sec-Fetch-Site": "cross-site"},
        {"Origin": own, "Sec-Fetch-Site": "same-site"},
        {"Origin": own, "Sec-Fetch-Site": "none"},
        {"Referer": f"{own}/", "Sec-Fetch-Site": "cross-site"},
    ]
    writes = [
        ("POST", f"/api/tasks/{task_id}/rerun"),
        ("POST", f"/api/tasks/{task_id}/cancel"),
        ("POST", f"/api/tasks/{task_id}/actions/status"),
        ("DELETE", f"/api/tasks/{task_id}"),
        ("PATCH", f"/api/tasks/{task_id}"),
    ]
    tried = held = 0
    for method, target in writes:
        for headers in variants:
            status, _ = served.send(method, target, {**cookie, **headers})
            tried += 1
            held += status == 403
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
    upgrade["Sec-WebSocket-Key"] = base64.b64encode(os.urandom(16)).decode()
    for headers in variants:
        status, _ = served.send("GET", "/ws", {**cookie, **upgrade, **headers})
        tried += 1
        held += status == 403
    intact = [t.id for t in queue.list()] == [task_id]
    return tried, held if intact else 0


def fuzzed(served: Served, targets) -> tuple[int, int]:
    """(requests, answered without a 500)."""
    import qme.web

    spec = json.loads((Path(qme.web.__file__).parent / "openapi.json").read_text())
    tried = held = 0
    for method, rule, target in targets:
        path = "/api/tasks" if rule == "/" else re.sub(r"<(\w+)[^>]*>", r"{\1}", rule)
        path = path.replace("{stream}", target.rsplit("/", 1)[-1])
        operation = spec["paths"].get(path, {}).get(method.lower(), {})
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        for name in names + EXTRA_PARAMETERS:
            for value in HOSTILE_VALUES:
                for query in (f"{name}={value}", f"{name}=1&{name}={value}&{name}"):
                    status, body = served.send(
                        method, f"{target}?{query}", {"Authorization": f"Bearer {TOKEN}"}
                    )
                    tried += 1
                    held += status != 500 and b"Traceback" not in body
    return tried, held


def token_spellings() -> dict[str, str]:
    escaped = "".join(f"%{byte:02X}" for byte in TOKEN.encode())
    return {
        "as typed": TOKEN,
        "percent-escaped": escaped,
        "lower-case escapes": escaped.lower(),
        "escaped twice": escaped.replace("%", "%25"),
        "one letter escaped": TOKEN[:3] + f"%{ord(TOKEN[3]):02x}" + TOKEN[4:],
        "a near miss": TOKEN[:-1],
        "in Basic auth": base64.b64encode(f"qme:{TOKEN}".encode()).decode(),
    }


def leaks(served: Served) -> list[str]:
    """Send the token in every spelling and place; the spelling each request carried."""
    spelled = token_spellings()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    sent = [
        ("as typed", "GET", f"/api/tasks?token={TOKEN}", {}),
        ("as typed", "GET", f"/api/tasks?%74oken={TOKEN}", {}),
        ("percent-escaped", "GET", f"/api/tasks?%74%6F%6B%65%6E={spelled['percent-escaped']}", {}),
        ("one letter escaped", "GET", f"/api/tasks?token={spelled['one letter escaped']}", {}),
        ("escaped twice", "GET", f"/api/tasks?token={spelled['escaped twice']}", {}),
        ("a near miss", "GET", f"/api/tasks?token={spelled['a near miss']}", {}),
        ("as typed", "GET", f"/?token={TOKEN}", {}),
        ("as typed", "GET", f"/api/tasks?key={TOKEN}", bearer),
        ("lower-case escapes", "GET", f"/api/tasks?q={spelled['lower-case escapes']}", bearer),
        ("as typed", "GET", f"/api/tasks/{TOKEN}", bearer),
        ("percent-escaped", "GET", f"/{spelled['percent-escaped']}", bearer),
        ("as typed", "GET", f"/api/tasks?q=%ff{TOKEN}", bearer),
        (
            "in Basic auth",
            "GET",
            "/api/tasks",
            {"Authorization": f"Basic {spelled['in Basic auth']}"},
        ),
        ("as typed", "GET", "/api/tasks", {"Cookie": f"token={TOKEN}", "X-Token": TOKEN}),
        (
            "as typed",
            "POST",
            f"/api/tasks/x/rerun?token={TOKEN}",
            {"Origin": "http://evil.example"},
        ),
    ]
    for _, method, target, headers in sent:
        served.send(method, target, headers)
    # Request lines gevent refuses itself (it logs them as errors).
    for line in (f"GET /?token={TOKEN} HTTP/9.9", f"GET /?token={TOKEN}&pad={'x' * 9000}"):
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
            conn.sendall(f"{line}\r\n\r\n".encode())
            conn.recv(4096)
    return [spelled[name] for name, *_ in sent] + [TOKEN, TOKEN]


def figures(work: Path | None = None) -> list[tuple[str, int, int]]:
    """Rows (what, tried, held) for the dashboard's part of the abuse table."""
    from qme import Queue

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        home = Path(tmp)
        queue = Queue(config_dir=home)
        task = queue.run(["true"], message="abuse-task", cwd=str(home))
        served = Served(home)
        try:
            served.session = _session(served)
            targets = routes(queue, task.id)
            rows = [
                ("unauthorised dashboard requests refused", *unauthorised(served, targets)),
                ("cross-site writes and websockets refused", *cross_site(served, queue, task.id)),
                ("fuzzed query values answered without a 500", *fuzzed(served, targets)),
            ]
            carried = leaks(served)
        finally:
            written = served.stop()
            queue.close()
        kept = sum(spelling not in written for spelling in carried)
        rows.append(("requests with the token kept out of the log and stderr", len(carried), kept))
    return rows


def _session(served: Served) -> str:
    """The session cookie's value, as a browser gets it from the printed address."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
        conn.sendall(f"GET /?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        answer = conn.recv(65536).decode("latin-1")
    return re.search(r"Set-Cookie: qme_session_\d+=([^;]+);", answer).group(1)


def table(rows) -> str:
    lines = ["| what | tried | held |", "|---|---:|---:|"]
    lines += [f"| {what} | {tried:,} | {held:,} |" for what, tried, held in rows]
    return "\n".join(lines)


def main() -> int:
    began = time.monotonic()
    rows = figures()
    print(table(rows))
    print(f"\n`{' '.join(sys.argv)}`, {time.monotonic() - began:.1f} s, 127.0.0.1 only")
    return 0 if all(tried == held for _, tried, held in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
