"""`qme rerun` of a command typed in a recorded session runs it the way it was typed:
with the aliases and functions it used, defined before `qme on` (carried over) or
inside the session, in real bash, zsh and fish driven by pexpect; then rerun from
outside the session, by the real `qme` command. Also: under `set -x`, the trace of
qme's own prompt hooks is not stored as a command's output.
"""

# ruff: noqa: F811 - the fixtures of test_shells.py, imported
from __future__ import annotations

import subprocess

import pytest
from test_shell_state import on_in_a_live_shell
from test_shells import commands, kind, require_program, shells, world  # noqa: F401

from qme.errors import QmeError
from qme.session.rerun import KEY, definitions, rerun_argv

# (defined before `qme on`, defined inside the session); each used in a command.
DEFINE = {
    "bash": (
        [
            "alias pre='echo pre-alias'",
            'prefn() { echo "prefn:$1"; helper; }',
            "helper() { echo helped; }",
        ],
        ["alias inal='echo in-alias'", 'infn() { pre; echo "infn:$1"; }'],
    ),
    "zsh": (
        [
            "alias pre='echo pre-alias'",
            'prefn() { echo "prefn:$1"; helper; }',
            "helper() { echo helped; }",
        ],
        ["alias inal='echo in-alias'", 'infn() { pre; echo "infn:$1"; }'],
    ),
    "fish": (
        [
            "alias pre 'echo pre-alias'",
            'function prefn; echo "prefn:$argv[1]"; helper; end',
            "function helper; echo helped; end",
        ],
        ["alias inal 'echo in-alias'", 'function infn; pre; echo "infn:$argv[1]"; end'],
    ),
}
USED = {  # typed in the session -> what it prints
    "pre": "pre-alias",
    "prefn x": "prefn:x\nhelped",
    "inal": "in-alias",
    "infn y": "pre-alias\ninfn:y",
    "echo plain": "plain",
}
# A function defined and used on one line: the hooks tell what a line used after it
# ran, so its rerun has it too.
ONE_LINE = {
    "bash": "onel() { echo one-line; }; onel",
    "zsh": "onel() { echo one-line; }; onel",
    "fish": "function onel; echo one-line; end; onel",
}


def test_rerun_has_the_aliases_and_functions_of_the_session(world, shells, kind):
    before, inside = DEFINE[kind]
    sh = on_in_a_live_shell(world, kind, before)
    shells.append(sh)
    for line in inside:
        sh.run(line)
    used = {**USED, ONE_LINE[kind]: "one-line"}
    for line, printed in used.items():
        assert printed.replace("\n", "\r\n").encode() in sh.run(line), line
    sh.run("exit")
    assert sh.exit() in (0, 1)
    tasks = {t.command: t for t in world.tasks()}
    assert list(used) == [c for c in commands(world.tasks()) if c in used]
    assert KEY not in tasks["echo plain"].data  # nothing kept a command does not use
    kept = tasks["infn y"].data[KEY]
    # bash and zsh expand an alias in a function as they define it; fish calls it
    assert set(kept["aliases"]) | set(kept["functions"]) == (
        {"infn", "pre"} if kind == "fish" else {"infn"}
    )
    assert "helper" in tasks["prefn x"].data[KEY]["functions"]  # what prefn calls
    for line, printed in used.items():
        task = tasks[line]
        assert (
            task.status == "complete"
            and task.output.replace(b"\r\n", b"\n").strip() == printed.encode()
        )
        rerun = subprocess.run(
            ["qme", "rerun", task.id],
            env=world.env,
            cwd=world.home,
            capture_output=True,
            timeout=30,
        )
        assert rerun.returncode == 0, (line, rerun.stderr)
        assert rerun.stdout.decode().strip() == printed, (line, rerun.stdout, rerun.stderr)


def test_rerun_without_the_shell_says_why_in_one_line():
    kept = {KEY: definitions("zsh", {"ll": "ls -l"}, {})}
    with pytest.raises(QmeError) as caught:
        rerun_argv(["/nowhere/qme-no-such-shell", "-c", "ll"], "ll", kept)
    message = str(caught.value)
    assert message.startswith("'ll' was an alias of that session; qme cannot rerun it here (")
    assert "\n" not in message


def test_rerun_of_a_task_without_definitions_is_unchanged():
    argv = ["/bin/bash", "-c", "echo hi"]
    assert rerun_argv(argv, "echo hi", {}) == argv
    assert rerun_argv(argv, "echo hi", {"other": 1}) == argv


@pytest.mark.parametrize("kind", ["bash", "zsh"])
def test_xtrace_of_the_hooks_is_not_recorded(world, shells, kind):
    require_program(kind)
    sh = world.session(kind)
    shells.append(sh)
    sh.run("set -x")
    sh.run("echo tr''aced", "traced")
    sh.run("echo second")
    sh.run("set +x")
    assert sh.exit() == 0
    tasks = {t.command: t for t in world.tasks()}
    for line in ("echo tr''aced", "echo second"):
        output = tasks[line].output
        assert b"__qme" not in output and b"6973" not in output, (line, output)
        assert output.endswith(line.split()[-1].replace("''", "").encode() + b"\r\n"), output
