"""`qme on` in a live shell, with real bash, zsh and fish driven by pexpect: the
shell's state reaches the session shell; the terminal's own integration marks
pass through (checked on the raw bytes the terminal gets) and are never stored;
stored output is only what the command printed; other prompt tools coexist.

Helpers (World, Shell) come from test_shells.py; under CI=true a missing shell
fails instead of skipping.
"""

# ruff: noqa: F811 - the fixtures of test_shells.py, imported
from __future__ import annotations

import re

import pytest
from test_shells import (  # noqa: F401 - fixtures
    LOAD,
    MARK,
    PLAIN,
    SET_PROMPT,
    Shell,
    commands,
    kind,
    require_program,
    shells,
    world,
)

# Built up by hand before `qme on`, one line each; then checked inside the session.
BEFORE = {
    "bash": [
        "alias pre='echo pre-alias-ok'",
        "export PREVAR=x; LOCAL='not exported'; arr=(1 '2 3'); declare -A map=([k]='v w')",
        'myfn() { echo "fn:$1"; }',
        "myprompt() { HOOKED=$((HOOKED + 1)); }; PROMPT_COMMAND+=(myprompt)",
        "BIG=$(printf '%*s' 1000000 '' | tr ' ' x)",
        "readonly MINE=ro",
        "cd /usr; pushd /tmp >/dev/null; pushd /etc >/dev/null",
        "umask 027; trap 'echo bye' USR1; trap '__dbg=1' DEBUG; shopt -s extglob; set -o noclobber",
        "HISTCONTROL=ignoreboth",
        'echo "typed""before"',
        "(exit 3)",
    ],
    "zsh": [
        "alias pre='echo pre-alias-ok'",
        "export PREVAR=x; LOCAL='not exported'; arr=(1 '2 3'); typeset -A map; map=(k 'v w')",
        'myfn() { echo "fn:$1"; }',
        "myprompt() { HOOKED=$((HOOKED + 1)); }; precmd_functions+=(myprompt)",
        "BIG=${(l:1000000::x:)}",
        "readonly MINE=ro",
        "cd /usr; pushd /tmp >/dev/null; pushd /etc >/dev/null",
        "umask 027; trap 'echo bye' USR1; setopt extendedglob noclobber HIST_IGNORE_DUPS",
        'echo "typed""before"',
        "(exit 3)",
    ],
    "fish": [
        "alias pre='echo pre-alias-ok'",
        "set -gx PREVAR x; set -g LOCAL 'not exported'; set -g arr 1 '2 3'",
        'function myfn; echo "fn:$argv[1]"; end',
        "function myprompt --on-event fish_prompt; set -g HOOKED (math $HOOKED + 1); end",
        "set -g BIG (string repeat -n 1000000 x)",
        "set -g odd \\t \"it's\" '' (printf 'l1\\nl2' | string collect); set -g none",
        "set -g MINE ro",
        "cd /usr; pushd /tmp; pushd /etc",
        "umask 027; set -U qme_test_universal uni",
        'echo "typed""before"',
        "sleep 1.1",  # fish leaves out history written in the second its session began
        "false",
    ],
}
CHECKS = {  # line typed in the session -> what it prints
    "bash": [
        ('echo "st=$?"', "st=3"),
        ("pre", "pre-alias-ok"),
        (
            'echo "$PREVAR/$LOCAL/${arr[1]}/${map[k]}/${#BIG}/$MINE"',
            "x/not exported/2 3/v w/1000000/ro",
        ),
        ("myfn a", "fn:a"),
        ('echo "hooked=$((HOOKED > 1))"', "hooked=1"),
        ("dirs; umask", "/etc /tmp /usr\r\n0027"),
        (
            "trap -p USR1; trap -p DEBUG; shopt -p extglob; [[ -o noclobber ]] && echo nc",
            "bye' SIGUSR1\r\ntrap -- '__dbg=1' DEBUG\r\nshopt -s extglob\r\nnc",
        ),
        ("history 20", 'echo "typed""before"'),
    ],
    "zsh": [
        ('echo "st=$?"', "st=3"),
        ("pre", "pre-alias-ok"),
        (
            'echo "$PREVAR/$LOCAL/${arr[2]}/${map[k]}/${#BIG}/$MINE"',
            "x/not exported/2 3/v w/1000000/",
        ),
        ("myfn a", "fn:a"),
        ('echo "hooked=$((HOOKED > 1))"', "hooked=1"),
        ("dirs; umask", "/etc /tmp /usr\r\n027"),
        ("trap; [[ -o extendedglob && -o noclobber ]] && echo opts", "bye' USR1\r\nopts"),
        ("fc -l -20", 'echo "typed""before"'),
    ],
    "fish": [
        ('echo "st=$status"', "st=1"),
        ("pre", "pre-alias-ok"),
        (
            'echo "$PREVAR/$LOCAL/$arr[2]/"(string length $BIG)"/$MINE"',
            "x/not exported/2 3/1000000/ro",
        ),
        ("string join , -- (string escape -- $odd) (count $none)", "\\t,it\\'s,'',l1\\nl2,0"),
        ("myfn a", "fn:a"),
        ("test $HOOKED -gt 1; and echo hooked=1", "hooked=1"),
        ("dirs; umask; echo $qme_test_universal", "/etc /tmp /usr\r\n0027\r\nuni"),
        ("history search --max 20 typed", 'echo "typed""before"'),
    ],
}
GREETING = "HELLO-GREETING"


