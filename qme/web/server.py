"""`serve()`: the dashboard on gevent's WSGI server, with websockets, until Ctrl-C/SIGTERM.

gevent's monkey patching happens here, first, and only in this process: with it,
a blocking call in one request (a subprocess, a socket) no longer freezes every
websocket. The CLI and the Queue API never import this module.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
import time

from qme.api import Queue
from qme.errors import QmeError

log = logging.getLogger("qme.web")
TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+")
STOP_SECONDS = 2.0


class _Redact(logging.Filter):
    """Keep the token out of the log: access lines carry the URL it came in."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = TOKEN_IN_TEXT.sub(r"\1[redacted]", record.getMessage())
        record.args = ()
        return True


def _logging(log_file: str | None, debug: bool) -> logging.Logger:
    handlers: list[logging.Handler] = []
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    if debug or not log_file:
        handlers.append(logging.StreamHandler(sys.stderr))
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_Redact())
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    return logging.getLogger("qme.web.access")


def url_for(host: str, port: int) -> str:
    """The address to open in a browser for a server bound to host."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def in_container() -> bool:
    """Whether this process runs in a container with a network of its own (podman,
    docker; not apptainer, which shares the host's network)."""
    marks = ("/run/.containerenv", "/.dockerenv")
    return any(os.path.exists(mark) for mark in marks)


def serve(
    queue: Queue,
    *,
    token: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    debug: bool = False,
    period: float = 1.0,
    log_file: str | None = None,
    announce=print,
) -> int:
    """Serve the dashboard for queue until SIGINT or SIGTERM; returns the exit status.

    announce(text) is given the URL to open, with its token, once the server listens."""
    from gevent import monkey

    monkey.patch_all()
    import gevent
    from gevent.pywsgi import WSGIServer
    from geventwebsocket.handler import WebSocketHandler

    from qme.web.app import create_app
    from qme.web.auth import Guard
    from qme.web.hub import Hub

    begun = time.perf_counter()
    access = _logging(log_file, debug)
    hub = Hub(queue, period=period)
    app = create_app(queue, token, hub=hub, debug=debug)
    guard = Guard(token)

    class Handler(WebSocketHandler):
        def handle(self):
            # gevent writes a response's headers and body separately: with Nagle's
            # algorithm on, the body waits for the browser's delayed ACK (40 ms).
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle()

    server = WSGIServer(
        (host, port),
        app,
        handler_class=Handler,
        log=access,
        error_log=logging.getLogger("qme.web.errors"),
    )
    server.logger = access  # gevent-websocket's handler logs requests here
    # Refused websocket upgrades are answered by the app (401/403), not upgraded.
    server.pre_start_hook = lambda handler: guard.refusal(handler.environ) is not None
    try:
        server.start()
    except OSError as exc:
        raise QmeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (--port picks another)"
        ) from None
    hub.start()

    def stop():
        log.info("stopping")
        hub.stop()
        server.stop(timeout=STOP_SECONDS)

    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stop)
    bound = server.server_port
    kind, where = queue.store_location()
    log.info("dashboard for %s store %s on %s:%s", kind, where, host, bound)
    announce(
        f"qme dashboard: {kind} store {where}"
        + (f"; log in {log_file}" if log_file else "")
        + f"\nOpen this address in a browser (it holds the access token):\n"
        f"    {url_for(host, bound)}?token={token}\n"
        "Ctrl-C stops it."
    )
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and in_container():
        # Binding every interface is what a container needs: the engine decides who
        # reaches it (-p 127.0.0.1:5000:5000 keeps it to the host).
        announce(
            f"In a container: open it where port {bound} is published "
            f"(with -p 127.0.0.1:{bound}:{bound}: http://127.0.0.1:{bound}/?token=…)"
        )
    elif not loopback:
        announce(
            f"qme: warning: listening on {host}: other machines can reach this dashboard, "
            "over plain HTTP (anyone who sees the token can run commands here)"
        )
    log.debug("ready in %.0f ms", (time.perf_counter() - begun) * 1000)

    server.serve_forever()
    queue.close()
    announce("qme dashboard stopped")
    return 0
