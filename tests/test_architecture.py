"""The house: jaxaudio's layers, read from its own imports (module-level and function-level).

Imports point down the layers only, no module imports its way back to itself (no circles), the
library never imports ``studies`` or ``cli``, and ``report`` never imports study code. A
function-level import of jaxaudio's own modules is allowed only where it keeps a heavy optional
dependency lazy, and then carries a one-line reason (``# lazy: ...``) on the import line.
"""

from __future__ import annotations

import ast
import collections
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "jaxaudio"

#: Layers from the bottom up; a module may import its own layer or the layers below it.
LAYERS = (
    ("runtime",),
    ("dsp", "metrics"),
    ("data",),
    ("models",),
    ("training",),
    ("attacks", "labels", "explain"),
    ("audit", "recommender"),
    ("report",),
    ("studies",),
    ("cli",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
#: Top-level files allowed beside the packages.
TOP_LEVEL = {"__init__", "__main__"}


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


MODULES = _modules()


def _resolve(name: str):
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: pathlib.Path):
    """``(target module, line, in a function, source line)`` of every jaxaudio import."""
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.Lambda))
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[:len(package.split(".")) - (child.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                # ``from pkg import sub`` imports the submodule; ``from pkg import name`` the package
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                           for a in child.names]
            else:
                visit(child, inner)
                continue
            for target in targets:
                if target.split(".")[0] == "jaxaudio":
                    resolved = _resolve(target)
                    if resolved and resolved != name:
                        found.append((resolved, child.lineno, in_function,
                                      lines[child.lineno - 1]))
    visit(tree, False)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_sits_in_a_layer():
    loose = sorted(m for m in MODULES if m != "jaxaudio" and _layer(m) not in RANK
                   and m.split(".")[-1] not in TOP_LEVEL)
    assert loose == [], f"modules outside the layers {sorted(RANK)}: {loose}"


def test_imports_point_down_the_layers():
    upward = []
    for name, found in GRAPH.items():
        src = _layer(name)
        if src not in RANK:
            continue
        for target, line, _, _ in found:
            dst = _layer(target)
            if dst in RANK and RANK[dst] > RANK[src]:
                upward.append(f"{name}:{line} -> {target}")
    assert upward == [], "imports that run up a layer:\n" + "\n".join(upward)


def test_no_import_circles():
    edges = collections.defaultdict(set)
    for name, found in GRAPH.items():
        for target, *_ in found:
            # a package's __init__ re-exporting its own submodules is not a circle
            if not target.startswith(name + "."):
                edges[name].add(target)
    index, low, stack, on_stack, circles = {}, {}, [], set(), []
    counter = [0]

    def strongconnect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in list(MODULES):
        if v not in index:
            strongconnect(v)
    assert circles == [], f"import circles: {circles}"


def test_report_never_imports_study_code():
    bad = [f"{name}:{line} -> {target}" for name, found in GRAPH.items()
           if _layer(name) == "report" for target, line, _, _ in found
           if _layer(target) in ("studies", "cli")]
    assert bad == []


def test_function_level_internal_imports_say_why():
    silent = [f"{name}:{line}: {src.strip()}" for name, found in GRAPH.items()
              for target, line, in_function, src in found
              if in_function and "# lazy:" not in src]
    assert silent == [], ("function-level imports of jaxaudio's own modules without a "
                          "'# lazy: <reason>' comment:\n" + "\n".join(silent))


@pytest.mark.parametrize("layer", sorted(RANK))
def test_layer_is_a_package(layer):
    assert (PACKAGE / layer / "__init__.py").is_file()


def _private_uses(path: pathlib.Path):
    """``_name`` imported from, or read as an attribute of, another jaxaudio module."""
    tree = ast.parse(path.read_text())
    bound, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxaudio"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.name}:{node.lineno} imports {alias.name}")
                bound.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names
                         if a.name.startswith("jaxaudio"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                and node.value.id in bound):
            found.append(f"{path.name}:{node.lineno} reads {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = [use for path in MODULES.values() for use in _private_uses(path)]
    assert found == [], "private names used across modules:\n" + "\n".join(found)


def test_study_modules_stay_thin():
    """Every study module is at most 300 lines and its ``run()`` at most 40."""
    fat = []
    for path in (PACKAGE / "studies").glob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > 300:
            fat.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and node.name == "run":
                length = node.end_lineno - node.lineno + 1
                if length > 40:
                    fat.append(f"{path.name}: run() is {length} lines")
    assert fat == []