def on_in_a_live_shell(world, kind, before: list[str], rc: str = "") -> Shell:
    """A plain shell (the rc file only), the hooks loaded, lines typed, `qme on`."""
    world.write_rc(kind, rc)
    if kind == "fish":
        world.write_rc(kind, f"set -g fish_greeting {GREETING}\n" + rc, base=False)
    env = {**world.env, "TMPDIR": str(world.home / "tmp")}
    (world.home / "tmp").mkdir()
    argv = [require_program(kind), *({"fish": ["-i"]}.get(kind, PLAIN[kind]))]
    sh = Shell(argv, env, world.home, wait=False)
    sh.run(SET_PROMPT[kind])
    sh.run(LOAD[kind])
    for line in before:
        sh.run(line)
    sh.child.sendline("qme on")
    sh.child.expect("qme: recording this shell's commands")
    sh.wait()
    return sh


def test_qme_on_carries_the_shell_state_over(world, shells, kind):
    sh = on_in_a_live_shell(world, kind, BEFORE[kind])
    shells.append(sh)
    assert list((world.home / "tmp").glob("qme-state*")) == []  # the snapshot is gone already
    for line, expected in CHECKS[kind]:
        shown = sh.run(line).replace(b"\x1b[?2004l", b"").replace(b"\x1b[?2004h", b"")
        assert expected.encode() in shown, (line, shown)
    sh.run("qme off", "paused")
    sh.run("exit")
    sh.run("qme status", "not recording")
    assert sh.exit() in (0, 1)
    assert sh.shown.count(b"qme: recording this shell's commands") == 1
    if kind == "fish":
        assert sh.shown.count(GREETING.encode()) == 1  # not a second time
    tasks = world.tasks()
    assert commands(tasks) == [line for line, _ in CHECKS[kind]]
    assert all(t.status == "complete" and t.output for t in tasks)


def test_qme_on_without_mktemp_still_starts_and_says_so(world, shells):
    require_program("bash")
    bin_only = world.bin  # qme is here; mktemp is not
    for tool in ("rm",):
        (bin_only / tool).symlink_to(require_program(tool))
    world.write_rc("bash")
    env = {**world.env, "PATH": str(bin_only)}
    sh = Shell([require_program("bash"), *PLAIN["bash"]], env, world.home, wait=False)
    shells.append(sh)
    sh.run(SET_PROMPT["bash"])
    sh.run(LOAD["bash"].replace("qme", str(bin_only / "qme"), 1))
    sh.child.sendline("qme on")
    sh.child.expect("could not save this shell's state")
    sh.child.expect("qme: recording this shell's commands")
    sh.wait()
    sh.run('echo "in""side"', "inside")
    sh.run("exit")
    assert sh.exit() == 0
    assert commands(world.tasks()) == ['echo "in""side"', "exit"]


# -- what the terminal gets, what is stored ---------------------------------------------

