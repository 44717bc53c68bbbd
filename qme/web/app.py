"""The dashboard's WSGI app: `create_app(queue, token)`.

The app gets its Queue handed in and reads no configuration. Every request
passes the Guard (qme/web/auth.py) first; library errors become JSON errors for
/api/… and a short HTML page elsewhere; every response carries headers that
keep the browser from running or framing anything the dashboard did not send.
"""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path
from urllib.parse import parse_qsl, unquote_to_bytes, urlencode

import bottle
from bottle import HTTPError, HTTPResponse, request, response, static_file

from qme.api import Queue
from qme.errors import (
    AmbiguousTask,
    NoSuchAction,
    NoSuchTask,
    QmeError,
    Refused,
    StoreError,
    UnknownExecutor,
)
from qme.web import auth, pages, rest
from qme.web.hub import Hub
from qme.web.live import serve_socket

STATIC = Path(__file__).parent / "static"
PAGES = ("/tasks/", "/executor/", "/sessions/")  # and "/": where ?token= sets the cookie

# Library errors -> HTTP status; the first match wins.
ERROR_STATUS = [
    (NoSuchTask, 404),
    (UnknownExecutor, 404),
    (NoSuchAction, 404),
    (AmbiguousTask, 400),
    (Refused, 409),
    (StoreError, 503),
    (QmeError, 400),
]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def create_app(queue: Queue, token: str, *, hub: Hub | None = None, debug: bool = False):
    """The dashboard for queue; requests must show token (see qme/web/auth.py).

    Without a hub (tests, scripts) nothing is pushed live; `qme.web.server.serve`
    passes a running one. With debug, internal errors show their traceback."""
    guard = auth.Guard(token)
    hub = hub or Hub(queue)
    app = bottle.Bottle()
    app.catchall = True
    app.install(_library_errors)
    app.default_error_handler = lambda error: _error_page(error, debug)

    @app.hook("before_request")
    def check_token():
        request.environ["qme.started"] = time.perf_counter()
        refusal = guard.refusal(request.environ)
        if refusal:
            raise HTTPError(*refusal)
        malformed = _malformed(request.environ)
        if malformed:
            raise HTTPError(400, malformed)
        is_page = request.path == "/" or request.path.startswith(PAGES)
        if is_page and guard.credential(request.environ) == auth.QUERY:
            raise _enter(guard)

    @app.hook("after_request")
    def harden():
        _harden(response)
        started = request.environ.get("qme.started")
        if started is not None:
            elapsed = (time.perf_counter() - started) * 1000
            response.set_header("Server-Timing", f"app;dur={elapsed:.1f}")

    @app.get("/static/<path:path>")
    def static(path):
        served = static_file(path, root=str(STATIC))
        served.set_header("Cache-Control", "private, max-age=3600")
        return served

    @app.get("/ws")
    def websocket():
        ws = request.environ.get("wsgi.websocket")
        if ws is None:
            raise HTTPError(400, "this address takes websocket connections")
        serve_socket(ws, hub)
        return ""

    pages.install(app, queue)
    rest.install(app, queue, hub)
    return app


def _malformed(environ) -> str | None:
    """Why the address cannot be read, for every route alike: its path and its query
    must be UTF-8 text without NUL (Bottle would drop the bytes it cannot decode
    from the path, and fail on them in the query)."""
    path = environ.get("bottle.raw_path", environ.get("PATH_INFO", ""))
    query = unquote_to_bytes(environ.get("QUERY_STRING", "").replace("+", " "))
    for part, raw in (("path", path.encode("latin-1", "replace")), ("query", query)):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"the address's {part} is not UTF-8 text"
        if "\0" in text:
            return f"the address's {part} holds a NUL character"
    return None


def _enter(guard: auth.Guard) -> HTTPResponse:
    """The token came in the URL: set the session cookie and send the browser to
    the same page without the token (so it stays out of history and screenshots)."""
    kept = [(k, v) for k, v in parse_qsl(request.query_string) if k != "token"]
    target = request.path + (f"?{urlencode(kept)}" if kept else "")
    entered = HTTPResponse(status=303, headers={"Location": target})
    entered.set_cookie(
        auth.cookie_name(request.environ),
        guard.session,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=request.urlparts.scheme == "https",
    )
    return entered


def _harden(target) -> None:
    """The security headers, where the route did not set a stricter one."""
    for name, value in SECURITY_HEADERS.items():
        if name not in target:
            target.set_header(name, value)
    if "Cache-Control" not in target:
        target.set_header("Cache-Control", "no-store")


def _library_errors(callback):
    """A plugin: QmeError from any route becomes an HTTP error with its message."""

    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except QmeError as exc:
            status = next(code for kind, code in ERROR_STATUS if isinstance(exc, kind))
            raise HTTPError(status, str(exc)) from None

    return wrapper


# A 401 page asks for the token: sent as ?token= to the same address, it is taken
# as the link qme start prints is (a cookie set, the token dropped from the address).
# No style sheet: the dashboard's own needs the token too.
TOKEN_FORM = (
    "<p>Paste the token that <code>qme start</code> printed (the end of its address, "
    "after <code>?token=</code>), or open that address.</p>"
    '<form method="get"><label>Token <input id="token" name="token" type="password" '
    'autocomplete="off" autofocus required size="40"></label> '
    '<button type="submit">Open the dashboard</button></form>'
)


def _error_page(error: HTTPError, debug: bool) -> str:
    """Errors as JSON for the API and scripts, as a short page for browsers. Never
    any data: a 401 says only that the token is missing."""
    _harden(response)
    message = error.body if isinstance(error.body, str) else "error"
    if error.status_code == 500:
        message = "internal error (details in dashboard.log)"
        if debug and error.traceback:
            message = error.traceback
    if error.status_code == 401:
        response.set_header("WWW-Authenticate", 'Bearer realm="qme"')
    wants_json = request.path.startswith("/api/") or "json" in request.get_header("Accept", "")
    if wants_json or request.path == "/ws":
        response.content_type = "application/json"
        return json.dumps({"error": message, "status": error.status_code})
    response.content_type = "text/html; charset=utf-8"
    hint = TOKEN_FORM if error.status_code == 401 else '<p><a href="/">All tasks</a></p>'
    if error.status_code == 401:
        message = "This dashboard needs its token."
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{error.status_code}'
        f" · qme</title></head><body><h1>{error.status_code}</h1><p>{escape(message)}</p>"
        f"{hint}</body></html>"
    )
