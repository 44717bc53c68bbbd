"""qme generate-key: print a new random secret for QME_SERVER_KEY."""

from __future__ import annotations

from qme.cli.env import OK


def add_parser(subparsers, name):
    return subparsers.add_parser(
        "generate-key",
        help="print a new secret for QME_SERVER_KEY",
        description="Print a new random secret (256 bits, URL-safe), for example: "
        "export QME_SERVER_KEY=$(qme generate-key)",
    )


def run(args) -> int:
    import secrets

    args.env.out(secrets.token_urlsafe(32))
    return OK
