"""What an sbatch command asks for: the job's name, working directory, array, and
output and error files, read the way sbatch reads them: command-line options over
SBATCH_* environment variables over the script's #SBATCH directives.

Pure functions over strings and files: no Slurm needed.
"""

from __future__ import annotations

import os
import re
import shlex

# Short options that take a value (sbatch 22.05); every other short option is a flag.
SHORT_WITH_VALUE = frozenset("aAbBcCdDeFGiJLmMnNopqStwx")
SHORT_NAMES = {
    "a": "array",
    "D": "chdir",
    "e": "error",
    "J": "job-name",
    "o": "output",
    "W": "wait",
}
# Long options that take no value, or only as --name=value (optional values).
LONG_FLAGS = frozenset(
    ("contiguous", "exclusive", "get-user-env", "help", "hold", "ignore-pbs", "no-kill")
    + ("no-requeue", "nice", "overcommit", "oversubscribe", "parsable", "propagate", "quiet")
    + ("reboot", "requeue", "spread-job", "test-only", "usage", "use-min-nodes", "verbose")
    + ("version", "wait")
)
ENVIRONMENT = {
    "array": "SBATCH_ARRAY_INX",
    "error": "SBATCH_ERROR",
    "job-name": "SBATCH_JOB_NAME",
    "output": "SBATCH_OUTPUT",
    "wait": "SBATCH_WAIT",
}
DEFAULT_OUTPUT, DEFAULT_ARRAY_OUTPUT = "slurm-%j.out", "slurm-%A_%a.out"
# sbatch's filename pattern: %, then an optional zero-padding width, then a letter.
PATTERN = re.compile(r"%(\d*)([%AajJNnstux])")
SUBMITTED = re.compile(r"Submitted batch job (\d+)(?: on cluster (\S+))?")
PARSABLE = re.compile(r"(\d+)(?:;(\S+))?")
NO_ARRAY_INDEX = "4294967294"  # what %a gives in a job that is not an array


