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
qme (`qme completion SHELL`) comes along unless --no-completion.
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
    if args.auto:
        args.env.stdout.write(AUTO[args.shell])
    return OK
