"""What the dashboard's statistics page plots: tasks per day and how many failed,
per host, the most-run and the slowest commands, over a window of time.

Each store answers Store.stats(); stats_of() is the plain pass over tasks that a
store without SQL aggregates uses (the filesystem store); the SQL stores count in
the database and sum up their rows with stats_of_groups()."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from qme.record import Record
from qme.task import Task
from qme.text import from_stored

FAILED = "failed"
TOP = 10  # commands in each ranking


class Stats(Record):  # not a dataclass: `qme out` imports this (see qme/record.py)
    """Counts over the tasks started at or after since (on host, when given).

    days: (YYYY-MM-DD in local time, tasks, failed), oldest first, days without
    tasks left out; hosts: (host, tasks, failed) over every host, most first;
    most_run: (command, runs, failed); slowest: (command, runs, mean seconds,
    longest seconds) over finished runs."""

    since: float
    host: str | None = None
    days: list[tuple[str, int, int]] = list
    hosts: list[tuple[str, int, int]] = list
    most_run: list[tuple[str, int, int]] = list
    slowest: list[tuple[str, int, float, float]] = list

    @property
    def tasks(self) -> int:
        return sum(d[1] for d in self.days)

    @property
    def failed(self) -> int:
        return sum(d[2] for d in self.days)


def day_of(started: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(started))


def local_days(since: float, until: float):
    """(YYYY-MM-DD, start, end) of each local day from since's to until's."""
    day = time.localtime(since)
    start = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0, 0, 0, -1))
    while start <= until:
        day = time.localtime(start)
        following = (day.tm_year, day.tm_mon, day.tm_mday + 1, 0, 0, 0, 0, 0, -1)
        end = time.mktime(following)
        yield time.strftime("%Y-%m-%d", day), start, end
        start = end


def window_days(since: float, until: float) -> list[tuple[str, float, float]]:
    """(YYYY-MM-DD, start, end) of each local day of the window, the first one
    starting at since: the ranges a store counts each day's tasks in."""
    return [(day, max(start, since), end) for day, start, end in local_days(since, until)]


def _ranked_hosts(hosts: Counter, failed: Counter) -> list[tuple[str, int, int]]:
    """Most tasks first, ties by name: the same order whatever order they came in."""
    return [(h, n, failed[h]) for h, n in sorted(hosts.items(), key=lambda i: (-i[1], i[0]))]


def stats_of_groups(rows, since: float, host: str | None, top: int, days) -> Stats:
    """Stats from rows of (command, host, runs, failed, seconds summed over the
    finished runs, finished runs, longest seconds), one per command and host, as
    stored (qme.text.to_stored), and days of (YYYY-MM-DD, tasks, failed), those
    without tasks left out here."""
    hosts, host_failed = Counter(), Counter()
    runs, failed, finished, seconds, longest = Counter(), Counter(), Counter(), Counter(), {}
    for stored_command, stored_host, n, bad, total, done, most in rows:
        command, where = from_stored(stored_command), from_stored(stored_host) or ""
        n, bad = int(n), int(bad)  # MySQL sums integers as decimals
        hosts[where] += n
        host_failed[where] += bad
        if host is not None and where != host:
            continue
        runs[command] += n
        failed[command] += bad
        if done:
            finished[command] += done
            seconds[command] += total
            longest[command] = max(longest.get(command, 0.0), most)
    slowest = sorted(
        ((c, finished[c], seconds[c] / finished[c], longest[c]) for c in finished),
        key=lambda row: (-row[2], row[0]),
    )
    return Stats(
        since=since,
        host=host,
        days=[(day, int(n), int(bad)) for day, n, bad in days if n],
        hosts=_ranked_hosts(hosts, host_failed),
        most_run=[(c, n, failed[c]) for c, n in sorted(runs.items(), key=lambda i: (-i[1], i[0]))][
            :top
        ],
        slowest=slowest[:top],
    )


def stats_of(tasks: list[Task], since: float, host: str | None = None, top: int = TOP) -> Stats:
    """Stats of tasks (any order) in one pass each."""
    tasks = [t for t in tasks if t.started is not None and t.started >= since]
    hosts, host_failed = Counter(), Counter()
    for task in tasks:
        hosts[task.host or ""] += 1
        host_failed[task.host or ""] += task.status == FAILED
    if host is not None:
        tasks = [t for t in tasks if t.host == host]
    days, day_failed = Counter(), Counter()
    runs, failed = Counter(), Counter()
    durations: dict[str, list[float]] = defaultdict(list)
    for task in tasks:
        day = day_of(task.started)
        days[day] += 1
        day_failed[day] += task.status == FAILED
        runs[task.command] += 1
        failed[task.command] += task.status == FAILED
        if task.ended is not None:
            durations[task.command].append(task.ended - task.started)
    slowest = sorted(
        ((c, len(d), sum(d) / len(d), max(d)) for c, d in durations.items()),
        key=lambda row: (-row[2], row[0]),
    )
    return Stats(
        since=since,
        host=host,
        days=[(d, days[d], day_failed[d]) for d in sorted(days)],
        hosts=_ranked_hosts(hosts, host_failed),
        most_run=[(c, n, failed[c]) for c, n in sorted(runs.items(), key=lambda i: (-i[1], i[0]))][
            :top
        ],
        slowest=slowest[:top],
    )
