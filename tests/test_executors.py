"""The executor registry, plugins (the tutorial's example, installed for real),
actions and `qme exec`, and reading sbatch command lines (no Slurm needed here;
tests/test_slurm.py drives a real one)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import last_task, ok, one_error_line

from qme import executors
from qme.config import Settings
from qme.errors import QmeError
from qme.executors.slurm import sbatch, scheduler

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "executors.md"


# -- the registry ------------------------------------------------------------------------


def test_commands_choose_their_executor(qme_home):
    registry = executors.Registry(Settings.load(qme_home))
    chosen = {
        command: registry.for_command(command).name
        for command in [
            "sbatch job.sh",
            "/usr/bin/sbatch --wrap true",
            "sbatch",
            "sbatchy job.sh",
            "srun hostname",
            "salloc -n1",
            "ls -la",
        ]
    }
    assert chosen == {
        "sbatch job.sh": "slurm",
        "/usr/bin/sbatch --wrap true": "slurm",
        "sbatch": "slurm",
        "sbatchy job.sh": "shell",
        "srun hostname": "shell",
        "salloc -n1": "shell",
        "ls -la": "shell",
    }


def test_builtins_declare_what_their_classes_say(qme_home):
    registry = executors.Registry(Settings.load(qme_home))
    for name, entry in executors.BUILTIN.items():
        cls = registry.executor_class(name)
        assert (cls.name, cls.match) == (name, entry.match)
    assert registry.names()[:2] == ["shell", "slurm"]
    known = "apptainer, docker, podman, shell, slurm"
    with pytest.raises(QmeError, match=rf"unknown executor 'nosuch' \(known: {known}\)"):
        registry.executor_class("nosuch")


def test_builtins_are_registered_as_entry_points_too():
    from importlib.metadata import entry_points

    every = entry_points()
    group = (
        every.select(group=executors.GROUP)
        if hasattr(every, "select")
        else every.get(executors.GROUP, [])
    )
    registered = {point.name: point.value for point in group}
    assert {name: registered.get(name) for name in executors.BUILTIN} == {
        name: entry.target for name, entry in executors.BUILTIN.items()
    }


def test_hot_path_imports_no_executor_it_does_not_use(qme_home):
    code = (
        "import sys; from qme.cli import main; main(['run', 'true']);"
        "print(' '.join(sorted(sys.modules)))"
    )
    run = [sys.executable, "-c", code]
    subprocess.run(run, check=True, capture_output=True)  # the first run fills the cache
    loaded = subprocess.run(run, check=True, capture_output=True, text=True).stdout.split()
    # The executor is chosen by the writer child (qme/recorder/handoff.py), off the
    # command's start-up path: `qme run` itself loads no executor, nor the registry.
    assert [m for m in loaded if m.startswith("qme.executors")] == []
    assert "importlib.metadata" not in loaded
    assert last_task(qme_home).executor == "shell"
    assert (qme_home / executors.CACHE_FILE).is_file()


def test_actions_are_collected_from_marked_methods(qme_home):
    from qme.executors.base import Executor, action

    class Base(Executor):
        name = "base"

        @action("first")
        def one(self, task):
            return 1

    class Child(Base):
        name = "child"

        @action("second", name="two-words", streams=True)
        def two(self, task, write=None):
            return 2

    assert list(Base.actions) == ["one"]
    assert list(Child.actions) == ["one", "two-words"]
    assert Child.actions["two-words"].streams and not Child.actions["one"].streams
    assert Executor.actions == {}


# -- actions and qme exec -----------------------------------------------------------------


def test_unknown_action_lists_the_available_ones(queue):
    task = queue.run("true")
    with pytest.raises(
        QmeError, match=r"the shell executor has no action 'status' \(it has none\)"
    ):
        task.run_action("status")
    with pytest.raises(QmeError, match="no action 'status'"):
        queue.run_action(None, "status")


def test_exec_lists_actions_and_refuses_what_does_not_exist(qme):
    listing = ok(qme("exec", "slurm"))
    assert re.search(r"^status\s+state, elapsed", listing, re.M)
    assert [line.split()[0] for line in listing.splitlines()[1:]] == [
        "status",
        "output",
        "error",
        "cancel",
        "follow",
    ]
    as_json = json.loads(ok(qme("exec", "slurm", "--json")))
    assert as_json["executor"] == "slurm" and "follow" in as_json["actions"]
    assert ok(qme("exec", "shell")) == "the shell executor has no actions\n"

    assert "no tasks yet" in one_error_line(qme("exec", "status"))
    assert "no slurm tasks yet" in one_error_line(qme("exec", "slurm", "status"))
    ok(qme("run", "true"))
    error = one_error_line(qme("exec", "status"))
    assert "is a shell task, whose executor has no action 'status' (its actions: none)" in error
    assert error.endswith("for the last slurm task: qme exec slurm status")
    assert "no task matches 'nosuch'" in one_error_line(qme("exec", "nosuch", "status"))
    assert "say which action" in one_error_line(qme("exec"), code=2)
    assert "say which action" in one_error_line(qme("exec", "a", "b", "c"), code=2)


def test_ls_accepts_the_statuses_executors_add(qme):
    for status in ("pending", "timeout"):
        assert ok(qme("ls", "--status", status)) == ""


def test_config_takes_slurm_settings(qme):
    ok(qme("config", "--set", "slurm", "sacct_format", "jobid,state"))
    ok(qme("config", "--set", "slurm", "refresh_seconds", "1"))
    assert "has no setting 'nosuch'" in one_error_line(
        qme("config", "--set", "slurm", "nosuch", "x")
    )


# -- a plugin: the tutorial's example, installed with an entry point -------------------------


def tutorial_block(label: str, language: str) -> str:
    text = TUTORIAL.read_text()
    found = re.search(rf"`{re.escape(label)}`:\n\n```{language}\n(.*?)```", text, re.S)
    assert found, f"{label} not found in {TUTORIAL}"
    return found.group(1)


def install(site: Path, name: str, module: str, code: str, entry_points: dict[str, str]) -> None:
    """A distribution as pip leaves it: the module and a .dist-info with entry points."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(code)
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = [f"{key} = {value}" for key, value in entry_points.items()]
    (info / "entry_points.txt").write_text("[qme.executors]\n" + "\n".join(lines) + "\n")


