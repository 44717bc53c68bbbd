"""qme completion: print the tab completion for bash, zsh or fish.

The script is made from qme's own argparse parser (every command, its options
and their values: choices, statuses, executor names), so it never falls behind
the commands. `qme init SHELL` prints it after the hooks (`--no-completion`
leaves it out).
"""

from __future__ import annotations

import argparse

from qme.cli.env import OK

SHELLS = ("bash", "fish", "zsh")

HELP = """\
Print the tab completion for qme in bash, zsh or fish: commands, their options,
and the values options take (statuses, executor names, choices). `qme init
SHELL` already loads it; to load it alone:

  bash (~/.bashrc):                  eval "$(qme completion bash)"
  zsh  (~/.zshrc, after compinit):   eval "$(qme completion zsh)"
  fish:                              qme completion fish > ~/.config/fish/completions/qme.fish
"""


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        name,
        help="print the tab completion for bash, zsh or fish",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS)
    return parser


def run(args) -> int:
    args.env.stdout.write(script(args.shell, args.env, args.config_dir))
    return OK


# -- what there is to complete ----------------------------------------------------------


class Option:
    """An option: its spellings, its help, and what follows it: None (nothing),
    a list of words, or "" (anything: files)."""

    def __init__(self, names: list[str], help: str, values: list[str] | str | None):
        self.names, self.help, self.values = names, help, values


class Command:
    def __init__(self, name: str, help: str, options: list[Option], words: list[str] | None):
        # words: what its positional arguments may be (None: anything, files)
        self.name, self.help, self.options, self.words = name, help, options, words


def describe(env, config_dir: str | None = None) -> tuple[list[Option], list[Command]]:
    """qme's global options and commands, read from its parser."""
    from qme.cli.parser import build_parser
    from qme.task import STATUSES

    executors = _executor_names(config_dir)
    parser = build_parser(env=env)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {action.dest: action.help or "" for action in subparsers._choices_actions}

    def values(action) -> list[str] | str | None:
        if action.nargs == 0:
            return None
        if action.choices:
            return [str(choice) for choice in action.choices]
        if action.dest == "status":
            return list(STATUSES)
        if action.dest == "executor":
            return executors
        return ""

    def options(of) -> list[Option]:
        return [
            Option(list(a.option_strings), _plain(a.help), values(a))
            for a in of._actions
            if a.option_strings and a.help != argparse.SUPPRESS
        ]

    commands = []
    for name, sub in subparsers.choices.items():
        words = None
        for action in sub._actions:
            if not action.option_strings and action.help != argparse.SUPPRESS:
                found = values(action)
                if isinstance(found, list):
                    words = found
                break
        if name == "exec":
            words = executors
        commands.append(Command(name, _plain(helps.get(name, "")), options(sub), words))
    globals_ = [o for o in options(parser) if "--version" not in o.names] + [
        Option(["--version"], "print qme's version", None)
    ]
    return globals_, commands


def _executor_names(config_dir: str | None) -> list[str]:
    from qme import Queue

    try:
        return Queue(config_dir).executor_names()
    except Exception:  # noqa: BLE001 - a broken configuration: complete without them
        return ["shell", "slurm", "docker", "podman", "apptainer"]


def _plain(text: str | None) -> str:
    return " ".join((text or "").replace("%%", "%").split())


# -- the scripts ------------------------------------------------------------------------


def script(shell: str, env=None, config_dir: str | None = None) -> str:
    globals_, commands = describe(env, config_dir)
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](globals_, commands)


def _words(values) -> str:
    return " ".join(values)


def _value_arms(commands_options, indent: str, var: str, files: str) -> list[str]:
    """case arms `COMMAND:-o|COMMAND:--opt) VAR='…' ;;` for the options that take a
    value, from (command, options) pairs; files: what an arm for any value does."""
    arms = []
    for prefix, options in commands_options:
        for option in options:
            if option.values is None:
                continue
            pattern = "|".join(f"{prefix}:{name}" for name in option.names)
            if option.values == "":
                arms.append(f"{indent}{pattern}) {files} ;;")
            else:
                arms.append(f"{indent}{pattern}) {var}='{_words(option.values)}' ;;")
    return arms


def _word_arms(commands: list[Command], indent: str, var: str) -> list[str]:
    """case arms `COMMAND) VAR='…' ;;` for the commands whose arguments are known words."""
    return [f"{indent}{c.name}) {var}='{_words(c.words)}' ;;" for c in commands if c.words]


def _pairs(globals_: list[Option], commands: list[Command]):
    return [("", globals_), *((c.name, c.options) for c in commands)]


def _taking_values(options: list[Option]) -> str:
    return "|".join(n for o in options if o.values is not None for n in o.names)


