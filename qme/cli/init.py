"""qme init: print the shell integration for bash, zsh or fish."""

from __future__ import annotations

import argparse

from qme.cli.env import OK

HELP = """\
Print the shell integration, to load from your shell's startup file:

  bash (~/.bashrc):                  eval "$(qme init bash)"
  zsh  (~/.zshrc):                   eval "$(qme init zsh)"
  fish (~/.config/fish/config.fish): qme init fish | source

Then `qme on` records every command you type, `qme off` pauses, `qme status`
tells. With --auto, every new interactive shell starts recorded (inside a qme
session); if qme cannot start, the shell starts as usual. The tab completion of
qme (`qme completion SHELL`) comes along unless --no-completion. With --ctrl-r,
Ctrl-R opens `qme history`: a full-screen search over everything qme recorded,
whose choice is put on the prompt line (not run).
"""

# Start each new interactive terminal shell inside a session; when that session
# ends, so does this shell (unless qme itself failed, then it carries on).
AUTO = {
    "bash": "if [[ -z ${QME_SESSION-} && -t 0 && -t 1 ]]; then "
    'command qme session --shell "$BASH" && exit; fi\n',
    "zsh": "if [[ -z ${QME_SESSION-} && -t 0 && -t 1 ]]; then "
    'command qme session --shell "${commands[zsh]:-zsh}" && exit; fi\n',
    # `qme init fish --auto | source` runs this with the pipe as stdin (so test
    # stdout, and give the session the terminal); `exit` there would only end the
    # sourcing, so the shell leaves at its first prompt.
    "fish": "if status is-interactive; and not set -q QME_SESSION; and isatty stdout\n"
    "    command qme session --shell (status fish-path) </dev/tty\n"
    "    and function __qme_leave --on-event fish_prompt; exit; end\nend\n",
}


# Ctrl-R: `qme history` on the terminal, its answer put on the prompt line to be
# edited or run with Enter (as atuin does); Esc leaves the line as it was.
CTRL_R = {
    "bash": r"""__qme_history_search() {
    local __qme_picked
    __qme_picked=$(command qme history --query "$READLINE_LINE" </dev/tty) || return 0
    READLINE_LINE=$__qme_picked
    READLINE_POINT=${#READLINE_LINE}
}
if [[ $- == *i* ]]; then
    bind -x '"\C-r": __qme_history_search'
fi
""",
    "zsh": r"""__qme_history_search() {
    local __qme_picked
    __qme_picked=$(command qme history --query "$BUFFER" </dev/tty) && {
        BUFFER=$__qme_picked
        CURSOR=${#BUFFER}
    }
    zle reset-prompt
}
zle -N __qme_history_search
bindkey '^R' __qme_history_search
""",
    "fish": r"""function __qme_history_search
    set -l __qme_picked (command qme history --query (commandline -b) </dev/tty | string collect)
    and commandline -r -- $__qme_picked
    commandline -f repaint
end
bind \cr __qme_history_search
bind -M insert \cr __qme_history_search 2>/dev/null
""",
}


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        name,
        help="print the shell integration (bash, zsh, fish)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=sorted(AUTO))
    parser.add_argument(
        "--auto", action="store_true", help="record every new interactive shell from the start"
    )
    parser.add_argument(
        "--ctrl-r",
        action="store_true",
        help="bind Ctrl-R to qme history: search the whole history, put the choice on the line",
    )
    parser.add_argument(
        "--no-completion",
        dest="completion",
        action="store_false",
        help="leave out qme's tab completion (qme completion SHELL prints it alone)",
    )
    return parser


def run(args) -> int:
    from qme.api import shell_hooks

    args.env.stdout.write(shell_hooks(args.shell))
    if args.completion:
        from qme.cli.completion import script

        args.env.stdout.write(script(args.shell, args.env, args.config_dir))
    if args.ctrl_r:
        args.env.stdout.write(CTRL_R[args.shell])
    if args.auto:
        args.env.stdout.write(AUTO[args.shell])
    return OK
