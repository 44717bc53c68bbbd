"""QueueMe 0.0.14 users carry over: homes made by the real QueueMe (filesystem and
SQLite store, its config.ini) open in qme with their fields mapped and their
originals untouched; QueueMe's Python API (`qme.main`) keeps QueueMe's shapes.

QueueMe itself comes from PyPI (tests/queueme014.py, scripts/queueme.sh).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from queueme014 import make_home, queueme, snapshot
from test_slurm import slurm  # noqa: F401 - the fixture
from test_web import TOKEN, Client

from qme import Queue
from qme.web.app import create_app

pytestmark = pytest.mark.slow  # QueueMe's own command takes 0.1 to 0.5 s a task

DATABASES = ["filesystem", "sqlite"]


@pytest.fixture
def cli(qme):
    """qme's own command, its output as text."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        done = qme(*args, env=env)
        done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()
        return done

    return run


@pytest.fixture(params=DATABASES)
def home(request, tmp_path):
    """(home, QueueMe's own `get` of each task by command, the folder they ran in)."""
    home, work = tmp_path / "queueme-home", tmp_path / "work"
    work.mkdir()
    return home, make_home(home, request.param, work), work


def test_a_queueme_home_opens_with_its_fields_mapped(home):
    path, records, work = home
    before = snapshot(path)
    queue = Queue(config_dir=path)  # config.ini as QueueMe wrote it says which store
    tasks = {task.command: task for task in queue.list()}
    assert sorted(tasks) == sorted(records)
    for command, record in records.items():
        task = queue.get(record["uid"])
        data = record["data"]
        assert task.id == record["uid"] and task.executor == "shell"
        assert task.output == "".join(data["output"]).encode()
        assert task.error == "".join(data["error"]).encode()
        assert task.returncode == data["returncode"] and task.pid == data["pid"]
        assert task.cwd == str(work) == data["pwd"] and task.user == data["user"]
        assert task.argv == data["cmd"] and task.message == data.get("message")
        assert task.status == ("complete" if data["returncode"] == 0 else "failed")
        assert abs(task.ended - _local(data["timestamp"])) < 1e-3
        assert task.started <= task.ended
        # ... and back: QueueMe's own `qme get` of it, key for key
        assert queue.queueme_record(task) == record, command
    assert tasks["echo hello world"].message == "with a message"
    assert tasks["ls no-such-file"].status == "failed"
    hit = queue.search("hello")[0]
    assert hit.task.command == "echo hello world"
    assert [h.task.command for h in queue.search("content")] == ["cat a-file"]
    new = queue.rerun(records["cat a-file"]["uid"])
    assert new.rerun_of == records["cat a-file"]["uid"]
    assert queue.get(new.id).output == b"some content\n"
    queue.close()
    after = snapshot(path)
    assert {k: v for k, v in after.items() if k in before} == before  # originals untouched
    # QueueMe 0.0.14 still reads its home after qme did
    listed = queueme(path, "ls").stdout
    for record in records.values():
        assert record["uid"] in listed
        assert json.loads(queueme(path, "get", record["uid"]).stdout) == record


def test_the_dashboard_and_its_queueme_api_shape(home):
    path, records, _ = home
    queue = Queue(config_dir=path)
    client = Client(create_app(queue, TOKEN))
    listed = client.get("/api/tasks").json()["tasks"]
    assert sorted(t["id"] for t in listed) == sorted(r["uid"] for r in records.values())
    record = records["echo hello world"]
    page = client.get(f"/tasks/{record['uid']}")
    assert page.status == 200 and "hello world" in page.text
    # QueueMe's three routes, in QueueMe's shape
    rows = client.get("/api/tasks?format=queueme").json()
    assert sorted(r["taskid"] for r in rows) == sorted(r["uid"] for r in records.values())
    row = next(r for r in rows if r["taskid"] == record["uid"])
    assert row["command"] == "echo hello world"
    assert row["api_url"] == f"http://127.0.0.1:5000/api/tasks/{record['uid']}"
    assert client.get("/api/tasks/executor/shell?format=queueme").json() == rows
    one = client.get(f"/api/tasks/{record['uid']}?format=queueme").json()
    assert one == record["data"]  # QueueMe's `task.export()`


def test_the_cli_reads_a_queueme_home_in_queueme_formats(home, cli):
    path, records, _ = home
    listing = queueme(path, "ls").stdout
    done = cli("--config_dir", str(path), "ls", "--format", "queueme")
    assert done.returncode == 0, done.stderr
    ours = done.stdout.splitlines()
    assert len(ours) == 4
    for number, line in enumerate(ours, start=1):
        label, rest = line[:3], line[3:]
        taskid, _, command = rest.partition("\t")
        assert label == f"{number}".ljust(2) + " " and records[command]["uid"] == taskid
    assert {line.split()[1] for line in listing.splitlines()} == {
        line[3:].partition("\t")[0] for line in ours
    }
    uid = records["echo hello world"]["uid"]
    done = cli("--config_dir", str(path), "get", "--format", "queueme", uid[6:14])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(queueme(path, "get", uid).stdout)
    done = cli("--config_dir", str(path), "search", "hello")
    assert done.returncode == 0 and uid[6:14] in done.stdout


