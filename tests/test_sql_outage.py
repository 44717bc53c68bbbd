"""A real PostgreSQL or MariaDB server going away in the middle of a long command:
the command runs on with its own exit code, qme says so in one line, the rest of
the record waits in the spool, and the next qme that reaches the server delivers
it whole. PostgreSQL is stopped and started again; MariaDB (which Slurm's
accounting may share) keeps running while qme's account is locked and its
connections are killed, as a network drop would."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlservers
from helpers import HeldRun, unavailable, wait_for

from qme import Queue
from qme.store import spool

PASSWORD = "qme-test-pw"


def run_as_admin(kind: str, sql: str) -> str:
    if kind == "postgresql":
        command = ["runuser", "-u", "postgres", "--", "psql", "-Atc", sql]
    else:
        command = ["mariadb", "-N", "-e", sql]
    return subprocess.run(command, capture_output=True, check=True, text=True).stdout


class Outage:
    """The server out of qme's reach (begin), and back (end)."""

    def __init__(self, kind: str):
        if os.geteuid() != 0:
            unavailable("stopping a database server needs root")
        self.kind = kind
        if kind == "postgresql":
            version, name = subprocess.run(
                ["pg_lsclusters", "-h"], capture_output=True, check=True, text=True
            ).stdout.split()[:2]
            self.cluster = [version, name]

    def begin(self) -> None:
        if self.kind == "postgresql":
            subprocess.run(["pg_ctlcluster", *self.cluster, "stop", "-m", "fast"], check=True)
            return
        run_as_admin(self.kind, "ALTER USER 'qme'@'%' ACCOUNT LOCK")
        ids = run_as_admin(
            self.kind, "SELECT id FROM information_schema.processlist WHERE user = 'qme'"
        ).split()
        for connection in ids:
            subprocess.run(["mariadb", "-e", f"KILL CONNECTION {connection}"], check=False)

    def end(self) -> None:
        if self.kind == "postgresql":
            subprocess.run(["pg_ctlcluster", *self.cluster, "start"], check=True)
        else:
            run_as_admin(self.kind, "ALTER USER 'qme'@'%' ACCOUNT UNLOCK")


@pytest.mark.slow
@pytest.mark.parametrize("kind", sqlservers.KINDS)
def test_a_server_lost_mid_run_gets_the_whole_record_later(kind, qme_home, tmp_path):
    url = sqlservers.database_url(kind, qme_home)
    outage = Outage(kind)
    env = {**os.environ, "QME_DATABASE": url}
    with HeldRun(tmp_path, env) as run:

        def first_line_stored():
            with Queue(database=url) as queue:
                tasks = queue.list()
                return tasks and queue.read(tasks[0].id) == b"first\n" and tasks[0]

        task = wait_for(first_line_stored, what="the task and its first line on the server")
        outage.begin()
        try:
            [warning] = run.release().decode().splitlines()
            assert warning.startswith("qme: warning: ") and PASSWORD not in warning
            wait_for(lambda: spool.pending(str(qme_home)), what="the spool file")
        finally:
            outage.end()

    listing = subprocess.run(
        [sys.executable, "-m", "qme", "ls", "--json"], capture_output=True, env=env, timeout=60
    )
    assert listing.returncode == 0, listing.stderr
    with Queue(database=url) as queue:
        [shown] = queue.list()
        assert (shown.id, shown.status, shown.returncode) == (task.id, "failed", 3)
        assert queue.read(task.id) == b"first\nsecond\n"
        assert [hit.task.id for hit in queue.search("second")] == [task.id]
    assert spool.pending(str(qme_home)) == []
