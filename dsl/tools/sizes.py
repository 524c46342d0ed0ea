"""The sizes a net's symbolic input dims (B, H, W) stand for: given as a shape
(`--input 1x3x224x224`), as `sizes=`, or chosen to fit the network.

Shapes are checked with small representative sizes (`dsl.torchlib.symbols`); a network
that needs larger inputs (an ImageNet net whose pools leave nothing of 32x48) is checked
again with ImageNet sizes, and when that fails too the error says which dims to set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsl import ir
from dsl.build.resolve import resolve
from dsl.elaborate.resolve import pick_net
from dsl.errors import ArgumentError, DSLError, ShapeError
from dsl.plan import Resolved
from dsl.records import record
from dsl.source import Span
from dsl.syntax.loader import Definition, Library, load
from dsl.torchlib.symbols import Symbols

LARGE_SIZES = (224, 256)  # the second try's spatial sizes (distinct, so H and W stay apart)

Spec = str | Path | ir.SpecFile


@record
class DeclaredInput:
    """A net's first `input` statement (a derived net's: its base's) and, for each of its
    dimensions, the symbol written there (None for a number or a net parameter)."""

    node: ir.Input
    symbols: list[str | None]


def declared_input(spec: Spec, net: str | None = None) -> DeclaredInput | None:
    """The first input of `net`, following a derived net to the net it derives from."""
    spec_file, path = load(spec)
    unit = Library(path.parent if path else Path.cwd()).unit(spec_file, path)
    found: Definition | None = Definition(pick_net(spec_file, net), unit)
    seen: set[int] = set()
    while found is not None and id(found.node) not in seen:
        node = found.node
        seen.add(id(node))
        body = node.body.body if isinstance(node.body, ir.Container) else node.body
        first = next((s for s in body if isinstance(s, ir.Input)), None)
        if first is not None:
            return _with_symbols(first, {p.name for p in node.params})
        found = _base_of(found)
    return None


def _base_of(definition: Definition) -> Definition | None:
    """The net a derived net derives from, where the file that defines it can see it."""
    base = definition.node.base
    name = ir.dotted(base.func if isinstance(base, ir.Call) else base)
    return definition.unit.names.get(name) if name is not None else None


def _with_symbols(node: ir.Input, params: set[str]) -> DeclaredInput:
    shape = node.shape or []
    symbols = [e.id if isinstance(e, ir.Name) and e.id not in params else None for e in shape]
    return DeclaredInput(node, symbols)


def sizes_for_input(spec: Spec, shape: tuple[int, ...], net: str | None = None) -> dict[str, int]:
    """The size of each symbol of the first input, read from `shape` (`--input`)."""
    declared = declared_input(spec, net)
    if declared is None or not declared.symbols:
        raise ArgumentError(
            "--input needs a net whose first input declares its shape",
            _file_span(spec),
            hint="write the shape at the input, e.g. 'input x: [B, 3, H, W]'",
        )
    if len(shape) != len(declared.symbols):
        raise ShapeError(
            f"--input gives {len(shape)} dimensions, but input '{declared.node.input}' has {len(declared.symbols)}",
            declared.node.span,
        )
    sizes: dict[str, int] = {}
    for symbol, size in zip(declared.symbols, shape):
        if symbol is not None and sizes.setdefault(symbol, size) != size:
            raise ShapeError(
                f"--input gives two sizes ({sizes[symbol]} and {size}) for '{symbol}'",
                declared.node.span,
            )
    return sizes


def resolve_for_input(
    spec: Spec, params: dict[str, Any], shape: tuple[int, ...] | None, net: str | None = None
) -> Resolved:
    """Resolve a spec; `shape` (the first input's concrete shape) sets its symbolic dims."""
    if shape is None:
        return resolve_fitting(spec, net=net, params=params)
    resolved = resolve(spec, net=net, params=params, sizes=sizes_for_input(spec, shape, net))
    name, meta = resolved.inputs[0]
    for position, (want, have) in enumerate(zip(shape, meta.shape)):
        if want != have:
            raise ShapeError(
                f"--input asks for size {want} in dimension {position} of '{name}', but the spec fixes it at {have}",
                _input_span(spec, net),
                hint="set the net parameter that decides it with --set, or give that size",
            )
    return resolved


def resolve_fitting(
    spec: Spec,
    *,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
) -> Resolved:
    """`resolve`; without `sizes`, a shape error is checked again with ImageNet-sized
    spatial dims, and if those fail too the first error names the dims to set."""
    try:
        return resolve(spec, net=net, params=params, sizes=sizes)
    except ShapeError as first:
        if sizes:
            raise
        declared = declared_input(spec, net)
        spatial = _spatial_symbols(declared)
        if declared is None or not spatial:
            raise
        large = {s: LARGE_SIZES[i % len(LARGE_SIZES)] for i, s in enumerate(spatial)}
        try:
            return resolve(spec, net=net, params=params, sizes=large)
        except DSLError as second:
            if second.span != first.span:  # a mistake at any size is reported as it is
                first.hint = _hint_sizes(first.hint, declared, large)
            raise first from None


def _spatial_symbols(declared: DeclaredInput | None) -> list[str]:
    if declared is None:
        return []
    return list(dict.fromkeys(s for s in declared.symbols[1:] if s is not None))


def _hint_sizes(hint: str | None, declared: DeclaredInput, large: dict[str, int]) -> str:
    symbols = Symbols()
    small = {s: symbols.size(s, i) for i, s in enumerate(declared.symbols) if s is not None}
    checked = ", ".join(f"{k}={v}" for k, v in small.items() if k in large)
    written = declared.node.shape or []
    example = "x".join(
        str(large.get(s, small.get(s))) if s is not None else _number(e)
        for s, e in zip(declared.symbols, written)
    )
    advice = (
        f"shapes were checked with {checked} (and {', '.join(f'{k}={v}' for k, v in large.items())}); "
        f"if '{declared.node.input}' needs other sizes, give them: --input {example}, or "
        f"sizes={{{', '.join(repr(k) + ': ...' for k in large)}}} in Python"
    )
    return f"{hint}\n  hint: {advice}" if hint else advice


def _number(expr: ir.Expr) -> str:
    return str(expr.value) if isinstance(expr, ir.Const) else "N"


def _file_span(spec: Spec) -> Span | None:
    return Span(file=str(spec), line=0, col=0) if isinstance(spec, Path) else None


def _input_span(spec: Spec, net: str | None) -> Span | None:
    declared = declared_input(spec, net)
    return declared.node.span if declared is not None else _file_span(spec)