@pytest.fixture
def tar_plugin(tmp_path):
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads(tutorial_block("pyproject.toml", "toml"))
    points = project["project"]["entry-points"]["qme.executors"]
    site = tmp_path / "site"
    install(
        site, project["project"]["name"], "qme_tar", tutorial_block("qme_tar.py", "python"), points
    )
    return {"PYTHONPATH": str(site)}


def test_the_tutorials_executor_works_as_a_plugin(qme, tar_plugin, tmp_path):
    ok(qme("run", "true"))  # the cache of plugins, without this one
    work = tmp_path / "work"
    (work / "notes").mkdir(parents=True)
    (work / "notes" / "todo.txt").write_text("write the tutorial\n")

    def plugin(*args, **kw):
        return qme(*args, cwd=work, env=tar_plugin, **kw)

    ok(plugin("run", "tar", "-czf", "notes.tgz", "notes"))
    task = json.loads(ok(plugin("get")))
    assert task["executor"] == "tar" and task["id"].startswith("tar-")
    assert task["data"] == {"archive": str(work / "notes.tgz")}
    assert re.search(r"^list +the names in the archive$", ok(plugin("exec", "tar")), re.M)
    assert ok(plugin("exec", "list")).splitlines() == ["notes/", "notes/todo.txt"]
    size = json.loads(ok(plugin("exec", "size", "--json")))
    assert size == {
        "archive": str(work / "notes.tgz"),
        "bytes": (work / "notes.tgz").stat().st_size,
    }
    ok(plugin("config", "--set", "tar", "list_limit", "1"))
    assert ok(plugin("exec", "tar", "list")) == "notes/\n"
    assert "'nosuch' (its actions: list, size)" in one_error_line(plugin("exec", "nosuch"))
    ok(plugin("run", "--executor", "tar", "echo", "forced"))
    assert len(json.loads(ok(plugin("ls", "tar", "--json")))) == 2
    (work / "notes.tgz").unlink()
    assert "has no archive (any more)" in one_error_line(plugin("exec", "tar", "size"))
    # Without the plugin, its tasks are still listed; its name is unknown.
    assert len(json.loads(ok(qme("ls", "--json")))) == 3
    assert "unknown executor 'tar'" in one_error_line(qme("exec", "tar"))


