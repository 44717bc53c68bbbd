"""qme completion: real interactive shells (pexpect) complete qme's commands, their
options and the options' values; the bash script is shellcheck-clean; qme init
loads the completion unless told not to."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pexpect
import pytest
from helpers import ok, require_program

SHELLS = {
    "bash": (["bash", "--noprofile", "--norc", "-i"], "PS1='Q''P> '"),
    "zsh": (["zsh", "-f", "-i"], "PROMPT='Q''P> '; autoload -Uz compinit; compinit -u"),
    "fish": (["fish", "--no-config", "-i"], "function fish_prompt; printf 'Q''P> '; end"),
}
# A stand-in `qme` that prints the words it got: Enter after TAB shows the line.
ECHO = {
    "bash": "qme() { printf 'ARGS<%s>\\n' \"$*\"; }",
    "zsh": "qme() { printf 'ARGS<%s>\\n' \"$*\"; }",
    "fish": "function qme; printf 'ARGS<%s>\\n' \"$argv\"; end",
}


def script(kind: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "qme", "completion", kind], capture_output=True, check=True
    )
    return result.stdout.decode()


class Shell:
    def __init__(self, kind: str, tmp_path, setup: str):
        argv, prompt = SHELLS[kind]
        require_program(argv[0])
        env = {**os.environ, "TERM": "xterm", "HOME": str(tmp_path)}
        env.pop("QME_SESSION", None)
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, cwd=str(tmp_path), timeout=20)
        self.child.setwinsize(40, 200)
        self.run(prompt)
        self.run(setup)
        self.run(ECHO[kind])

    def run(self, line: str) -> bytes:
        self.child.sendline(line)
        self.child.expect("QP> ")
        return self.child.before

    def complete(self, typed: str) -> str:
        """Type, press TAB, then Enter: the words the stand-in qme was given."""
        self.child.send(typed)
        self.child.send("\t")
        self.child.expect(r"\S")  # something shown: the completion
        self.child.send("\r")
        self.child.expect(r"ARGS<([^>\r\n]*)>")
        found = self.child.match.group(1).decode()
        self.child.expect("QP> ")
        return found

    def close(self):
        self.child.sendline("exit")
        self.child.close(force=True)


@pytest.fixture(params=sorted(SHELLS))
def shell(request, tmp_path):
    kind = request.param
    path = tmp_path / f"completion.{kind}"
    path.write_text(script(kind))
    sh = Shell(kind, tmp_path, f"source {path}")
    yield sh
    sh.close()


def test_commands_options_and_values_complete_in_a_real_shell(shell):
    assert shell.complete("qme l") == "ls"
    assert shell.complete("qme ls --sta") == "ls --status"
    assert shell.complete("qme ls --status fai") == "ls --status failed"
    assert shell.complete("qme search --exec") == "search --executor"
    assert shell.complete("qme ls sl") == "ls slurm"  # an executor's name
    assert shell.complete("qme doc") == "doctor"


def test_the_bash_script_is_shellcheck_clean(tmp_path):
    require_program("shellcheck")
    path = tmp_path / "qme.bash"
    path.write_text(script("bash"))
    result = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("kind", sorted(SHELLS))
def test_every_command_and_its_options_are_in_the_script(kind):
    from qme.cli.parser import COMMANDS

    text = script(kind)
    for name in COMMANDS:
        assert re.search(rf"\b{re.escape(name)}\b", text), name
    for option in ("status", "executor", "reverse", "config_dir"):
        assert option in text


def test_qme_init_loads_the_completion_unless_told_not_to(qme, tmp_path):
    for kind in SHELLS:
        loaded = ok(qme("init", kind))
        assert script(kind) in loaded
        assert script(kind) not in ok(qme("init", kind, "--no-completion"))
    # and in a real bash, after qme init, qme completes
    init = tmp_path / "init.bash"
    init.write_text(ok(qme("init", "bash")))
    sh = Shell("bash", tmp_path, f"source {init}")
    try:
        assert b"-F __qme_complete qme" in sh.run("complete -p qme")
        assert sh.complete("qme searc") == "search"
    finally:
        sh.close()
