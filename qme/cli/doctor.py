"""qme doctor: what a bug report needs, as text or JSON: versions, where qme is
installed, the store (does it open, its schema, how many tasks), the spool, the
shell integration in this shell, executors and plugins, and the settings with
where each comes from (passwords hidden)."""

from __future__ import annotations

from qme.cli.env import OK

# Settings worth a line in the text report (--json has them all).
KEY_SETTINGS = ("database", "database_string", "max_output", "log_level", "secrets_filter")


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        name,
        help="print what a bug report needs (versions, store, shell integration, spool)",
        description="Print what a bug report needs: qme's, Python's and the system's "
        "versions, where qme is installed, the store (whether it opens, its schema, how "
        "many tasks), records waiting in the spool, the shell integration in this shell, "
        "executors and plugins, and the settings with their sources. Passwords are hidden.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.render import print_json

    report = gather(make_queue(args))
    if args.json:
        print_json(args.env, report)
    else:
        text(args.env, report)
    return OK


def gather(queue) -> dict:
    import os
    import platform
    import shutil
    import sys

    import qme

    configuration = queue.configuration()
    hooks = os.environ.get("QME_HOOKS", "").split()
    try:
        executors = {name: sorted(queue.actions(name)) for name in queue.executor_names()}
    except Exception as exc:  # noqa: BLE001 - a broken plugin is what a report is for
        executors = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        spooled = [found.store for found in queue.spooled()]
        mine = queue.store_identity()
        spool = {
            "waiting": len(spooled),
            "for_this_store": sum(1 for store in spooled if store in (mine, None)),
        }
    except Exception as exc:  # noqa: BLE001
        spool = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        problems = queue.setting_problems()
    except Exception as exc:  # noqa: BLE001
        problems = [f"{type(exc).__name__}: {exc}"]
    return {
        "qme": qme.__version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "os": platform.platform(),
        "installed_at": os.path.dirname(os.path.abspath(qme.__file__)),
        "qme_on_path": shutil.which("qme"),
        "home": configuration["home"],
        "config_file": configuration["config_file"]
        + ("" if os.path.exists(configuration["config_file"]) else " (none)"),
        "store": queue.store_status(),
        "spool": spool,
        "shell": {
            "shell": os.environ.get("SHELL"),
            "hooks_loaded": hooks[0] if hooks else None,
            "session": os.environ.get("QME_SESSION"),
            "recording": (hooks[1:] == ["1"]) if hooks and os.environ.get("QME_SESSION") else None,
        },
        "executors": executors,
        "settings": configuration["settings"],
        "setting_problems": problems,
        "colors": {
            "NO_COLOR": os.environ.get("NO_COLOR"),
            "FORCE_COLOR": os.environ.get("FORCE_COLOR"),
        },
    }


def text(env, report: dict) -> None:
    from qme.cli.render import safe

    def line(name: str, value) -> None:
        label = f"{name}:" if name else ""
        env.out(f"{label:<19}{safe('' if value is None else str(value))}")

    store, spool, shell = report["store"], report["spool"], report["shell"]
    line("qme", report["qme"])
    line("python", f"{report['python']} ({report['python_executable']})")
    line("os", report["os"])
    line("installed at", report["installed_at"])
    line("qme on PATH", report["qme_on_path"] or "not found")
    line("home", report["home"])
    line("config file", report["config_file"])
    line("store", f"{store['kind']} {store['location']}")
    if store["opens"]:
        schema = "" if store["schema"] is None else f"schema {store['schema']}, "
        line(
            "",
            f"opens: yes, {schema}{store['tasks']} tasks, {store['running']} running, "
            f"{store['failed']} failed",
        )
    else:
        line("", f"opens: NO: {store['error']}")
    if "error" in spool:
        line("spool", spool["error"])
    else:
        line(
            "spool",
            f"{spool['waiting']} records waiting ({spool['for_this_store']} for this store)",
        )
    hooks = shell["hooks_loaded"]
    line("shell", shell["shell"])
    missing = "no (or qme doctor was not typed at this shell's prompt)"
    line("", f"hooks loaded: {hooks or missing}")
    if shell["session"]:
        recording = {True: "recording", False: "paused", None: "recording unknown"}
        line("", f"session: {shell['session']} ({recording[shell['recording']]})")
    else:
        line("", "session: none (qme on starts one)")
    executors = report["executors"]
    if "error" in executors:
        line("executors", executors["error"])
    else:
        line("executors", ", ".join(executors))
    for key in KEY_SETTINGS:
        setting = report["settings"].get(key)
        if setting:
            line(f"  {key}", f"{setting['value'] or '(empty)'}  [{setting['source']}]")
    for problem in report["setting_problems"]:
        line("problem", problem)
    colors = {k: v for k, v in report["colors"].items() if v is not None}
    line("colours", ", ".join(f"{k}={v}" for k, v in colors.items()) or "default")
