"""The layout is the pipeline: imports point one way, and nothing forms a cycle.

Every `import` in dsl/ counts: at module level, inside functions and under `TYPE_CHECKING`.
Layers, lowest first; a module imports its own layer or lower ones only:

    foundation (dsl.source, dsl.errors, dsl.pauses, dsl.records)  <  dsl.ir  <  dsl.syntax  <  dsl.torchlib
    <  dsl.plan  <  dsl.elaborate  <  dsl.build  <  dsl.tools, dsl.importer  <  dsl (the API)  <  dsl.lsp (the language server)  <  dsl.cli

and every module stays small: functions of at most 50 lines (docstrings aside), modules of
at most 500.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dsl"

LAYERS = (
    ("dsl.source", "dsl.errors", "dsl.pauses", "dsl.records"),
    ("dsl.ir",),
    ("dsl.syntax",),
    ("dsl.torchlib",),
    ("dsl.plan",),
    ("dsl.elaborate",),
    ("dsl.build",),
    ("dsl.tools", "dsl.importer"),
    ("dsl",),
    ("dsl.lsp",),
    ("dsl.cli",),
)
TORCH_FREE = ("dsl.source", "dsl.errors", "dsl.pauses", "dsl.records", "dsl.ir", "dsl.syntax")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module an `import` in the file names, wherever the statement stands."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from dsl import ir` names the module dsl.ir
                submodule = f"{node.module}.{alias.name}"
                yield (submodule if submodule in MODULES else node.module), node.lineno


def _layer(module: str) -> int:
    best = -1, -1  # (length of the matching prefix, layer)
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = len(prefix), rank
    return best[1]


def _dsl_imports(module: str) -> list[tuple[str, int]]:
    return [
        (name, line)
        for name, line in _imports(MODULES[module])
        if name in MODULES and name != module
    ]


def test_every_module_has_a_layer() -> None:
    assert all(_layer(m) >= 0 for m in MODULES)
    assert {
        "dsl.syntax.parse_net",
        "dsl.elaborate.resolve",
        "dsl.build.compile",
        "dsl.plan",
    } <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_pipeline(module: str) -> None:
    upward = [
        f"line {line}: {name}"
        for name, line in _dsl_imports(module)
        if _layer(name) > _layer(module)
    ]
    assert not upward, f"{module} imports a later stage: " + "; ".join(upward)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(TORCH_FREE)))
def test_syntax_and_below_never_import_torch(module: str) -> None:
    torch = [
        f"line {line}: {name}"
        for name, line in _imports(MODULES[module])
        if name.split(".")[0] == "torch"
    ]
    assert not torch, f"{module} imports torch: " + "; ".join(torch)


def test_nothing_imports_the_cli() -> None:
    users = [m for m in MODULES if any(name == "dsl.cli" for name, _ in _dsl_imports(m))]
    assert not users


def test_no_import_cycles() -> None:
    graph = {m: sorted({name for name, _ in _dsl_imports(m) if name != "dsl"}) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in graph[module]:
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [module, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_the_layer_test_sees_a_violation(tmp_path: Path) -> None:
    # The checks above read real import statements: one inside a function counts too.
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from dsl.build.compile import x\n")
    assert ("dsl.build.compile", 2) in list(_imports(source))


MAX_FUNCTION_LINES = 50
MAX_MODULE_LINES = 500


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A docstring explains; it does not count against the function's length."""
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return (first.end_lineno or first.lineno) - first.lineno + 1
    return 0


def _long_functions(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1 - _docstring_lines(node)
            if length > MAX_FUNCTION_LINES:
                yield f"{node.name} (line {node.lineno}): {length} lines"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_functions_are_short(module: str) -> None:
    long = list(_long_functions(MODULES[module]))
    assert not long, f"{module}: functions over {MAX_FUNCTION_LINES} lines: " + "; ".join(long)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module}: {lines} lines (at most {MAX_MODULE_LINES})"
