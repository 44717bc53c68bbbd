"""qme start: serve the live web dashboard and REST API (see qme/web/)."""

from __future__ import annotations

import os

from qme import private
from qme.errors import ConfigError

DASHBOARD_LOG = "dashboard.log"


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        name,
        help="serve the live web dashboard and REST API",
        description="Serve the dashboard (task table, task pages, live updates, actions) "
        "and the REST API, and print the address to open, with its access token. "
        "QME_SERVER_KEY sets the token (qme generate-key makes one); otherwise a new "
        "one is made each time. QME_SOCKET_UPDATE_SECONDS sets how often the store is "
        "polled when it cannot tell about changes (default 1). Logs go to "
        f"$QME_HOME/{DASHBOARD_LOG}. Ctrl-C or SIGTERM stops it.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; "
        "0.0.0.0: every interface)",
    )
    parser.add_argument(
        "--port", type=int, default=5000, help="port (default 5000; 0 picks a free one)"
    )
    parser.add_argument(
        "--debug",
        dest="start_debug",
        action="store_true",
        help="log every request, also on stderr, and show tracebacks",
    )
    return parser


def poll_period(text: str | None) -> float:
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise ConfigError(
            f"QME_SOCKET_UPDATE_SECONDS must be a number of seconds above 0, not '{text}'"
        )
    return value


def run(args) -> int:
    import secrets

    from qme.cli import make_queue
    from qme.web import server  # gevent, Bottle: only for this command

    token = os.environ.get("QME_SERVER_KEY") or secrets.token_urlsafe(32)
    period = poll_period(os.environ.get("QME_SOCKET_UPDATE_SECONDS"))
    queue = make_queue(args)
    queue.store  # noqa: B018 - open it now: a broken store is an error before serving
    private.make_dir(queue.settings.home)
    return server.serve(
        queue,
        token=token,
        host=args.host,
        port=args.port,
        debug=args.debug or args.start_debug,
        period=period,
        log_file=os.path.join(queue.settings.home, DASHBOARD_LOG),
        announce=lambda text: _announce(args.env, text),
    )


def _announce(env, text: str) -> None:
    env.out(text)
    env.stdout.flush()  # at once: whoever started the dashboard waits for its address