ESC = "\\e"
# The marks of the terminal's own integration, printed by the prompt hooks of the rc
# (as VS Code, iTerm2, WezTerm, kitty, … set them up) and by a command.
OSC = {
    "A": "\x1b]133;A\x07",
    "B": "\x1b]133;B\x07",
    "C": "\x1b]133;C\x07",
    "D": "\x1b]133;D;0\x07",
    "633": "\x1b]633;E;echo\x07",
    "7": "\x1b]7;file://host/tmp\x07",
    "1337": "\x1b]1337;CurrentDir=/tmp\x07",
    "mark": "\x1b]1337;SetMark\x07",
}
MARKS_RC = {
    "bash": "__t_pre() { printf '\\e]133;D;%s\\a\\e]133;A\\a\\e]7;file://host%s\\a' $? \"$PWD\"; }"
    "\n"
    "PROMPT_COMMAND=(__t_pre)\nPS1='QP> \\[\\e]133;B\\a\\]'\nPS0='\\e]133;C\\a'\n",
    "zsh": "precmd() { printf '\\e]133;D;%s\\a\\e]133;A\\a\\e]7;file://host%s\\a' $? \"$PWD\"; }\n"
    "preexec() { printf '\\e]133;C\\a'; }\nPROMPT=$'QP> %{\\e]133;B\\a%}'\n",
    "fish": "function __t_post --on-event fish_postexec; printf '\\e]133;D;%s\\a' $status; end\n"
    "function __t_pre --on-event fish_preexec; printf '\\e]133;C\\a'; end\n"
    "function fish_prompt; printf '\\e]133;A\\a\\e]7;file://host%s\\aQP> \\e]133;B\\a' $PWD; end\n"
    "set -g fish_greeting\n",
}
PRINT_MARKS = (
    "printf '\\033]633;E;echo\\007\\033]1337;CurrentDir=/tmp\\007"
    "\\033]1337;SetMark\\007pl''ain\\n\\033]7;file://host/tmp\\007'"
)


def test_terminal_integration_marks_pass_through_and_are_not_stored(world, shells, kind):
    sh = world.session(kind, rc=MARKS_RC[kind], **({"fish": {}}.get(kind, {})))
    shells.append(sh)
    sh.run(PRINT_MARKS, "plain")
    sh.run("printf 'exact\\n'", "exact")
    assert sh.exit() == 0
    raw = sh.shown  # every byte the terminal got (Shell logs the pty's bytes)
    for name, mark in OSC.items():
        assert mark.encode() in raw, f"the terminal never got OSC {name}"
    assert MARK not in raw  # qme's own marks never reach it
    printed, exact, _ = world.tasks()
    assert printed.output == b"plain\r\n"
    assert exact.output == b"exact\r\n"


@pytest.mark.parametrize("rc", ["", "fancy"])
def test_stored_output_is_only_what_the_command_printed(world, shells, kind, rc):
    """`printf 'exact\\n'` is stored as the terminal got it from the command: exact\\r\\n
    (the pty's line discipline turns \\n into \\r\\n, as for `qme run` on a terminal),
    with no prompt redraw, title, mode switch or colour of the shell's around it."""
    from test_shells import FANCY

    extra = FANCY[kind][0] if rc else ""
    sh = world.session(kind, rc=extra, **({"prompt": re.compile(FANCY[kind][1])} if rc else {}))
    shells.append(sh)
    for _ in range(2):
        sh.run("printf 'exact\\n'")
    sh.run("set -l x" if kind == "fish" else "x=1")
    assert sh.exit() == 0
    first, second, silent, _ = world.tasks()
    assert first.output == second.output == b"exact\r\n"
    assert silent.output == b""


@pytest.mark.parametrize("kind", ["bash", "zsh"])
def test_under_xtrace_a_command_keeps_its_own_trace_and_nothing_of_qme(world, shells, kind):
    """With `set -x`, a command's output holds its own trace (one line) and its
    output, and neither it nor the terminal shows a trace of qme's hooks (bash's
    PS0 subshell and prompt hook, zsh's preexec and precmd); fish has no xtrace."""
    sh = world.session(kind)
    shells.append(sh)
    sh.run("set -x")
    sh.run("printf 'exact\\n'", "exact")
    sh.run("set +x")
    assert sh.exit() == 0
    _, traced, _, _ = world.tasks()
    lines = traced.output.split(b"\r\n")
    assert lines[1:] == [b"exact", b""] and b"printf" in lines[0], traced.output
    assert b"qme" not in traced.output
    assert b"__qme" not in sh.shown


# -- other prompt tools in the same rc, in either order ------------------------------------

