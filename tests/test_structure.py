"""The shape of the code (docs/architecture.md): small files, short functions, no import circles,
constants defined once. Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
import os
from collections import defaultdict

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "unet_plugin")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, str]:
    """Module name (``unet_plugin.ml.train.loop``; a package by its own name) → file."""
    out = {}
    for folder, _dirs, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(folder, f)
    return out


def imports_of(name: str, path: str, known: dict) -> set[str]:
    """The plugin's modules that ``name`` imports anywhere in its file, inside functions too.

    ``from .pkg import x`` counts as an import of ``pkg.x`` where that is a module, else of
    ``pkg`` (its ``__init__``, which runs either way); every package a module lives in is
    imported before it, so ``a.b.c`` also imports ``a.b`` — found by the walk over parents."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    is_pkg = path.endswith("__init__.py")
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base[: len(base) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "unet_plugin":
                parts = node.module.split(".")
            else:
                continue
            mod = ".".join(parts)
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if sub in known else mod)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    """Module → the plugin's modules it imports; importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``
    first, so those count too — except the packages the importer lives in (already being imported)."""
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    for importer, targets in graph.items():
        own = {".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 2)}
        for target in list(targets):
            parts = target.split(".")
            targets.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts)))
                           if p in known and p not in own)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and modules importing themselves."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_file_is_longer_than_400_lines():
    long = {os.path.relpath(p, ROOT): n for p in modules().values()
            if (n := sum(1 for _ in open(p, encoding="utf-8"))) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in modules().values():
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 80 lines: " + "; ".join(long)


def test_no_import_circles_also_through_imports_inside_functions():
    graph = import_graph()
    found = cycles(graph)
    assert not found, f"import circles: {found}"


def test_a_module_never_imports_its_own_package_init():
    """Within a package, modules import their siblings directly: the ``__init__`` only re-exports."""
    known = modules()
    offenders = []
    for name, path in known.items():
        if path.endswith("__init__.py"):
            continue
        package = name.rsplit(".", 1)[0]
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
                offenders += [f"{name}: from . import {a.name}" for a in node.names if f"{package}.{a.name}" not in known]
    assert not offenders, offenders


def test_package_inits_only_re_export():
    """Each ``__init__`` holds its docstring, imports and ``__all__`` — no code of its own (``ml``'s
    start-up guard, which must run before torch loads, is the one exception)."""
    offenders = []
    for name, path in modules().items():
        if not path.endswith("__init__.py") or name in ("unet_plugin", "unet_plugin.ml"):
            continue
        for node in ast.parse(open(path, encoding="utf-8").read()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue
            if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["__all__"]:
                continue
            offenders.append(f"{name}:{node.lineno}")
    assert not offenders, offenders


def test_constants_are_defined_once():
    """An UPPER_CASE name bound to a literal in two modules is one constant written twice (the ignore
    label 255 was in seven files): one module defines it, the others import it."""
    where = defaultdict(list)
    for name, path in modules().items():
        for node in ast.parse(open(path, encoding="utf-8").read()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                key = node.targets[0].id
                if key.isupper() and key != "__all__" and isinstance(node.value, (ast.Constant, ast.Tuple)):
                    where[key].append(name)
    twice = {k: v for k, v in where.items() if len(v) > 1}
    assert not twice, f"constants defined in several modules: {twice}"


def test_the_label_codes_are_defined_in_one_module():
    """255 as a label or nodata code is named in core/codes.py; no other module assigns 255 to a name."""
    offenders = []
    for name, path in modules().items():
        if name.endswith("core.codes"):
            continue
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value == 255 \
                    and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
                offenders.append(f"{name}:{node.lineno}")
    assert not offenders, offenders


def test_the_checker_sees_a_circle_through_a_function_level_import(tmp_path):
    """The circle check itself: a module importing another inside a function, which imports it back, is found."""
    graph = {"a": {"b"}, "b": {"a"}, "c": set()}
    assert cycles(graph) == [["a", "b"]]
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from .other import g\n    return g\n")
    assert imports_of("unet_plugin.core.m", str(src), {"unet_plugin.core.other": "", "unet_plugin.core.m": ""}) \
        == {"unet_plugin.core.other"}
