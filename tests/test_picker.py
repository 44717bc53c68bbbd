"""The interactive picker of qme rerun, get and clear, driven through real terminals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pexpect
import pytest

from qme import Queue

DOWN = "\x1b[B"
ENTER = "\r"  # what a terminal sends; "\n" would be typed into the filter
TAB = "\t"  # marks a task (and moves down) where several may be chosen
ESCAPE = "\x1b"
CTRL_C = "\x03"


@pytest.fixture
def tasks(qme_home) -> list[str]:
    """Three recorded tasks, oldest first."""
    queue = Queue(config_dir=qme_home)
    ids = [queue.run(["echo", word]).id for word in ("alpha", "beta", "gamma")]
    queue.close()
    return ids


def ids_in_store(qme_home) -> list[str]:
    queue = Queue(config_dir=qme_home)
    try:
        return [task.id for task in queue.list(newest_first=False)]
    finally:
        queue.close()


def newest(qme_home):
    queue = Queue(config_dir=qme_home)
    try:
        return queue.get(streams=False)
    finally:
        queue.close()


def spawn(*args: str) -> pexpect.spawn:
    # prompt_toolkit needs a real size; no terminal emulator answers its cursor-position
    # requests here, so it is told not to ask (and not to warn that it got no answer).
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1"}
    child = pexpect.spawn(
        sys.executable, ["-m", "qme", *args], env=env, dimensions=(24, 100), timeout=15
    )
    child.delaybeforesend = None  # keys are sent only once the prompt is drawn
    return child


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    status = child.wait()
    child.ptyproc.delayafterclose = 0  # it has exited: no need to wait for the kernel
    child.close()
    return status


def test_rerun_enter_picks_the_newest_task(qme_home, tasks):
    child = spawn("rerun")
    child.expect_exact("Rerun which task?")
    child.expect_exact("echo alpha")  # the whole list is drawn: the picker takes keys now
    child.send(ENTER)
    assert finish(child) == 0
    assert newest(qme_home).rerun_of == tasks[-1]


def test_rerun_typing_searches_then_enter_picks_the_match(qme_home, tasks):
    child = spawn("rerun", "-m", "filtered")
    child.expect_exact("echo alpha")
    child.send("alp")  # a word's start, searched in the whole history
    child.send(ENTER)
    assert finish(child) == 0
    rerun = newest(qme_home)
    assert (rerun.rerun_of, rerun.message) == (tasks[0], "filtered")


def test_get_picks_with_the_arrow_keys(tasks):
    child = spawn("get")
    child.expect_exact("Show which task?")
    child.expect_exact("echo alpha")
    child.send(DOWN + ENTER)
    child.expect_exact('"id": ')
    child.expect(r'"(shell-[0-9a-f-]+)"')
    assert child.match.group(1).decode() == tasks[1]
    assert finish(child) == 0


@pytest.mark.parametrize("answer, status, left", [("y", 0, [0]), ("n", 1, [0, 1, 2])])
def test_clear_marks_several_then_confirms(qme_home, tasks, answer, status, left):
    child = spawn("clear")
    child.expect_exact("Delete which tasks?")
    child.expect_exact("echo alpha")
    child.send(TAB + TAB + ENTER)  # mark gamma and beta
    child.expect_exact("Delete 2 tasks (")
    child.expect_exact("[y/N] ")
    child.send(answer + ENTER)
    assert finish(child) == status
    assert ids_in_store(qme_home) == [tasks[i] for i in left]


def test_clear_force_without_target_clears_everything_on_a_terminal_too(qme_home, tasks):
    child = spawn("clear", "--force")
    child.expect_exact(f"Deleted {len(tasks)} tasks.")
    assert finish(child) == 0
    assert ids_in_store(qme_home) == []


@pytest.mark.parametrize(
    "command, keys",
    [
        ("rerun", CTRL_C),
        ("rerun", "zzz" + ENTER + ESCAPE),  # Enter does nothing when no task matches
        ("get", ESCAPE),
        ("clear", TAB + CTRL_C),
        ("clear", TAB + ESCAPE),
    ],
)
def test_ctrl_c_and_escape_leave_with_130_and_change_nothing(qme_home, tasks, command, keys):
    child = spawn(command)
    child.expect_exact("echo alpha")
    child.send(keys)
    assert finish(child) == 130
    assert b'"id"' not in child.before and b"[y/N]" not in child.before
    assert ids_in_store(qme_home) == tasks


def test_last_on_a_terminal_does_not_ask(qme_home, tasks):
    child = spawn("get", "--last")
    child.expect(r'"id": "(shell-[0-9a-f-]+)"')
    assert child.match.group(1).decode() == tasks[-1]
    assert finish(child) == 0


def test_no_terminal_acts_on_the_last_task(qme, qme_home, tasks):
    result = qme("rerun")  # stdout is a pipe
    assert (result.returncode, result.stdout) == (0, b"gamma\n")
    assert newest(qme_home).rerun_of == tasks[-1]
    # stdout a terminal but stdin not: no picker either
    child = pexpect.spawn(
        "sh", ["-c", f"exec {sys.executable} -m qme get < /dev/null"], env=os.environ
    )
    child.expect(r'"rerun_of": "(shell-[0-9a-f-]+)"')
    assert child.match.group(1).decode() == tasks[-1]
    assert finish(child) == 0
    assert "say what to clear" in qme("clear").stderr.decode()  # clear never guesses


@pytest.mark.parametrize("argv", [["get"], ["get", "--last"], ["rerun", "--last"]])
def test_without_a_picker_questionary_is_not_imported(qme_home, tasks, argv):
    code = (
        "import json, sys; from qme.cli import main; status = main(sys.argv[1:]);"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr); sys.exit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=os.environ
    )
    assert result.returncode == 0, result.stderr
    loaded = {name.split(".")[0] for name in json.loads(result.stderr.splitlines()[-1])}
    assert not loaded & {"questionary", "prompt_toolkit"}


@pytest.fixture
def finished_job(qme_home, tmp_path):
    """A recorded Slurm task whose job has ended and written its output file."""
    import time

    from qme.task import Task, new_uuid4

    log = tmp_path / "slurm-42.out"
    log.write_text("HELLO FROM THE JOB\n")
    queue = Queue(config_dir=qme_home)
    queue.run(["echo", "a shell task"])  # newer than the job, and without actions
    task = Task(
        id=f"slurm-{new_uuid4()}",
        executor="slurm",
        command="sbatch job.sh",
        argv=["sbatch", "job.sh"],
        cwd="/tmp",  # short: the picker cuts lines at the terminal's edge
        user="ada",
        host="box",
        started=time.time() - 60,
        ended=time.time() - 50,
        status="complete",
        returncode=0,
        data={
            "jobid": "42",
            "jobname": "job.sh",
            "outputfile": str(log),
            "errorfile": str(log),
            "job": {"state": "COMPLETED"},
        },
    )
    queue.store.add(task)
    queue.close()
    return task


def test_exec_picks_a_task_with_actions_then_an_action(qme_home, finished_job):
    child = spawn("exec")
    child.expect_exact("Which task?")
    child.expect_exact("sbatch job.sh")  # the shell task has no actions: not offered
    child.send(ENTER)
    child.expect_exact("Which action on")
    child.send("output")  # filter the actions
    child.send(ENTER)
    child.expect_exact("HELLO FROM THE JOB")
    assert finish(child) == 0


def test_exec_last_picks_only_the_action_and_escape_leaves(qme_home, finished_job):
    child = spawn("exec", "--last")
    child.expect_exact("task")  # the last task is the shell one, which has no actions
    assert finish(child) == 1
    child = spawn("exec")
    child.expect_exact("Which task?")
    child.send(ESCAPE)
    assert finish(child) == 130
