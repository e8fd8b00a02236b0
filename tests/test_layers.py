"""The package's floors, read from the code: every ``import`` of an lnft module (at the top of a file or inside
a function: a lazy import is still a dependency) parsed by AST, no module imported to find out.

- No import circle anywhere in ``lnft/``: one would mean two modules that can only be understood together.
- The core (a run's definition, its sources, training, its result and the store) never reaches the analyses
  and the face (reports, plots, CLI, notebooks' plans, statistics...), directly or through another module.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "lnft"

# A run: its definition, where its data and model come from, training, its result, the store that keeps it.
CORE = {"errors", "constants", "hub", "fingerprints", "tasks", "taskspec", "sources", "data", "models", "components",
        "methods", "config", "result", "train", "store", "locks", "progress", "paths", "pool", "pooling", "derived"}
# What reads, plans, analyses and shows runs.
FACE = {"reports", "plots", "profiles", "cli", "plan", "decide", "experiments", "stats", "aggregate", "subsets", "sweep", "engine",
        "record", "changes", "fisher", "__main__", "lead", "revert", "curve", "bounds", "jackknife", "sequential",
        "evidence", "retention", "floors", "costs", "staleness", "ledger_check", "forest", "rate_check", "verdict_diff"}


def module_files(package: pathlib.Path = PACKAGE) -> dict[str, pathlib.Path]:
    """Dotted name inside the package (``"config"``, ``"sub.part"``; ``""`` the package itself) -> file."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: pathlib.Path, modules: set[str]) -> set[str]:
    """The package's modules that ``name`` (at ``path``) imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    found = set()

    def add(dotted: str, names=()):
        """``from X import a, b``: each of a, b that is a module of package X; X itself (the module holding
        the name, e.g. ``from .config import RunConfig``) if any is not."""
        holder = not names
        for alias in names:
            candidate = f"{dotted}.{alias}" if dotted else alias
            if candidate in modules:
                found.add(candidate)
            else:
                holder = True
        if holder:
            parts = dotted.split(".") if dotted else []
            while parts and ".".join(parts) not in modules:
                parts.pop()  # a name inside a module: the module
            found.add(".".join(parts))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                dotted = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and (node.module == "lnft" or node.module.startswith("lnft.")):
                dotted = node.module.removeprefix("lnft").lstrip(".")
            else:
                continue
            add(dotted, [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "lnft" or alias.name.startswith("lnft."):
                    add(alias.name.removeprefix("lnft").lstrip("."))
    return found - {name}


def import_graph(package: pathlib.Path = PACKAGE) -> dict[str, set[str]]:
    files = module_files(package)
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def reach(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module ``start`` imports, directly or not -> the module that imports it on the way."""
    seen, todo = {}, [start]
    while todo:
        node = todo.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt not in seen and nxt != start:
                seen[nxt] = node
                todo.append(nxt)
    return seen


def top(name: str) -> str:
    return name.split(".")[0]


def test_the_parser_sees_lazy_and_package_imports(tmp_path):
    """The reader itself: a function-level import counts, ``from . import x`` names module x, and a cycle is
    named; on a package made up here, so the test cannot pass by reading nothing."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "c.py").write_text("from .sub import d\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "d.py").write_text("import os\nfrom ..a import x\n")
    graph = import_graph(pkg)
    assert graph == {"": set(), "a": {"b"}, "b": {"c"}, "c": {"sub.d"}, "sub": set(), "sub.d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "sub.d", "a"]
    (pkg / "sub" / "d.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg)) is None


def test_no_import_circle_in_lnft():
    graph = import_graph()
    assert {"config", "sources", "data", "models", "train", "store", "reports"} <= set(graph)
    assert graph["config"] >= {"sources", "constants"}  # the reader sees lnft's own imports
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(f"lnft.{m}" if m else "lnft" for m in cycle)


@pytest.mark.parametrize("core", sorted(CORE))
def test_the_core_never_imports_the_analyses(core):
    graph = import_graph()
    names = [m for m in graph if top(m) == core]
    if core not in ("store",):  # store may become a package of parts (issue 22): any form counts
        assert names, f"lnft.{core} is gone: update CORE in this test"
    for name in names:
        via = reach(graph, name)
        face = sorted(m for m in via if top(m) in FACE)
        if face:
            chain, node = [face[0]], face[0]
            while via[node] != name:
                node = via[node]
                chain.append(node)
            raise AssertionError(f"lnft.{name} reaches lnft.{face[0]} (the analyses): "
                                 + " -> ".join(f"lnft.{m}" for m in [name, *reversed(chain)]))


def test_every_module_is_placed():
    """A new module is either core or face: say which, here."""
    graph = import_graph()
    unplaced = sorted(m for m in graph if m and top(m) not in CORE | FACE)
    assert not unplaced, f"modules in neither CORE nor FACE: {unplaced}"