def test_plugins_are_read_in_a_python_of_their_own(tmp_path):
    """Entry points and plugin modules cost a few MiB that would stay in the
    writer child (qme run's peak memory) or the dashboard for good."""
    code = (
        "import sys; from qme import executors; found = executors.plugins(sys.argv[1]); "
        "print(sorted(found), 'importlib.metadata' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["[]", "False"], result.stderr
    assert (tmp_path / "executors.json").exists()


def test_broken_plugins_are_skipped_with_a_warning(qme, tmp_path):
    site = tmp_path / "site"
    install(
        site,
        "qme-broken",
        "qme_broken",
        "raise ImportError('no such luck')\n",
        {
            "broken": "qme_broken:Nothing",
            "shell": "qme_broken:Shell",
        },
    )
    result = qme("run", "true", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0
    stderr = result.stderr.decode()
    assert "ignoring executor plugin broken (qme_broken:Nothing): no such luck" in stderr
    assert "ignoring executor plugin shell (qme_broken:Shell): 'shell' is a built-in" in stderr
    again = qme("run", "true", env={"PYTHONPATH": str(site)})
    assert again.stderr == b""  # said once: what was found is cached


# -- reading sbatch command lines ----------------------------------------------------------


def test_sbatch_options_as_sbatch_reads_them():
    options, rest = sbatch.parse_options(
        [
            "-p",
            "debug",
            "-Jname",
            "--time=5",
            "--parsable",
            "-vv",
            "--array",
            "0-3%2",
            "-o",
            "out-%j.txt",
            "job.sh",
            "-o",
            "script-arg",
        ]
    )
    assert options == {
        "p": "debug",
        "job-name": "name",
        "time": "5",
        "parsable": "",
        "v": "",
        "array": "0-3%2",
        "output": "out-%j.txt",
    }
    assert rest == ["job.sh", "-o", "script-arg"]
    assert sbatch.parse_options(["--wrap", "echo hi", "--", "x"]) == ({"wrap": "echo hi"}, ["x"])


def test_output_files_from_options_environment_and_directives(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        "# a comment\n"
        "#SBATCH --output=logs/%x-%j.out  # where it goes\n"
        "#SBATCH -e err-%u-%5j.txt\n"
        "#SBATCH --job-name 'from script'\n"
        "\n"
        "echo hi\n"
        "#SBATCH --output=ignored.out\n"
    )
    found = sbatch.submission(["sbatch", "job.sh"], str(tmp_path), env={})
    assert found == {
        "jobname": "from script",
        "workdir": str(tmp_path),
        "script": str(script),
        "output_pattern": str(tmp_path / "logs/%x-%j.out"),
        "error_pattern": str(tmp_path / "err-%u-%5j.txt"),
    }
    fields = sbatch.pattern_fields("42", found["jobname"], "ada")
    assert sbatch.expand(found["output_pattern"], fields) == str(
        tmp_path / "logs/from script-42.out"
    )
    assert sbatch.expand(found["error_pattern"], fields) == str(tmp_path / "err-ada-00042.txt")

    env = {"SBATCH_OUTPUT": "env.out", "SBATCH_JOB_NAME": "env-name"}
    over = sbatch.submission(["sbatch", "-J", "cli", "job.sh"], str(tmp_path), env=env)
    assert (over["jobname"], over["output_pattern"]) == ("cli", str(tmp_path / "env.out"))
    assert over["error_pattern"] == str(tmp_path / "err-%u-%5j.txt")


def test_defaults_wrap_chdir_and_arrays(tmp_path):
    wrap = sbatch.submission(["sbatch", "-D", "sub", "--wrap", "echo hi"], str(tmp_path), env={})
    assert wrap == {
        "jobname": "wrap",
        "workdir": str(tmp_path / "sub"),
        "output_pattern": str(tmp_path / "sub/slurm-%j.out"),
        "error_pattern": str(tmp_path / "sub/slurm-%j.out"),
    }
    array = sbatch.submission(["sbatch", "-a", "1-3", "-e", "/abs/e-%A.%a"], "/w", env={})
    assert (array["array"], array["jobname"]) == ("1-3", "sbatch")
    assert array["output_pattern"] == "/w/slurm-%A_%a.out"
    assert array["error_pattern"] == "/abs/e-%A.%a"
    element = sbatch.pattern_fields("7", "n", "u", index="3", element="9")
    assert sbatch.expand("%A_%a-%j-%N-%%-%3a", element) == "7_3-9-%N-%-003"
    assert sbatch.expand("%j-%a", sbatch.pattern_fields("7", "n", "u")) == "7-4294967294"
    assert sbatch.expand("lit\\%j", {"j": "1"}) == "lit%j"


def test_job_ids_and_other_slurm_notations():
    assert sbatch.job_id("Submitted batch job 123\r\n") == ("123", None)
    assert sbatch.job_id("Submitted batch job 9 on cluster west\n") == ("9", "west")
    assert sbatch.job_id("456;west\n") == ("456", "west")
    assert sbatch.job_id("456\n") == ("456", None)
    assert sbatch.job_id("sbatch: error: Batch job submission failed\n") is None
    assert sbatch.job_id("") is None
    assert [sbatch.array_indices(s) for s in ("0-9:2,20%4", "3", "1-3,7", "x")] == [6, 1, 4, None]
    assert [sbatch.first_node(s) for s in ("vm", "n[03-05,9]", "a,b", "None assigned", "")] == [
        "vm",
        "n03",
        "a",
        None,
        None,
    ]
    assert scheduler.exit_status("3:0") == (3, None)
    assert scheduler.exit_status("0:9") == (137, 9)
    assert scheduler.exit_status("") == (None, None)
    states = [
        "PENDING",
        "RUNNING",
        "COMPLETING+",
        "COMPLETED",
        "CANCELLED by 0",
        "TIMEOUT",
        "FAILED",
        "OUT_OF_MEMORY",
    ]
    assert [scheduler.status_of(s) for s in states] == [
        "pending",
        "running",
        "running",
        "complete",
        "cancelled",
        "timeout",
        "failed",
        "failed",
    ]


def test_slurm_task_without_a_job_says_why(queue, monkeypatch):
    # sbatch is not on PATH here: the command fails as any missing command does.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    task = queue.run(["sbatch", "--wrap", "true"])
    assert (task.executor, task.status, task.returncode) == ("slurm", "failed", 127)
    with pytest.raises(QmeError, match=r"has no Slurm job \(sbatch exited 127: .*not found"):
        task.run_action("output")