def _bash(globals_: list[Option], commands: list[Command]) -> str:
    names = _words(c.name for c in commands)
    global_names = _words(n for o in globals_ for n in o.names)
    option_arms = [
        f"                {c.name}) words='{_words(n for o in c.options for n in o.names)}' ;;"
        for c in commands
    ]
    value_arms = _value_arms(_pairs(globals_, commands), "        ", "words", "return 1")
    word_arms = _word_arms(commands, "                ", "words")
    return f"""\
# qme tab completion for bash (qme completion bash; loaded by qme init bash)
# shellcheck shell=bash
__qme_complete_words() {{
    local cur=$1 prev=$2 cmd=$3 words=''
    case $cmd:$prev in
{chr(10).join(value_arms)}
    esac
    if [[ -z $words ]]; then
        if [[ -z $cmd ]]; then
            words='{names} {global_names}'
        elif [[ $cur == -* ]]; then
            case $cmd in
{chr(10).join(option_arms)}
            esac
        else
            case $cmd in
{chr(10).join(word_arms)}
                run) compgen -c -- "$cur"; return 0 ;;
                *) return 1 ;;
            esac
        fi
    fi
    compgen -W "$words" -- "$cur"
}}

__qme_complete() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev='' cmd='' word i
    ((COMP_CWORD > 0)) && prev=${{COMP_WORDS[COMP_CWORD - 1]}}
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${{COMP_WORDS[i]}}
        case $word in
            {_taking_values(globals_)}) ((i++)) ;;
            -*) ;;
            *) cmd=$word; break ;;
        esac
    done
    # after `qme run CMD`, the command's own words: files
    if [[ $cmd == run && $prev != run && $prev != -* ]]; then
        COMPREPLY=()
        return 0
    fi
    COMPREPLY=()
    local line
    while IFS= read -r line; do
        COMPREPLY+=("$line")
    done < <(__qme_complete_words "$cur" "$prev" "$cmd")
}}

complete -o default -o bashdefault -F __qme_complete qme
"""


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh(globals_: list[Option], commands: list[Command]) -> str:
    def described(pairs) -> str:
        return " ".join(_zsh_quote(f"{name}:{help}") for name, help in pairs)

    commands_list = described((c.name, c.help) for c in commands)
    globals_list = described((n, o.help) for o in globals_ for n in o.names)
    option_arms = []
    for c in commands:
        pairs = described((n, o.help) for o in c.options for n in o.names)
        option_arms.append(f"            {c.name}) described=({pairs}) ;;")
    value_arms = _value_arms(_pairs(globals_, commands), "        ", "qwords", "_files; return")
    word_arms = _word_arms(commands, "            ", "qwords")
    return f"""\
# qme tab completion for zsh (qme completion zsh; loaded by qme init zsh, after compinit)
__qme_complete() {{
    local cmd= word i prev=${{words[CURRENT-1]}} cur=${{words[CURRENT]}}
    local -a described
    local qwords=
    for ((i = 2; i < CURRENT; i++)); do
        word=${{words[i]}}
        case $word in
            {_taking_values(globals_)}) ((i++)) ;;
            -*) ;;
            *) cmd=$word; break ;;
        esac
    done
    case $cmd:$prev in
{chr(10).join(value_arms)}
    esac
    if [[ -n $qwords ]]; then
        compadd -- ${{=qwords}}
        return
    fi
    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            described=({globals_list})
            _describe -t options 'qme option' described
        else
            described=({commands_list})
            _describe -t commands 'qme command' described
        fi
    elif [[ $cur == -* ]]; then
        case $cmd in
{chr(10).join(option_arms)}
        esac
        _describe -t options "qme $cmd option" described
    elif [[ $cmd == run ]]; then
        if [[ $prev == run ]]; then _command_names -e; else _files; fi
    else
        case $cmd in
{chr(10).join(word_arms)}
        esac
        if [[ -n $qwords ]]; then compadd -- ${{=qwords}}; else _files; fi
    fi
}}

if (( $+functions[compdef] )); then
    compdef __qme_complete qme
fi
"""


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(condition: str, option: Option) -> str:
    parts = [f"complete -c qme -n {_fish_quote(condition)}"]
    for name in option.names:
        if name.startswith("--"):
            parts.append(f"-l {name[2:]}")
        elif len(name) == 2:
            parts.append(f"-s {name[1]}")
        else:
            parts.append(f"-o {name[1:]}")
    if option.values == "":
        parts.append("-r")
    elif option.values:
        parts.append(f"-x -a {_fish_quote(_words(option.values))}")
    if option.help:
        parts.append(f"-d {_fish_quote(option.help)}")
    return " ".join(parts)


def _fish(globals_: list[Option], commands: list[Command]) -> str:
    names = " ".join(c.name for c in commands)
    lines = [
        "# qme tab completion for fish (qme completion fish; loaded by qme init fish)",
        "complete -c qme -e",
        "complete -c qme -f",
    ]
    first = "__fish_use_subcommand"
    lines += [_fish_option(first, option) for option in globals_]
    lines += [f"complete -c qme -n {first} -a {c.name} -d {_fish_quote(c.help)}" for c in commands]
    for command in commands:
        seen = f"__fish_seen_subcommand_from {command.name}"
        lines += [_fish_option(seen, option) for option in command.options]
        where = f"complete -c qme -n {_fish_quote(seen)}"
        if command.words is not None:
            lines.append(f"{where} -a {_fish_quote(_words(command.words))}")
        elif command.name == "run":
            lines.append(f"{where} -a '(__fish_complete_command)'")
        else:
            lines.append(f"{where} -F")
    lines.append(f"# commands: {names}")
    return "\n".join(lines) + "\n"