def parse_options(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """sbatch's options by long name (flags map to ""), and what follows them: the
    script and its arguments. Like sbatch, stops at the first non-option."""
    options: dict[str, str] = {}
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "--":
            return options, args[position + 1 :]
        if arg.startswith("--"):
            name, equals, value = arg[2:].partition("=")
            if not equals and name not in LONG_FLAGS:
                position += 1
                value = args[position] if position < len(args) else ""
            options[name] = value
        elif arg.startswith("-") and len(arg) > 1:
            for offset, letter in enumerate(arg[1:], start=2):
                if letter in SHORT_WITH_VALUE:
                    value = arg[offset:]
                    if not value:
                        position += 1
                        value = args[position] if position < len(args) else ""
                    options[SHORT_NAMES.get(letter, letter)] = value
                    break
                options[SHORT_NAMES.get(letter, letter)] = ""
        elif arg != ":":  # ':' separates the components of a heterogeneous job
            return options, args[position:]
        position += 1
    return options, []


def directives(script: str) -> dict[str, str]:
    """The options in a script's #SBATCH lines, which sbatch reads up to the first
    line that is neither blank nor a comment."""
    tokens: list[str] = []
    try:
        with open(script, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("#SBATCH"):
                    try:
                        tokens += shlex.split(line[len("#SBATCH") :], comments=True)
                    except ValueError:
                        continue  # sbatch refuses such a line; it says so itself
                elif line.strip() and not line.lstrip().startswith("#"):
                    break
    except OSError:
        return {}
    return parse_options(tokens)[0]


def find_script(script: str, workdir: str) -> str | None:
    """Where sbatch finds its script: ./x and relative names in the working
    directory, absolute names as they are, else through PATH."""
    if os.path.isabs(script):
        return script
    local = os.path.join(workdir, script)
    if script.startswith(".") or os.path.exists(local):
        return local
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder, script)
        if folder and os.path.isfile(candidate):
            return candidate
    return None


def submission(argv: list[str], cwd: str, env: dict[str, str] | None = None) -> dict:
    """What `sbatch …` (argv, run in cwd) asks for: jobname, workdir, script,
    array (when one), wait (--wait: sbatch returns when the job ends), and the
    output and error filename patterns, absolute."""
    env = os.environ if env is None else env
    options, rest = parse_options(argv[1:])
    workdir = os.path.normpath(os.path.join(cwd, options.get("chdir") or "."))
    script = None if "wrap" in options or not rest else rest[0]
    path = find_script(script, workdir) if script else None
    merged = directives(path) if path else {}
    merged.update({name: env[var] for name, var in ENVIRONMENT.items() if env.get(var)})
    merged.update(options)
    if "chdir" in merged and "chdir" not in options:  # a directive can set it too
        workdir = os.path.normpath(os.path.join(cwd, merged["chdir"]))
    jobname = merged.get("job-name") or (
        "wrap" if "wrap" in options else os.path.basename(script) if script else "sbatch"
    )
    found = {"jobname": jobname, "workdir": workdir}
    if path:
        found["script"] = path
    if merged.get("array"):
        found["array"] = merged["array"]
    if "wait" in merged:
        found["wait"] = True
    output = merged.get("output") or (DEFAULT_ARRAY_OUTPUT if "array" in found else DEFAULT_OUTPUT)
    # Without --error, the job's stderr goes to its output file.
    found["output_pattern"] = os.path.join(workdir, output)
    found["error_pattern"] = os.path.join(workdir, merged.get("error") or output)
    return found


def job_id(printed: str) -> tuple[str, str | None] | None:
    """(job id, cluster) from what sbatch printed: 'Submitted batch job N [on
    cluster C]', or with --parsable 'N' or 'N;C' alone on its first line."""
    found = SUBMITTED.search(printed)
    if found:
        return found.group(1), found.group(2)
    lines = printed.strip().splitlines()
    parsable = PARSABLE.fullmatch(lines[0].strip()) if lines else None
    return (parsable.group(1), parsable.group(2)) if parsable else None


def expand(pattern: str, fields: dict[str, str]) -> str:
    """A filename pattern with the fields that are known filled in (%j → '123');
    the others (%N before the job has a node) stay as they are. A backslash
    turns the patterns off, as in sbatch."""
    if "\\" in pattern:
        return pattern.replace("\\", "")

    def replace(found: re.Match) -> str:
        width, letter = found.groups()
        if letter == "%":
            return "%"
        value = fields.get(letter)
        if value is None:
            return found.group(0)
        return value.zfill(int(width)) if width and value.isdigit() else value

    return PATTERN.sub(replace, pattern)


def pattern_fields(
    jobid: str, jobname: str, user: str, index: str | None = None, element: str | None = None
) -> dict[str, str]:
    """The values of the filename patterns of a batch job (or of one element of an
    array: its index and its own job id, once known)."""
    fields = {"A": jobid, "J": jobid, "j": jobid, "x": jobname, "u": user}
    fields.update({"s": "batch", "n": "0", "t": "0", "a": NO_ARRAY_INDEX})
    if index is not None:
        fields["a"] = index
        fields.pop("j")
        fields.pop("J")
        if element:
            fields["j"] = fields["J"] = element
    return fields


def first_node(nodelist: str | None) -> str | None:
    """The first host of a Slurm hostlist ('node[03-05,9]' → 'node03')."""
    if not nodelist or nodelist in ("(null)", "None assigned") or nodelist.startswith("("):
        return None
    found = re.match(r"([^\[,]*)(?:\[([^\],-]+))?", nodelist)
    return f"{found.group(1)}{found.group(2) or ''}" if found else None


def array_indices(spec: str) -> int | None:
    """How many elements an --array spec asks for ('0-9:2,20%4' → 6); None if it
    cannot be read."""
    count = 0
    for item in spec.split("%")[0].split(","):
        found = re.fullmatch(r"\s*(\d+)(?:-(\d+)(?::(\d+))?)?\s*", item)
        if not found:
            return None
        first, last, step = found.groups()
        last = int(last) if last else int(first)
        count += len(range(int(first), last + 1, int(step or 1)))
    return count
