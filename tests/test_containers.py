"""Containers: the image (Containerfile) and the docker, podman and apptainer executors.

Against a real podman, without a registry: scripts/podman.sh installs it when
missing (root and apt-get), writes the containers.conf this kind of machine needs
(used through CONTAINERS_CONF) and builds a Debian + Python base image from the
apt mirror; the image under test is built on it. The docker executor is driven
through the docker CLI against podman's API service, when that CLI is installed.
Apptainer cannot be installed here: only its command lines and recording are tested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen
from wsgiref.util import setup_testing_defaults

import pytest
from helpers import last_task, ok, one_error_line, require_program, unavailable, wait_for

from qme import Queue, executors
from qme.config import Settings
from qme.executors.container import cli
from qme.executors.container.oci import _timestamp
from qme.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "podman.sh"
CONF = ROOT / ".podman" / "containers.conf"
BASE = "localhost/qme-base:bookworm"
KEY = "container-test-key-5Gx2"


# -- command lines and matching (no engine needed) -------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            "podman run -d --rm -p8080:80 -p 127.0.0.1:9000:9000 -v /srv:/srv:ro --name web "
            "-it -e A=1 --mount type=tmpfs,dst=/t alpine sh -c 'echo hi'",
            {
                "engine": "podman",
                "image": "alpine",
                "command": ["sh", "-c", "echo hi"],
                "name": "web",
                "detach": True,
                "rm": True,
                "ports": ["8080:80", "127.0.0.1:9000:9000"],
                "mounts": ["/srv:/srv:ro", "type=tmpfs,dst=/t"],
            },
        ),
        (
            "/usr/bin/docker -H unix:///run/d.sock container run --rm=false --detach=true "
            "--cidfile /tmp/c.cid -- busybox",
            {
                "engine": "/usr/bin/docker",
                "engine_args": ["-H", "unix:///run/d.sock"],
                "image": "busybox",
                "command": [],
                "detach": True,
                "rm": False,
                "ports": [],
                "mounts": [],
                "cidfile": "/tmp/c.cid",
            },
        ),
    ],
)
def test_oci_command_lines(argv, expected):
    import shlex

    assert cli.oci_run(shlex.split(argv)) == expected


def test_oci_shell_lines_and_other_subcommands():
    line = cli.oci_run(["/bin/sh", "-c", "podman run -d busybox sleep 5 | tee id.txt"])
    assert (line["image"], line["command"], line["detach"]) == ("busybox", ["sleep", "5"], True)
    assert cli.oci_run(["docker", "ps", "-a"]) is None
    assert cli.oci_run(["docker", "exec", "web", "run"]) is None  # `run` is exec's argument


def test_apptainer_command_lines():
    argv = "apptainer --debug exec --nv -B /scratch:/s --bind=/x --pwd /s img.sif python -V"
    assert cli.apptainer_run(argv.split()) == {
        "engine": "apptainer",
        "engine_args": ["--debug"],
        "subcommand": "exec",
        "image": "img.sif",
        "command": ["python", "-V"],
        "binds": ["/scratch:/s", "/x"],
        "options": ["--nv"],
    }
    run = cli.apptainer_run(["singularity", "run", "docker://alpine"])
    assert (run["engine"], run["subcommand"], run["image"]) == (
        "singularity",
        "run",
        "docker://alpine",
    )
    assert cli.apptainer_run(["apptainer", "build", "x.sif", "x.def"]) is None


@pytest.mark.parametrize(
    ("command", "executor"),
    [
        ("docker run --rm alpine true", "docker"),
        ("docker --log-level debug run alpine", "docker"),
        ("/usr/local/bin/docker container run -d nginx", "docker"),
        ("podman run -it --rm busybox", "podman"),
        ("podman --root /x run busybox", "podman"),
        ("apptainer exec img.sif ls", "apptainer"),
        ("singularity run docker://alpine", "apptainer"),
        ("docker ps", "shell"),
        ("docker build -t x .", "shell"),
        ("podman exec web run", "shell"),
        ("apptainer build x.sif x.def", "shell"),
        ("dockerd run", "shell"),
    ],
)
def test_container_commands_find_their_executor(qme_home, command, executor):
    assert executors.Registry(Settings.load(qme_home)).for_command(command).name == executor


def test_engine_times():
    assert _timestamp("2026-05-01T10:00:00.25Z") == pytest.approx(1777629600.25)
    assert _timestamp("2026-05-01T12:00:00.123456789+02:00") == pytest.approx(1777629600.123457)
    assert _timestamp("0001-01-01T00:00:00Z") is None
    assert _timestamp("yesterday") is None


def test_apptainer_run_is_recorded(qme):
    """apptainer is not installed here: the run fails as a missing command does, and
    is still recorded by the apptainer executor, with what it asked for."""
    if shutil.which("apptainer"):
        pytest.skip("apptainer is installed: this test is about a machine without it")
    done = qme("run", "apptainer", "exec", "-B", "/data:/data", "img.sif", "python3", "-V")
    assert done.returncode == 127
    task = last_task(os.environ["QME_HOME"])
    assert (task.executor, task.status) == ("apptainer", "failed")
    assert task.data["image_path"] == os.path.join(task.cwd, "img.sif")
    assert (task.data["command"], task.data["binds"]) == (["python3", "-V"], ["/data:/data"])
    said = one_error_line(qme("exec", "inspect"))
    assert said == "qme: error: apptainer is not installed here (not on PATH)"
    assert "inspect" in ok(qme("exec", "apptainer"))


# -- podman ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def podman():
    """Podman ready to run the base image; CONTAINERS_CONF set for this session."""
    if os.geteuid() != 0:
        unavailable("the container tests need root (scripts/podman.sh: apt-get, debootstrap)")
    if not shutil.which("podman") and not shutil.which("apt-get"):
        unavailable("podman is not installed, and there is no apt-get to install it")
    done = subprocess.run(["bash", str(SCRIPT), "setup"], capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"scripts/podman.sh setup failed: {done.stderr.strip()[-500:]}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_CONF", str(CONF))
        probe = run_podman("run", "--rm", BASE, "true", check=False)
        if probe.returncode != 0:
            unavailable(f"podman cannot run a container here: {probe.stderr.strip()[-500:]}")
        yield


@pytest.fixture(scope="session")
def image(podman):
    """The repository's Containerfile, built (on the local base image) for this session."""
    tag = f"localhost/qme-test:{os.getpid()}"
    begun = time.monotonic()
    done = subprocess.run(["bash", str(SCRIPT), "build", tag], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    print(f"built {tag} in {time.monotonic() - begun:.0f} s")
    yield tag
    run_podman("rmi", "-f", tag, check=False)


@pytest.fixture
def names(podman):
    """Container names for one test; whatever is left of them is removed afterwards."""
    made: list[str] = []

    def name() -> str:
        made.append(f"qme-test-{uuid.uuid4().hex[:8]}")
        return made[-1]

    name.append = made.append  # a container made without a name, to remove too
    yield name
    if made:
        run_podman("rm", "--force", "--ignore", "--time", "0", *made)


@pytest.fixture
def fast_refresh(monkeypatch):
    monkeypatch.setenv("QME_PODMAN_REFRESH_SECONDS", "0")  # ask podman on every read
    monkeypatch.setenv("QME_DOCKER_REFRESH_SECONDS", "0")


def run_podman(*args: str, check: bool = True, timeout: float = 120):
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(port: int, path: str, token: str | None = KEY):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urlopen(Request(f"http://127.0.0.1:{port}{path}", headers=headers), timeout=5) as reply:
        return json.load(reply)


def answering(port: int):
    try:
        return api(port, "/api/tasks")
    except OSError:  # not listening yet (URLError, a reset connection)
        return None


@pytest.mark.slow
def test_image_serves_the_dashboard_and_shares_its_store(image, names, tmp_path, qme):
    """QueueMe's container workflow: the dashboard in the image, reached from the host
    with its token; `podman exec NAME qme run …` recorded and seen live through the
    API, and through the volume by the host's qme (and the other way round); a prompt
    stop on SIGTERM."""
    user = run_podman("run", "--rm", "--entrypoint", "id", image, "-un").stdout.split()
    assert user == ["qme"]  # not root by default
    shared = tmp_path / "shared"
    shared.mkdir()
    name, port = names(), free_port()
    run_podman(
        *("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5000"),
        *("-e", f"QME_SERVER_KEY={KEY}", "-v", f"{shared}:/data"),
        *("--user", f"{os.getuid()}:{os.getgid()}", image),
    )
    assert wait_for(lambda: answering(port), 30, "the dashboard in the container")["tasks"] == []
    with pytest.raises(HTTPError) as refused:
        api(port, "/api/tasks", token=None)
    assert refused.value.code == 401
    with pytest.raises(HTTPError) as wrong:
        api(port, "/api/tasks", token="not-the-key")
    assert wrong.value.code == 401

    done = run_podman("exec", name, "qme", "run", "ls", "/")
    assert "proc" in done.stdout.split()
    seen = wait_for(lambda: api(port, "/api/tasks")["tasks"], 10, "the task in the API")
    assert [(t["command"], t["status"], t["executor"]) for t in seen] == [
        ("ls /", "complete", "shell")
    ]
    task = api(port, f"/api/tasks/{seen[0]['id']}")
    assert "proc" in task["output"].split() and task["cwd"] == "/home/qme"

    host = Queue(config_dir=shared)  # the host's qme, on the volume
    try:
        assert [t.id for t in host.list()] == [seen[0]["id"]]
    finally:
        host.close()
    ok(qme("run", "echo", "from the host", env={"QME_HOME": str(shared)}))
    commands = lambda: [t["command"] for t in api(port, "/api/tasks")["tasks"]]  # noqa: E731
    assert wait_for(lambda: "echo 'from the host'" in commands(), 10, "the host's task")

    begun = time.monotonic()
    run_podman("stop", "-t", "10", name)
    assert time.monotonic() - begun < 5, "the dashboard did not stop promptly on SIGTERM"
    state = json.loads(run_podman("inspect", name).stdout)[0]["State"]
    assert state["ExitCode"] == 0
    assert "qme dashboard stopped" in run_podman("logs", name).stdout


@pytest.mark.slow
def test_podman_attached_run_and_its_actions(podman, names, qme, qme_home, fast_refresh):
    name = names()
    script = "echo to-stdout; echo to-stderr >&2; exit 3"
    done = qme("run", "podman", "run", "--name", name, BASE, "sh", "-c", script)
    assert done.returncode == 3
    assert done.stdout == b"to-stdout\n" and done.stderr == b"to-stderr\n"
    task = last_task(qme_home)
    assert (task.executor, task.status, task.returncode) == ("podman", "failed", 3)
    assert task.command == f"podman run --name {name} {BASE} sh -c '{script}'"
    data = task.data
    assert (data["image"], data["name"], data["detach"]) == (BASE, name, False)
    assert data["command"] == ["sh", "-c", script]
    assert re.fullmatch(r"[0-9a-f]{64}", data["container"])

    logs = ok(qme("exec", "logs"))
    assert "to-stdout" in logs and "to-stderr" in logs
    assert "to-stdout" in ok(qme("exec", task.short_id, "follow"))  # it has ended: all at once
    status = json.loads(ok(qme("exec", "status", "--json")))
    assert (status["state"], status["exitcode"], status["name"]) == ("exited", 3, name)
    assert status["container"] == data["container"][:12] and status["status"] == "failed"
    assert json.loads(ok(qme("exec", "inspect", "--json")))["Id"] == data["container"]
    not_running = one_error_line(qme("exec", "stop"))
    assert f"container {data['container'][:12]} is not running (exited, exit code 3)" in not_running

    rerun = qme("rerun", task.id)  # the name is taken: podman refuses, as it would itself
    assert rerun.returncode == 125 and b"already in use" in rerun.stderr
    assert last_task(qme_home).argv == task.argv

    assert json.loads(ok(qme("exec", task.short_id, "rm", "--json")))["state"] == "removed"
    gone = one_error_line(qme("exec", task.short_id, "logs"))
    assert gone == f"qme: error: container {data['container'][:12]} no longer exists"
    assert "no longer exists" in one_error_line(qme("exec", task.short_id, "status"))
    assert last_task(qme_home).status == "failed"  # the rerun, which started nothing

    # Without --name, the container is found: its image and command, created after the start.
    unnamed = qme("run", "podman", "run", BASE, "sh", "-c", "echo $HOSTNAME")
    assert unnamed.returncode == 0
    container = last_task(qme_home).data["container"]
    assert container.startswith(unnamed.stdout.decode().strip())  # the hostname: its short id
    names.append(container)

    killed = 'sh -c "kill -TERM \\$\\$"; exit $?'  # not PID 1, which SIGTERM cannot kill
    cancelled = qme("run", "podman", "run", "--rm", BASE, "sh", "-c", killed)
    assert cancelled.returncode == 143 and last_task(qme_home).status == "cancelled"
    assert "container" not in last_task(qme_home).data  # removed by --rm
    assert "left no container (run with --rm" in one_error_line(qme("exec", "logs"))


@pytest.mark.slow
def test_podman_detached_container_is_followed(podman, names, qme, qme_home, fast_refresh):
    name, port = names(), free_port()
    script = "echo started; sleep 2; echo ended >&2; exit 4"
    done = qme(
        *("run", "podman", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000"),
        *("-v", "/tmp:/host-tmp:ro", BASE, "sh", "-c", script),
    )
    assert done.returncode == 0
    printed = done.stdout.decode().strip()
    task = last_task(qme_home)
    assert (task.status, task.data["container"], task.data["state"]) == (
        "running",
        printed,
        "running",
    )
    assert task.data["ports"] == [f"127.0.0.1:{port}:8000"]
    assert task.data["mounts"] == ["/tmp:/host-tmp:ro"]
    listed = json.loads(ok(qme("ls", "podman", "--json")))
    assert [(t["id"], t["status"]) for t in listed] == [(task.id, "running")]

    followed = qme("exec", "follow")  # streams until the container stops
    assert followed.returncode == 0 and followed.stdout.decode().split() == ["started", "ended"]
    ended = last_task(qme_home)
    assert (ended.status, ended.returncode, ended.data["state"]) == ("failed", 4, "exited")
    assert ended.ended > task.started + 1.5

    # The dashboard shows it on the container page, with its actions.
    queue = Queue(config_dir=qme_home)
    try:
        app = create_app(queue, KEY)
        environ = {"PATH_INFO": f"/tasks/{task.id}", "HTTP_AUTHORIZATION": f"Bearer {KEY}"}
        setup_testing_defaults(environ)
        replies: list[str] = []
        page = b"".join(app(environ, lambda status, *_: replies.append(status))).decode()
    finally:
        queue.close()
    assert replies == ["200 OK"]
    assert f"podman container {printed[:12]}" in page and f"<code>{BASE}</code>" in page
    for name_ in ("logs", "follow", "status", "inspect", "stop", "rm"):
        assert f'data-executor-action="{name_}"' in page

    # Stopped: cancelled, with the exit code of SIGKILL after a second of SIGTERM.
    sleeper = qme("run", "podman", "run", "-d", "--name", names(), BASE, "sleep", "60")
    assert sleeper.returncode == 0
    begun = time.monotonic()
    stopped = json.loads(ok(qme("exec", "stop", "time=1", "--json")))
    assert time.monotonic() - begun < 10
    assert (stopped["state"], stopped["exitcode"], stopped["status"]) == (
        "exited",
        137,
        "cancelled",
    )
    assert last_task(qme_home).returncode == 137
    assert json.loads(ok(qme("exec", "rm", "--json")))["state"] == "removed"
    assert last_task(qme_home).status == "cancelled"  # kept once the container is gone

    # Removed by --rm before qme looked: the exit code comes from podman's events.
    quick = qme("run", "podman", "run", "-d", "--rm", BASE, "sh", "-c", "exit 5")
    container = quick.stdout.decode().strip()
    wait_for(
        lambda: run_podman("container", "exists", container, check=False).returncode == 1,
        20,
        "the container's removal",
    )
    gone = last_task(qme_home)
    assert (gone.status, gone.returncode, gone.data["state"]) == ("failed", 5, "removed")


@pytest.mark.slow
def test_a_run_that_started_no_container(podman, qme, fast_refresh):
    done = qme("run", "podman", "run", "--rm", "localhost/no-such-image:none", "true")
    assert done.returncode == 125
    said = one_error_line(qme("exec", "logs"))
    assert "started no container (podman exited 125: Error:" in said
    assert "no-such-image" in said


@pytest.mark.slow
def test_docker_executor_through_podman_service(podman, tmp_path, qme, qme_home, fast_refresh):
    """The docker CLI against podman's Docker-compatible API (DOCKER_HOST)."""
    require_program("docker")  # scripts/podman.sh installs it
    sock = tmp_path / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    docker_env = {"DOCKER_HOST": f"unix://{sock}"}
    try:
        wait_for(sock.exists, 15, "podman's API socket")
        done = qme(
            "run", "docker", "run", "-d", BASE, "sh", "-c", "echo hi; exit 2", env=docker_env
        )
        assert done.returncode == 0, done.stderr
        task = last_task(qme_home)
        assert task.executor == "docker" and task.data["engine_env"] == docker_env
        # The recorded DOCKER_HOST is used even where it is not set.
        finished = lambda: last_task(qme_home).finished  # noqa: E731
        wait_for(finished, 20, "the container's end")
        ended = last_task(qme_home)
        assert (ended.status, ended.returncode) == ("failed", 2)
        assert ok(qme("exec", "logs")) == "hi\n"
        assert json.loads(ok(qme("exec", "rm", "--json")))["state"] == "removed"
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
