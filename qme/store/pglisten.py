"""PostgreSQL's LISTEN/NOTIFY for a live view: every write of the store sends a
NOTIFY in its transaction, and a Listener wakes up when one arrives.

The Listener has its own connection, out of the pool, and waits on its socket
with `select.select`, looked up at each call: under gevent's monkey patching (the
dashboard) that waits in the event loop, whenever psycopg was imported.
"""

from __future__ import annotations

import select
import time


class Listener:
    def __init__(self, engine, channel: str):
        raw = engine.raw_connection()
        self.conn = raw.driver_connection
        raw.detach()  # its own connection for as long as it listens
        self.conn.rollback()
        self.conn.autocommit = True
        self.conn.execute(f"LISTEN {channel}")

    def wait(self, timeout: float) -> bool:
        """True when a change was announced within timeout seconds. Announcements
        that arrived meanwhile count as one: a live view then reads the store once."""
        pgconn = self.conn.pgconn
        deadline = time.monotonic() + timeout
        while True:
            pgconn.consume_input()  # raises when the connection is gone
            if pgconn.notifies() is not None:
                while pgconn.notifies() is not None:
                    pass
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([pgconn.socket], [], [], left)

    def close(self) -> None:
        self.conn.close()
