"""`serve()`: the dashboard on gevent's WSGI server, with websockets, until Ctrl-C/SIGTERM.

gevent's monkey patching happens here, first, and only in this process: with it,
a blocking call in one request (a subprocess, a socket) no longer freezes every
websocket. The CLI and the Queue API never import this module.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import time

from qme.api import Queue
from qme.errors import QmeError

log = logging.getLogger("qme.web")
ERRORS = logging.getLogger("qme.web.errors")
STOP_SECONDS = 2.0


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


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, address: str, port: int, container: bool) -> str | None:
    """What to tell whoever starts a dashboard bound to address (asked for as host)
    that others may reach; None on a loopback address."""
    if is_loopback(address):
        return None
    risk = "over plain HTTP (anyone who sees the token can run commands here)"
    if not container:
        return f"qme: warning: listening on {host}: other machines can reach this dashboard, {risk}"
    # In a container, binding every interface is what publishing a port needs: the
    # engine's port mapping decides who reaches it.
    return (
        f"qme: warning: listening on {host} in a container: whoever reaches the port it is "
        f"published on reaches this dashboard, {risk}; -p 127.0.0.1:{port}:{port} keeps it to "
        f"this machine (then open http://127.0.0.1:{port}/?token=…)"
    )


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

    announce(text) is given the URL to open, with its token, once the server listens.
    Nothing logged or printed on stderr meanwhile holds the token (qme/web/logs.py)."""
    from gevent import monkey

    monkey.patch_all()
    import gevent
    from gevent.pywsgi import WSGIServer

    from qme.web import logs
    from qme.web.app import create_app
    from qme.web.auth import Guard
    from qme.web.hub import Hub

    begun = time.perf_counter()
    guard = Guard(token)
    scrub = logs.Scrubber(token, guard.session)
    with logs.scrubbed_stderr(scrub):
        access = logs.setup(scrub, log_file, debug)
        hub = Hub(queue, period=period)
        app = create_app(queue, token, hub=hub, debug=debug)
        server = WSGIServer(
            (host, port), app, handler_class=_handler(), log=access, error_log=ERRORS
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
        warning = exposure_warning(host, server.socket.getsockname()[0], bound, in_container())
        if warning:
            log.warning("%s", warning)
            announce(warning)
        log.debug("ready in %.0f ms", (time.perf_counter() - begun) * 1000)

        server.serve_forever()
        queue.close()
    announce("qme dashboard stopped")
    return 0


def _handler():
    """gevent's request handler, with websockets, quick, and with no token in its log."""
    import gevent
    from geventwebsocket.handler import WebSocketHandler

    from qme.web import logs

    class Handler(WebSocketHandler):
        def handle(self):
            # gevent writes a response's headers and body separately: with Nagle's
            # algorithm on, the body waits for the browser's delayed ACK (40 ms).
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle()

        def format_request(self):
            # The access line without the query's values (they may hold the token).
            line = super().format_request()
            words = (self.requestline or "").split(" ")
            if len(words) > 1:
                words[1] = logs.request_target(words[1])
                line = line.replace(self.requestline, " ".join(words), 1)
            return line

        def _log_error(self, kind, value, tb):
            # gevent's own prints the request's environ (headers, query) with the traceback.
            if not issubclass(kind, gevent.GreenletExit):
                target = logs.request_target(self.path or "")
                ERRORS.error("%s %s failed", self.command, target, exc_info=(kind, value, tb))

    return Handler
