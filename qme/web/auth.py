"""Who may use the dashboard: the token, the session cookie and the origin check.

The dashboard can run commands (rerun), so it is guarded like a remote shell:
every request must show the token, as `Authorization: Bearer TOKEN` (scripts),
as `?token=TOKEN` (the URL `qme start` prints; the page then sets a cookie and
drops the token from the address bar), or as that HttpOnly, SameSite=Strict
cookie. Requests that change state (POST, DELETE) made with the cookie must also
come from the dashboard's own pages (Origin), which stops other sites and other
local web apps from acting through a logged-in browser. Works on the WSGI
environ, so that the app and the websocket upgrade share the same checks.
"""

from __future__ import annotations

import hashlib
import hmac
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD"})
BEARER, COOKIE, QUERY = "bearer", "cookie", "query"


class Guard:
    def __init__(self, token: str):
        if not token:
            raise ValueError("the dashboard needs a token")
        self._token = token.encode()
        # The cookie carries a value derived from the token, not the token itself.
        self.session = hmac.new(self._token, b"qme dashboard session", hashlib.sha256).hexdigest()

    def credential(self, environ) -> str | None:
        """How the request shows the token: BEARER, COOKIE, QUERY, or None."""
        scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and _same(value.strip(), self._token):
            return BEARER
        cookie = _cookie(environ, cookie_name(environ))
        if cookie is not None and _same(cookie, self.session.encode()):
            return COOKIE
        tokens = parse_qs(environ.get("QUERY_STRING", "")).get("token")
        if tokens and _same(tokens[-1], self._token):
            return QUERY
        return None

    def refusal(self, environ) -> tuple[int, str] | None:
        """(status, reason) when the request must be refused, else None."""
        how = self.credential(environ)
        if how is None:
            return 401, "this dashboard needs its token"
        changes_state = environ.get("REQUEST_METHOD", "GET") not in SAFE_METHODS
        is_upgrade = environ.get("HTTP_UPGRADE", "").lower() == "websocket"
        # A bearer header cannot be sent cross-site without CORS, which is never granted.
        if (changes_state or is_upgrade) and how != BEARER and not same_origin(environ):
            return 403, "refused: the request does not come from this dashboard's pages"
        return None


def cookie_name(environ) -> str:
    # Cookies are shared by every port of a host: one name per port keeps two
    # dashboards on one machine from logging each other out.
    return f"qme_session_{environ.get('SERVER_PORT', '')}"


def own_origin(environ) -> str:
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"


def same_origin(environ) -> bool:
    """Whether a browser request comes from one of this dashboard's own pages."""
    if environ.get("HTTP_SEC_FETCH_SITE", "same-origin") != "same-origin":
        return False
    origin = environ.get("HTTP_ORIGIN")
    if not origin and environ.get("HTTP_REFERER"):
        parts = urlsplit(environ["HTTP_REFERER"])
        origin = f"{parts.scheme}://{parts.netloc}"
    return bool(origin) and origin == own_origin(environ)


def _same(given: str, expected: bytes) -> bool:
    """Constant-time comparison (no timing hints about how much of a guess is right)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)


def _cookie(environ, name: str) -> str | None:
    try:
        morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get(name)
    except CookieError:
        return None
    return morsel.value if morsel else None
