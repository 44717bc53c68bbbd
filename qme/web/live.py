"""The websocket endpoint: connects one page to the hub (see qme/web/hub.py).

Each connection has two greenlets: this one sends what the hub queues for the
page (with a timeout, so a browser that stops reading cannot hold it forever),
and a reader that handles the page's `follow` messages and notices the close
frame (a handler that only sends would never see it).
"""

from __future__ import annotations

import json
import logging

from qme.web.hub import Hub, Subscriber

log = logging.getLogger("qme.web")

SEND_TIMEOUT_SECONDS = 10


def serve_socket(ws, hub: Hub) -> None:
    import gevent
    from geventwebsocket.exceptions import WebSocketError

    subscriber = hub.subscribe()
    reader = gevent.spawn(_read, ws, hub, subscriber)
    try:
        for text in subscriber:
            with gevent.Timeout(SEND_TIMEOUT_SECONDS):
                ws.send(text)
    except (WebSocketError, OSError, gevent.Timeout) as exc:
        log.debug("websocket client gone: %s", exc or type(exc).__name__)
    finally:
        hub.unsubscribe(subscriber)
        reader.kill(block=False)


def _read(ws, hub: Hub, subscriber: Subscriber) -> None:
    from geventwebsocket.exceptions import WebSocketError

    try:
        while not subscriber.closed:
            raw = ws.receive()  # None once the page closed the connection
            if raw is None:
                break
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if isinstance(message, dict) and isinstance(message.get("follow"), str):
                offsets = message.get("offsets")
                hub.follow(
                    subscriber, message["follow"], offsets if isinstance(offsets, dict) else {}
                )
    except (WebSocketError, OSError):
        pass
    finally:
        subscriber.close()