def test_import_from_queueme_copies_a_home_and_leaves_it_as_it_was(home, cli, qme_home):
    path, records, _ = home
    before = snapshot(path)
    done = cli("import", "--from-queueme", str(path))
    assert done.returncode == 0, done.stderr
    assert "4 tasks" in done.stdout + done.stderr
    queue = Queue(config_dir=qme_home)
    assert sorted(t.id for t in queue.list()) == sorted(r["uid"] for r in records.values())
    assert queue.get(records["cat a-file"]["uid"]).output == b"some content\n"
    again = cli("import", "--from-queueme", str(path))
    assert again.returncode == 0 and "4 tasks already there" in again.stdout + again.stderr
    assert snapshot(path) == before


def test_a_hint_names_an_unread_queueme_store(tmp_path, cli):
    path, work = tmp_path / "queueme-home", tmp_path / "work"
    work.mkdir()
    make_home(path, "filesystem", work)
    done = cli("--config_dir", str(path), "ls", env={"QME_DATABASE": "sqlite"})
    assert done.returncode == 0
    hint = [line for line in done.stderr.splitlines() if "QueueMe" in line]
    assert len(hint) == 1 and "qme import --from-queueme" in hint[0], done.stderr
    sqlite = {"QME_DATABASE": "sqlite"}
    assert cli("--config_dir", str(path), "import", "--from-queueme", env=sqlite).returncode == 0
    done = cli("--config_dir", str(path), "ls", env={"QME_DATABASE": "sqlite"})
    assert "QueueMe" not in done.stderr and len(done.stdout.splitlines()) == 5


def test_queueme_python_api_on_a_queueme_home(home):
    """A script written for QueueMe, on a home QueueMe made."""
    from qme.main import Queue as QueueMeQueue

    path, records, _ = home
    queue = QueueMeQueue(config_dir=str(path))
    assert queue.database == ("sqlite" if (path / "qme.db").exists() else "filesystem")
    assert sorted(row[0] for row in queue.list()) == sorted(r["uid"] for r in records.values())
    record = records["echo hello world"]
    task = queue.get(record["uid"])
    assert task.taskid == record["uid"] and task.executor.name == "shell"
    assert task.load() == record and task.export() == record["data"]
    assert task.summary() == f"[{record['uid']}][returncode: 0]"
    rerun = queue.rerun(record["uid"], message="again")
    assert rerun.taskid == record["uid"] and len(queue.list()) == 4
    assert rerun.export()["message"] == "again"
    assert rerun.export()["output"] == ["hello world\n"]


def _local(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


@pytest.mark.usefixtures("slurm")
def test_slurm_tasks_from_queueme_keep_their_job(tmp_path, cli):
    path, work = tmp_path / "queueme-home", tmp_path / "work"
    work.mkdir()
    script = work / "job.sh"
    script.write_text("#!/bin/bash\necho from the job\n")
    queueme(path, "run", "sbatch", str(script), cwd=work)
    (file,) = (path / "database" / "slurm").glob("*.json")
    record = json.loads(file.read_text())
    jobid = record["data"]["jobid"]
    done = cli("--config_dir", str(path), "exec", record["uid"][6:14], "status", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["jobid"] == jobid
    assert os.path.exists(str(file) + ".queueme")  # the original, kept as it was
    assert json.loads((path / "database" / "slurm" / (file.name + ".queueme")).read_text()) == (
        record
    )


def test_the_moving_over_steps_in_the_docs(tmp_path):
    """docs/queueme.md's steps, command by command, on a QueueMe user's ~/.qme."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "queueme.md").read_text()
    block = re.search(r"## Moving over.*?```console\n(.*?)```", text, re.S).group(1)
    steps = [line[2:].split("  #")[0].strip() for line in block.splitlines()]
    assert steps and all(step.startswith("qme ") for step in steps)
    user, work = tmp_path / "user", tmp_path / "work"
    work.mkdir()
    records = make_home(user / ".qme", "filesystem", work)  # QueueMe's default home
    before = snapshot(user / ".qme")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QME_")}
    env["HOME"] = str(user)
    said = {}
    for step in steps:
        done = subprocess.run(
            [sys.executable, "-m", "qme", *shlex.split(step)[1:]],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            timeout=60,
        )
        assert done.returncode == 0, (step, done.stderr)
        said[step] = done.stdout
    assert len(said["qme ls"].splitlines()) == 5  # a header and four tasks
    last = json.loads(said["qme get --format queueme"])
    assert last == records[last["command"]]
    listed = said["qme ls --format queueme"].splitlines()
    assert sorted(line[3:].partition("\t")[0] for line in listed) == sorted(
        r["uid"] for r in records.values()
    )
    after = snapshot(user / ".qme")
    after.pop("queueme-imported.json")  # qme's note of what it imported
    after.pop("executors.json", None)  # qme's cache of the executor plugins it found
    assert (user / ".qme" / "qme.db").exists() and after == {
        **before,
        "config.ini": (user / ".qme" / "config.ini").read_bytes(),  # `qme config` set sqlite
    }
