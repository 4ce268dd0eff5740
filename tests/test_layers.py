"""The floors: every import (lazy ones inside functions included) goes down, never up, and no two
modules import each other, directly or around a loop. Read from the source with ``ast``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_dirs() -> dict[str, str]:
    """setup.py's ``PACKAGES``: import name → folder, read from its source."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PACKAGES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no PACKAGES table")


# folder → import name, as setup.py maps them (package data folders hold no modules)
PACKAGES = {folder: package for package, folder in package_dirs().items()}
_STREAM = ["sagc.stream.media", "sagc.stream.enhance", "sagc.stream.run", "sagc.stream.apps"]
_BELOW_STREAM = ["sagc.core", "sagc.ops", "sagc.models"]
# each room and the rooms below it that it may import; top to bottom: cli → train → eval →
# stream (apps → run → enhance → media) → models → ops → core (the package root only re-exports)
MAY_IMPORT = {
    "sagc.core": set(),
    "sagc.ops": {"sagc.core"},
    "sagc.models": {"sagc.core", "sagc.ops"},
    "sagc.stream": set(),
    **{floor: set(_BELOW_STREAM + _STREAM[:index]) for index, floor in enumerate(_STREAM)},
    "sagc.eval": set(_BELOW_STREAM + _STREAM),
    "sagc.train": set(_BELOW_STREAM + _STREAM) | {"sagc.eval"},
    "sagc.cli": set(_BELOW_STREAM + _STREAM) | {"sagc.eval", "sagc.train"},
    "sagc": {"sagc.core", "sagc.models", "sagc.cli"},
}
MAX_LINES = 400


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
    edges = imports("sagc.stream.enhance.stages", found["sagc.stream.enhance.stages"], set(found))
    assert "sagc.stream.enhance.cuda_stage" in edges  # imported inside make_stage, and still counted


def test_every_package_folder_has_a_room():
    assert set(PACKAGES.values()) - {"sagc.weights"} <= set(MAY_IMPORT)
    assert {"sagc.ops", *_STREAM} <= set(PACKAGES.values())


def test_no_product_module_is_over_the_limit():
    lines = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    long = {name: count for name, count in lines.items() if count > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_readme_maps_every_folder_as_setup_py_does():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([\w/]+)/` \| `(sagc[\w.]*)` \|", readme, flags=re.M))
    assert rows == {folder: package for package, folder in package_dirs().items() if package != "sagc.weights"}
