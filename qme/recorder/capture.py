"""Bounded capture of one stream: the head goes to the store as it comes, the tail
waits in a buffer, and the middle of a huge output is counted, not kept.

It also keeps when the output came, cheaply: an index of (byte offset, time)
pairs, one per chunk that arrives at least `resolution` seconds after the last
one kept (never one per byte or per read), at most MAX_TIMES of them: beyond that
the resolution doubles and the index is thinned to it. timing() gives it in the
offsets of the bytes stored (what the head and tail keep)."""

from __future__ import annotations

from time import monotonic

from qme.task import CUT_LINE

RESOLUTION = 0.01  # seconds: output that comes closer together shares one time
MAX_TIMES = 1000  # entries kept per stream, whatever the output's size or length


class StreamCapture:
    def __init__(self, limit: int, resolution: float = RESOLUTION, started: float | None = None):
        """limit: bytes to keep in all (0 keeps everything). started: the
        time.monotonic() the times count from (default: now)."""
        self.head_left = limit - limit // 2 if limit else -1  # -1: no limit
        self.tail_limit = limit // 2
        self.tail = bytearray()  # the last bytes seen, trimmed to tail_limit now and then
        self.head_size = 0
        self.total = 0
        self.started = monotonic() if started is None else started
        self.resolution = resolution
        self.times: list[list[int]] = []  # [offset in all the stream's bytes, milliseconds]
        self.last_time = -resolution  # seconds since started of the last entry kept
        self.cut = 0  # bytes left out of the middle, once finish() has told

    def feed(self, data: bytes) -> bytes:
        """Account for data; return the part to store now."""
        now = monotonic() - self.started
        if now - self.last_time >= self.resolution and data:
            self._time(now)
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

    def _time(self, now: float) -> None:
        self.times.append([self.total, int(now * 1000)])
        self.last_time = now
        if len(self.times) > MAX_TIMES:  # merged: a chunk keeps its first time
            self.resolution = max(2 * self.resolution, 0.001)
            step = self.resolution * 1000
            kept = [self.times[0]]
            for entry in self.times[1:]:
                if entry[1] - kept[-1][1] >= step:
                    kept.append(entry)
            self.times = kept

    def finish(self) -> bytes:
        """The rest to store: the tail, preceded by a line saying what was cut."""
        tail = bytes(self.tail[-self.tail_limit :]) if self.tail else b""
        self.tail = bytearray()
        cut = self.total - self.head_size - len(tail)
        if cut <= 0:
            return tail
        marker = CUT_LINE % cut
        self.cut, self.marker_size = cut, len(marker)
        return marker + tail

    def timing(self) -> list[list[int]]:
        """The index as [offset in the stored bytes, milliseconds since started]
        pairs, offsets rising (after finish(): the bytes left out of the middle
        show at once where the line that says so is)."""
        if not self.cut:
            return [list(entry) for entry in self.times]
        head, tail_start = self.head_size, self.head_size + self.cut
        found: list[list[int]] = []

        def put(offset: int, ms: int) -> None:
            if not found or (offset > found[-1][0] and ms > found[-1][1]):
                found.append([offset, ms])

        for n, (offset, ms) in enumerate(self.times):
            end = self.times[n + 1][0] if n + 1 < len(self.times) else self.total
            if offset < head:
                put(offset, ms)
            if offset < tail_start and end > head:
                put(head, ms)  # the line that says what was cut
            if end > tail_start:
                put(head + self.marker_size + max(offset, tail_start) - tail_start, ms)
        return found
