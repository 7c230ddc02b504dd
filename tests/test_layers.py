"""The folders are the layers: every import runs down the layer order and no two modules import each other.

The order (README, "Where things are"): the base modules (settings, errors, records, files,
stats) -> ``rust`` -> ``share`` -> ``store`` -> ``model`` -> ``fix`` -> ``learn`` -> ``eval`` ->
``cli`` and ``lsp_server``. A module may import its own layer and the ones before it; the
evaluation is a leaf that only ``cli`` imports; ``learner`` never imports ``lsp_server`` except
``cli`` (for ``serve``). Every import counts, including the ones deferred into functions and
the ones made only for type checking, since each of them is a dependency a reader must follow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("learner", "lsp_server")

#: Layer rank of each top-level part of the project (a module's rank is that of its longest prefix).
LAYERS: dict[str, int] = {
    "learner": 0,  # __init__ (the version), config, errors, progress, files, records, stats
    "learner.rust": 1,
    "learner.share": 2,
    "learner.store": 3,
    "learner.model": 4,
    "learner.fix": 5,
    "learner.learn": 6,
    "learner.eval": 7,
    "learner.cli": 8,
    "learner.__main__": 8,
    "lsp_server": 8,
}
#: Imports allowed in spite of the ranks: the command line starts the server.
ALLOWED_UPWARD = {("learner.cli", "lsp_server")}
#: Who may import the evaluation package (it is a leaf of the production code).
EVAL_IMPORTERS = ("learner.eval", "learner.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """Every project module ``name`` imports, with the line: ``from a.b import c`` is ``a.b.c`` if that is a module."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in known else base), node.lineno


def layer_of(module: str) -> tuple[str, int]:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return best, LAYERS[best]


def import_graph() -> dict[str, dict[str, int]]:
    modules = project_modules()
    known = set(modules)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        for target, line in imported_modules(name, path, known):
            if target != name:
                edges.setdefault(target, line)
    return graph


def test_every_import_runs_down_the_layer_order() -> None:
    problems = []
    for module, edges in import_graph().items():
        part, rank = layer_of(module)
        for target, line in edges.items():
            target_part, target_rank = layer_of(target)
            if target_rank > rank and (part, target_part) not in ALLOWED_UPWARD:
                problems.append(f"{module}:{line} imports {target} ({target_part} is above {part})")
    assert not problems, "\n".join(problems)


def test_only_the_command_line_imports_the_evaluation() -> None:
    problems = [
        f"{module}:{line} imports {target}"
        for module, edges in import_graph().items()
        for target, line in edges.items()
        if layer_of(target)[0] == "learner.eval" and not module.startswith(EVAL_IMPORTERS)
    ]
    assert not problems, "\n".join(problems)


def test_the_learner_imports_the_server_only_to_serve() -> None:
    problems = [
        f"{module}:{line} imports {target}"
        for module, edges in import_graph().items()
        for target, line in edges.items()
        if module.startswith("learner") and target.startswith("lsp_server") and not module.startswith("learner.cli")
    ]
    assert not problems, "\n".join(problems)


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle of ``graph`` (a package importing its own submodules counts as no edge back)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in graph.get(node, {}):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_two_modules_import_each_other() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None


@pytest.mark.parametrize(
    ("module", "target", "allowed"),
    [("learner.fix.pipeline", "learner.rust.crate", True), ("learner.rust.crate", "learner.fix.router", False)],
)
def test_layer_ranks_order_the_folders(module: str, target: str, allowed: bool) -> None:
    assert (layer_of(target)[1] <= layer_of(module)[1]) is allowed


MUTABLE_CALLS = {"dict", "list", "set", "WeakKeyDictionary", "WeakValueDictionary", "Lock", "RLock", "defaultdict"}


def module_level_mutables(path: Path) -> Iterator[str]:
    """Module-level names bound to a mutable container or a lock (state that outlives a call)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if value is None:
            continue
        mutable = isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp) or (
            isinstance(value, ast.Call)
            and (getattr(value.func, "id", None) in MUTABLE_CALLS or getattr(value.func, "attr", None) in MUTABLE_CALLS)
        )
        if mutable:
            for target in targets:
                name = getattr(target, "id", "?")
                if not name.isupper() and name != "__all__":
                    yield f"{path.relative_to(ROOT)}:{node.lineno} {name}"


def test_no_module_level_mutable_state() -> None:
    """Constants are UPPER_CASE (and never mutated); anything else that holds state lives on an object."""
    found = [hit for path in project_modules().values() for hit in module_level_mutables(path)]
    assert not found, "\n".join(found)
