"""Bounded capture of one stream: the head goes to the store as it comes, the tail
waits in a buffer, and the middle of a huge output is counted, not kept."""

from __future__ import annotations


class StreamCapture:
    def __init__(self, limit: int):
        """limit: bytes to keep in all (0 keeps everything)."""
        self.head_left = limit - limit // 2 if limit else -1  # -1: no limit
        self.tail_limit = limit // 2
        self.tail = bytearray()  # the last bytes seen, trimmed to tail_limit now and then
        self.head_size = 0
        self.total = 0

    def feed(self, data: bytes) -> bytes:
        """Account for data; return the part to store now."""
        self.total += len(data)
        if self.head_left < 0:
            self.head_size += len(data)
            return data
        keep = data[: self.head_left]
        self.head_left -= len(keep)
        self.head_size += len(keep)
        if len(keep) < len(data) and self.tail_limit:
            self.tail += memoryview(data)[len(keep) :]
            if len(self.tail) > 2 * self.tail_limit:  # trimmed in bulk: one move per ~tail
                del self.tail[: -self.tail_limit]
        return keep

    def finish(self) -> bytes:
        """The rest to store: the tail, preceded by a line saying what was cut."""
        tail = bytes(self.tail[-self.tail_limit :]) if self.tail else b""
        self.tail = bytearray()
        cut = self.total - self.head_size - len(tail)
        if cut <= 0:
            return tail
        return b"\r\n[qme: %d bytes not kept]\r\n" % cut + tail