COEXIST = {
    "bash": "__n=0; __d=0\nPROMPT_COMMAND=('__n=$((__n + 1))')\ntrap '__d=$((__d + 1))' DEBUG\n",
    "zsh": "__n=0\n__count() { __n=$((__n + 1)); }\nprecmd_functions+=(__count)\n",
    "fish": "set -g __n 0\n"
    "function __count --on-event fish_prompt; set -g __n (math $__n + 1); end\n",
}
# bash: their DEBUG trap runs before every simple command, as many times as without
# qme (4 between the assignment and the echo's expansion), though qme's runs too.
COUNTERS = {
    "bash": '__d0=$__d; :; :; :; echo "n=$__n d=$((__d - __d0))"',
    "zsh": 'echo "n=$__n"',
    "fish": 'echo "n=$__n"',
}


@pytest.mark.parametrize("order", ["theirs-first", "qme-first"])
def test_other_prompt_tools_keep_working(world, shells, kind, order):
    from test_shells import HOOKS

    hook = f"source {HOOKS / ('qme.' + kind)}\n"
    rc = COEXIST[kind] + hook if order == "theirs-first" else hook + COEXIST[kind]
    sh = world.session(kind, rc=rc)
    shells.append(sh)
    first = sh.run(COUNTERS[kind])
    second = sh.run(COUNTERS[kind])
    n1 = int(re.search(rb"n=(\d+)", first).group(1))
    n2 = int(re.search(rb"n=(\d+)", second).group(1))
    assert n2 == n1 + 1  # their prompt hook runs once a prompt
    if kind == "bash":
        assert b"d=4" in first and b"d=4" in second  # and their DEBUG trap
    assert sh.exit() == 0
    tasks = world.tasks()
    assert commands(tasks) == [COUNTERS[kind], COUNTERS[kind], "exit"]
    assert [t.status for t in tasks[:2]] == ["complete"] * 2


# As bash-preexec does: its DEBUG trap is set from PROMPT_COMMAND at the first
# prompt, after qme's hook has put its own in place.
LATE_TRAP = (
    "__d=0\n"
    "__install() { trap '__d=$((__d + 1))' DEBUG\n"
    '  PROMPT_COMMAND=("${PROMPT_COMMAND[@]/__install}"); }\n'
    "PROMPT_COMMAND+=(__install)\n"
)


def test_a_debug_trap_set_at_the_first_prompt_keeps_working_and_every_line_is_recorded(
    world, shells
):
    sh = world.session("bash", rc=LATE_TRAP)
    shells.append(sh)
    lines = [COUNTERS["bash"], 'echo "sec""ond"', COUNTERS["bash"]]
    shown = [sh.run(line) for line in lines]
    assert b"d=4" in shown[0] and b"d=4" in shown[2]
    assert sh.exit() == 0
    tasks = world.tasks()
    assert commands(tasks) == [*lines, "exit"]
    assert tasks[1].output == b"second\r\n"
    assert all(b"d=4" in t.output for t in (tasks[0], tasks[2]))


REPLACE_HOOKS = {"bash": "PROMPT_COMMAND='true'", "zsh": "precmd_functions=()"}


@pytest.mark.parametrize("shell", list(REPLACE_HOOKS))
def test_hooks_replaced_in_the_session_are_told_and_qme_on_puts_them_back(world, shells, shell):
    """Something typed in the session (an rc file sourced again) replaces the
    prompt hooks: the user is told once, and `qme on` puts them back."""
    require_program(shell)
    sh = world.session(shell)
    shells.append(sh)
    sh.run(REPLACE_HOOKS[shell])
    warned = sh.run("echo one")  # the line above had no end mark already
    sh.run("echo two")
    sh.run("qme on", "qme: recording this shell's commands")
    sh.run("(exit 4)")
    assert sh.exit() == 0
    assert warned.count(b"qme: warning: the shell's prompt hook did not run") == 1
    assert sh.shown.count(b"prompt hook did not run") == 1
    by_command = {t.command: t for t in world.tasks()}
    assert by_command["(exit 4)"].status == "failed"
    assert by_command["(exit 4)"].returncode == 4
    # Meanwhile commands were recorded all the same, without their exit status (nor
    # the end of their output: the prompt after them goes with it).
    assert by_command["echo one"].output.startswith(b"one\r\n")
    assert by_command["echo two"].output.startswith(b"two\r\n")
