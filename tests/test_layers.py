"""The floors: every import (lazy ones inside functions included) goes down, never up, and no two
modules import each other, directly or around a loop. Read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# folder → import name, as setup.py maps them
PACKAGES = {
    "sagc": "sagc",
    "core": "sagc.core",
    "models": "sagc.models",
    "stream": "sagc.stream",
    "eval": "sagc.eval",
    "train": "sagc.train",
    "cli": "sagc.cli",
}
# each room and the rooms below it that it may import; top to bottom:
# cli → train → eval → stream → models → core (the package root only re-exports)
MAY_IMPORT = {
    "sagc.core": set(),
    "sagc.models": {"sagc.core"},
    "sagc.stream": {"sagc.core", "sagc.models"},
    "sagc.eval": {"sagc.core", "sagc.models", "sagc.stream"},
    "sagc.train": {"sagc.core", "sagc.models", "sagc.stream", "sagc.eval"},
    "sagc.cli": {"sagc.core", "sagc.models", "sagc.stream", "sagc.eval", "sagc.train"},
    "sagc": {"sagc.core", "sagc.models", "sagc.cli"},
}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The sagc modules ``name`` imports anywhere in its file (resolved to modules, not names)."""
    package = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def room(module: str) -> str:
    if module.endswith(".__main__"):  # an entry point (python -m ...) stands on the top floor
        return "sagc.cli"
    for package in sorted(MAY_IMPORT, key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            return package
    raise AssertionError(f"{module} belongs to no room")


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(name, path, known) for name, path in found.items()}


def test_imports_only_go_down():
    wrong = []
    for module, targets in graph().items():
        mine = room(module)
        for target in targets:
            theirs = room(target)
            if theirs != mine and theirs not in MAY_IMPORT[mine]:
                wrong.append(f"{module} imports {target} ({mine} may not import {theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_itself_around_a_loop():
    edges = {m: {t for t in ts if not (m.startswith(t + ".") and t in PACKAGES.values())} for m, ts in graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert not loops, "import loops: " + "; ".join(" ↔ ".join(loop) for loop in loops)


def test_the_test_sees_lazy_imports():
    found = modules()
    edges = imports("sagc.stream.stages", found["sagc.stream.stages"], set(found))
    assert "sagc.stream.cuda_stage" in edges  # imported inside make_stage, and still counted
