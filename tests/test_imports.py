"""No import cycles among longlive_cli's modules, counting every import statement in a file: module level,
inside functions and under ``TYPE_CHECKING`` alike (issue 21 item 4)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "longlive_cli"


def package_modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, from ``__init__.py``)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``path`` (module ``name``) imports anywhere in the file, relative imports
    resolved; ``from X import Y`` counts ``X.Y`` when that is a module, else ``X``. Importing ``a.b.c`` also
    runs the packages ``a`` and ``a.b``, so those count too, except the importer's own enclosing packages
    (already running when it runs)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]  # where a level-1 import starts
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                child = f"{module}.{alias.name}"
                targets.add(child if child in modules else module)
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))}
    found = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            found.add(".".join(parts[:i]))
    return {m for m in found if m in modules and m != name and m not in ancestors}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(cycles)


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {m: imported_modules(m, p, modules) for m, p in modules.items()}


def test_no_import_cycles_among_the_package_modules():
    graph = import_graph()
    cycles = import_cycles(graph)
    described = [" / ".join(f"{m} -> {', '.join(sorted(graph[m] & set(c)))}" for m in c) for c in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(described)


def test_the_cycle_finder_sees_function_level_and_type_checking_imports(tmp_path):
    # The guard must fail on a cycle closed by an import inside a function or under TYPE_CHECKING.
    pkg = tmp_path / "longlive_cli"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\n"
    )
    (pkg / "c.py").write_text("from . import a\n")
    modules = {
        "longlive_cli": pkg / "__init__.py",
        "longlive_cli.sub": pkg / "sub" / "__init__.py",
        "longlive_cli.a": pkg / "a.py",
        "longlive_cli.sub.b": pkg / "sub" / "b.py",
        "longlive_cli.c": pkg / "c.py",
    }
    graph = {m: imported_modules(m, p, modules) for m, p in modules.items()}
    assert graph["longlive_cli.a"] == {"longlive_cli.sub", "longlive_cli.sub.b"}
    assert graph["longlive_cli.c"] == {"longlive_cli.a"}
    assert import_cycles(graph) == [["longlive_cli.a", "longlive_cli.sub.b"]]


#: Modules the model layer (``longlive_cli.models``) must not import: the stages built on top of it.
STAGES = {"text", "pipeline", "samplers", "decoders", "schedule", "api", "cli", "batch", "progress"}
STAGES |= {"storyboard", "plans", "latents", "quantize", "reference", "live", "stream", "bench"}


def test_the_model_layer_imports_no_stage_anywhere_in_its_files():
    for module, imported in import_graph().items():
        if module.startswith("longlive_cli.models"):
            stages = sorted(n for n in imported if n.split(".")[1] in STAGES)
            assert not stages, f"{module} imports the stage(s) {', '.join(stages)}"
