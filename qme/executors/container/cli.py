"""Reading container command lines: which image, which options, which command.

Only what the executors keep is interpreted; the rest of a command line is
skipped knowing which options take a value: for docker and podman the boolean
options are listed and every other one takes a value; for apptainer the reverse,
as its value-taking options are the fewer.
"""

from __future__ import annotations

import shlex

# `docker run` / `podman run` options that take no value (the union of both).
OCI_FLAGS = frozenset(
    [
        "--detach",
        "--interactive",
        "--tty",
        "--rm",
        "--privileged",
        "--init",
        "--publish-all",
        "--read-only",
        "--read-only-tmpfs",
        "--no-healthcheck",
        "--oom-kill-disable",
        "--disable-content-trust",
        "--help",
        "--quiet",
        "--replace",
        "--rmi",
        "--sig-proxy",
        "--no-hosts",
        "--env-host",
        "--http-proxy",
        "--passwd",
        "--rootfs",
        "--tls-verify",
        "--use-api-socket",
        "-d",
        "-P",
        "-i",
        "-t",
        "-q",
    ]
)
OCI_LONG = {  # short option -> its long name
    "-d": "--detach",
    "-p": "--publish",
    "-v": "--volume",
    "-e": "--env",
    "-i": "--interactive",
    "-t": "--tty",
    "-P": "--publish-all",
    "-w": "--workdir",
    "-u": "--user",
    "-q": "--quiet",
}
# apptainer / singularity exec|run options that take a value.
APPTAINER_VALUES = frozenset(
    [
        "--bind",
        "--mount",
        "--home",
        "--workdir",
        "--env",
        "--env-file",
        "--pwd",
        "--overlay",
        "--security",
        "--network",
        "--network-args",
        "--hostname",
        "--app",
        "--scratch",
        "--fusemount",
        "--drop-caps",
        "--add-caps",
        "--apply-cgroups",
        "--dns",
        "--cpus",
        "--cpu-shares",
        "--cpuset-cpus",
        "--cpuset-mems",
        "--memory",
        "--memory-reservation",
        "--memory-swap",
        "--pids-limit",
        "--blkio-weight",
        "--blkio-weight-device",
        "--no-mount",
        "--pem-path",
        "--authfile",
        "--config",
        "--device",
        "--cdi-dirs",
        "--docker-host",
        "--library",
        "--oci-conf",
        "-B",
        "-H",
        "-W",
        "-o",
        "-S",
    ]
)
SHELL_OPERATORS = frozenset(["|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"])
APPTAINER_LONG = {"-B": "--bind", "-H": "--home", "-W": "--workdir", "-o": "--overlay"}


def words(argv: list[str]) -> list[str]:
    """The command's words; of a shell line (`sh -c "podman run … | tee log"`), those
    of its first command, split as the shell would."""
    if len(argv) != 3 or argv[1] != "-c":
        return list(argv)
    try:
        split = shlex.split(argv[2])
    except ValueError:
        split = argv[2].split()
    ends = [index for index, word in enumerate(split) if word in SHELL_OPERATORS]
    return split[: ends[0]] if ends else split


def split_subcommand(argv: list[str], subcommands: tuple[str, ...]) -> tuple[list[str], int]:
    """(the engine's own options before the subcommand, the subcommand's index, -1
    when there is none); `docker container run` counts as `run`."""
    for index, word in enumerate(argv[1:], 1):
        if word in subcommands:
            before = argv[1:index]
            return before[:-1] if before[-1:] == ["container"] else before, index
        previous = argv[index - 1]
        is_value = index > 1 and previous.startswith("-") and "=" not in previous
        if not (word.startswith("-") or word == "container" or is_value):
            break
    return argv[1:], -1


def parse_options(args: list[str], takes_value) -> tuple[list, int]:
    """([(option, value or None)], index of the first operand) for args that start
    with options; takes_value(name) says whether `--name` or `-n` takes a value.
    Short options may be bundled (`-it`, `-p8080:80`)."""
    found: list[tuple[str, str | None]] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return found, index + 1
        if not arg.startswith("-") or arg == "-":
            break
        if arg.startswith("--"):
            name, equals, value = arg.partition("=")
            if equals or not takes_value(name):
                found.append((name, value if equals else None))
            else:
                index += 1
                found.append((name, args[index] if index < len(args) else None))
        else:
            for position, letter in enumerate(arg[1:], 1):
                if not takes_value(f"-{letter}"):
                    found.append((f"-{letter}", None))
                    continue
                rest = arg[position + 1 :]
                if not rest:
                    index += 1
                    rest = args[index] if index < len(args) else None
                found.append((f"-{letter}", rest))
                break
        index += 1
    return found, index


def named(options, aliases: dict[str, str]) -> list[tuple[str, str | None]]:
    return [(aliases.get(name, name), value) for name, value in options]


def is_set(options, name: str) -> bool:
    """A boolean option given (and not given as `--name=false`)."""
    values = [value for option, value in options if option == name]
    return bool(values) and (values[-1] or "true").lower() not in ("false", "0")


def values(options, *names: str) -> list[str]:
    return [value for option, value in options if option in names and value is not None]


def oci_run(argv: list[str]) -> dict | None:
    """What `docker|podman [OPTIONS] run …` asks for, or None if it is not a run."""
    argv = words(argv)
    engine_args, at = split_subcommand(argv, ("run",))
    if at < 0:
        return None
    found, operand = parse_options(argv[at + 1 :], lambda name: name not in OCI_FLAGS)
    options = named(found, OCI_LONG)
    rest = argv[at + 1 + operand :]
    names = values(options, "--name")
    cidfiles = values(options, "--cidfile")
    return {
        "engine": argv[0],
        **({"engine_args": engine_args} if engine_args else {}),
        "image": rest[0] if rest else None,
        "command": rest[1:],
        **({"name": names[-1]} if names else {}),
        "detach": is_set(options, "--detach"),
        "rm": is_set(options, "--rm"),
        "ports": values(options, "--publish"),
        "mounts": values(options, "--volume", "--mount", "--tmpfs"),
        **({"cidfile": cidfiles[-1]} if cidfiles else {}),
    }


def apptainer_run(argv: list[str]) -> dict | None:
    """What `apptainer|singularity [OPTIONS] exec|run …` asks for, or None."""
    argv = words(argv)
    engine_args, at = split_subcommand(argv, ("exec", "run"))
    if at < 0:
        return None
    found, operand = parse_options(argv[at + 1 :], APPTAINER_VALUES.__contains__)
    options = named(found, APPTAINER_LONG)
    rest = argv[at + 1 + operand :]
    return {
        "engine": argv[0],
        **({"engine_args": engine_args} if engine_args else {}),
        "subcommand": argv[at],
        "image": rest[0] if rest else None,
        "command": rest[1:],
        "binds": values(options, "--bind", "--mount"),
        "options": [name for name, value in options if value is None],
    }
