"""The rooms of qme point one way: read from the source, counting every import —
at the top of a module, inside a function (lazy, for start-up time) and under
TYPE_CHECKING — since each still says which room depends on which."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qme"

# Lower rooms first; a module may import its own room and the rooms before it.
ROOMS = [
    (
        "foundation",
        "qme.version qme.errors qme.record qme.text qme.console qme.origin qme.liveness "
        "qme.private qme.config qme.pending qme.task qme.redact qme.notify",
    ),
    ("store", "qme.store qme.transfer"),
    ("executors", "qme.executors"),
    ("recorder", "qme.recorder"),
    ("session", "qme.session"),
    ("api", "qme.api qme.exporters qme.main qme.exceptions qme"),
    ("front ends", "qme.cli qme.web qme.__main__"),
]
# What the front ends may use besides their own room: the public API and the
# foundation's plain values (errors, statuses, text helpers).
FRONT_END_USES = {
    *("qme", "qme.api", "qme.errors", "qme.task", "qme.console", "qme.text"),
    "qme.private",  # files only their owner may read (dashboard.log)
}
FRONT_ENDS = ("qme.cli", "qme.web", "qme.__main__")


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(known: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the qme modules it imports, anywhere in its source."""

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in known.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {resolve(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    whole = f"{node.module}.{alias.name}"
                    targets.add(resolve(whole) if whole in known else resolve(node.module))
        graph[name] = {t for t in targets if t and t != name}
    return graph


def room_of(module: str) -> int:
    """The room of the longest member that is module or a package holding it (the
    package `qme` itself holds nothing: each of its modules is placed)."""
    holders = [
        (len(member), rank)
        for rank, (_, members) in enumerate(ROOMS)
        for member in members.split()
        if module == member or (member != "qme" and module.startswith(member + "."))
    ]
    assert holders, f"{module} is in no room: add it to ROOMS"
    return max(holders)[1]


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle():
    found = cycle(imports(modules()))
    assert found is None, "import cycle: " + " -> ".join(found)


def test_lower_rooms_never_import_higher_ones():
    wrong = [
        f"{module} ({ROOMS[room_of(module)][0]}) imports {target} ({ROOMS[room_of(target)][0]})"
        for module, targets in imports(modules()).items()
        for target in targets
        if room_of(target) > room_of(module)
    ]
    assert wrong == []


def test_the_store_and_the_executors_do_not_know_each_other():
    def package(module: str) -> str:
        return module.split(".")[1] if "." in module else ""

    wrong = [
        f"{module} imports {target}"
        for module, targets in imports(modules()).items()
        for target in targets
        if {package(module), package(target)} == {"store", "executors"}
    ]
    assert wrong == []


def test_front_ends_go_through_the_queue():
    wrong = [
        f"{module} imports {target}"
        for module, targets in imports(modules()).items()
        if module.startswith(FRONT_ENDS)
        for target in targets
        if not target.startswith(FRONT_ENDS) and target not in FRONT_END_USES
    ]
    assert wrong == []


def test_the_checks_see_lazy_and_type_only_imports(tmp_path):
    """The graph counts an import inside a function and one under TYPE_CHECKING."""
    known = {"qme.a": tmp_path / "a.py", "qme.b": tmp_path / "b.py"}
    known["qme.a"].write_text("def f():\n    from qme.b import x\n")
    known["qme.b"].write_text("TYPE_CHECKING = False\nif TYPE_CHECKING:\n    import qme.a\n")
    graph = imports(known)
    assert graph == {"qme.a": {"qme.b"}, "qme.b": {"qme.a"}}
    assert cycle(graph) == ["qme.a", "qme.b", "qme.a"]


def room_map(package: Path = PACKAGE) -> str:
    """Each room, the rooms it imports and through which modules: Markdown rows
    (docs/architecture.md shows them for this tree and for an older one)."""
    graph = imports(modules(package))
    uses: dict[tuple[int, int], set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            rooms = room_of(module), room_of(target)
            if rooms[0] != rooms[1]:
                uses.setdefault(rooms, set()).add(f"{module} → {target}")
    rows = ["| room | imports | upward (wrong way) |", "|---|---|---|"]
    for rank, (name, _) in enumerate(ROOMS):
        below = sorted(ROOMS[t][0] for (f, t) in uses if f == rank and t < rank)
        above = sorted(e for (f, t), edges in uses.items() if f == rank and t > rank for e in edges)
        rows.append(f"| {name} | {', '.join(below) or '–'} | {', '.join(above) or '–'} |")
    found = cycle(graph)
    rows.append("")
    rows.append(f"cycle: {' → '.join(found) if found else 'none'}")
    return "\n".join(rows)


if __name__ == "__main__":  # python tests/test_layers.py [PACKAGE_DIR]
    import sys

    print(room_map(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE))
