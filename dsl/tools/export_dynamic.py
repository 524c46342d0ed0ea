"""The spec's symbolic sizes as the export's dynamic dimensions.

Each symbol of the inputs (`B`, `H`, `W`, `T`) becomes one `torch.export.Dim` named after
it, shared by every input dimension the spec writes it at. Its range is derived from the
network on the meta device (`derive`): the smallest size the net runs at, the step it
needs (a size divisible by 16 where a cat without padding needs it), and the size it is
traced at (one where no intermediate that moves with the symbol is 1, since torch
specialises on 1). torch then checks the range while it exports; what it still asks for
(`Suggested fixes`) is applied, and what it cannot keep dynamic is a located error
(`export_constraints`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from dsl.errors import ArgumentError
from dsl.plan import Resolved
from dsl.records import field, record
from dsl.source import Span

# `dynamic=` as the API takes it: True (every symbol), False (none), names, or names with
# their stated ranges (min, max), either end None.
Range = tuple[int | None, int | None]
Dynamic = bool | str | Sequence[str] | Mapping[str, Range | None] | None


@record
class SymbolRange:
    """One dynamic symbol: the sizes the export accepts and the size it is traced at."""

    name: str
    representative: int  # the size shapes were checked with
    trace: int  # the size the export is traced at
    min: int
    max: int | None = None
    multiple: int = 1
    safe_min: int = 1  # no intermediate that moves with the symbol is 1 from here on
    stated: bool = False  # the user gave the range
    batch: bool = False  # written first in an input: any size from 1

    def text(self) -> str:
        top = "inf" if self.max is None else str(self.max)
        step = f" (multiple of {self.multiple})" if self.multiple > 1 else ""
        return f"{self.name} in [{self.min}, {top}]{step}"

    def valid(self, size: int) -> bool:
        """Whether the export accepts `size` for this symbol."""
        return (
            size >= self.min
            and (self.max is None or size <= self.max)
            and size % self.multiple == 0
        )


@record
class DynamicPlan:
    """Which input dimensions are dynamic, as which symbol, over which range."""

    names: list[str]  # the inputs' names
    where: list[list[str | None]]  # each input's dimensions: the symbol there, None if static
    shapes: list[tuple[int, ...]]  # each input's representative shape
    dtypes: list[torch.dtype]
    ranges: dict[str, SymbolRange] = field(default_factory=dict)  # the dynamic symbols
    span: Span | None = None  # the input line, for errors
    symbol_spans: dict[str, Span] = field(default_factory=dict)  # where each symbol is written
    root: Any = None  # the plan's module tree, for where a size is fixed

    def sizes(self, chosen: Mapping[str, int] | None = None) -> dict[str, int]:
        """Every dynamic symbol's trace size, overridden by `chosen`."""
        return {s: r.trace for s, r in self.ranges.items()} | dict(chosen or {})

    def input_shapes(self, sizes: Mapping[str, int]) -> list[tuple[int, ...]]:
        return [
            tuple(sizes.get(s, n) if s else n for s, n in zip(dims, shape))
            for dims, shape in zip(self.where, self.shapes)
        ]

    def inputs(self, sizes: Mapping[str, int] | None = None, seed: int = 0) -> tuple[Any, ...]:
        """Example inputs at `sizes` (default: the trace sizes)."""
        shapes = self.input_shapes(self.sizes(sizes))
        return example_tensors(shapes, self.dtypes, seed)

    def dynamic_shapes(self) -> tuple[dict[int, Any], ...]:
        """`dynamic_shapes` for torch.export: one Dim per symbol, shared, with its range."""
        dims = {name: _torch_dim(r) for name, r in self.ranges.items()}
        return tuple(
            {i: dims[s] for i, s in enumerate(symbols) if s in dims} for symbols in self.where
        )

    def located(self, input_name: str, index: int) -> str | None:
        """The symbol at dimension `index` of input `input_name`."""
        if input_name not in self.names:
            return None
        dims = self.where[self.names.index(input_name)]
        return dims[index] if index < len(dims) else None


def _torch_dim(r: SymbolRange) -> Any:
    from torch.export import Dim

    if r.multiple == 1:
        return Dim(r.name, min=r.min, max=r.max)
    top = None if r.max is None else r.max // r.multiple
    return r.multiple * Dim(f"_{r.name}", min=math.ceil(r.min / r.multiple), max=top)


def example_tensors(
    shapes: Sequence[tuple[int, ...]], dtypes: Sequence[torch.dtype], seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Inputs of these shapes: random floats, zeros as ids (valid for any vocabulary)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for shape, dtype in zip(shapes, dtypes):
        if dtype.is_floating_point:
            out.append(torch.randn(shape, dtype=dtype, generator=gen))
        elif dtype == torch.bool:
            out.append(torch.ones(shape, dtype=torch.bool))
        else:
            out.append(torch.zeros(shape, dtype=dtype))
    return tuple(out)


def example_inputs(resolved: Resolved, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs of the representative shapes the spec was checked with."""
    metas = [meta for _, meta in resolved.inputs]
    return example_tensors([tuple(m.shape) for m in metas], [m.dtype for m in metas], seed)


def input_symbols(resolved: Resolved) -> list[list[str | None]]:
    """For each input, each dimension's symbol (None where the spec wrote a number)."""
    from dsl.tools.symbolic import _symbol_positions  # the summary's reading of the inputs

    metas = [meta for _, meta in resolved.inputs]
    return _symbol_positions(metas, resolved.symbols) or [[None] * m.dim() for m in metas]


def chosen_ranges(dynamic: Dynamic, symbols: list[str]) -> dict[str, Range]:
    """`dynamic=` as {symbol: stated range}; names no input declares are refused."""
    if dynamic is None or dynamic is True:
        return {s: (None, None) for s in symbols}
    if dynamic is False:
        return {}
    if isinstance(dynamic, str):
        return chosen_ranges(parse_dynamic(dynamic), symbols)
    if isinstance(dynamic, Mapping):
        chosen = {name: tuple(r) if r else (None, None) for name, r in dynamic.items()}
    else:
        chosen = {name: (None, None) for name in dynamic}
    for name in chosen:
        if name not in symbols:
            raise ArgumentError(
                f"dynamic names '{name}', which no input declares as a symbolic size",
                hint=f"the inputs' symbols: {', '.join(symbols) or 'none (every size is a number)'}",
            )
    return chosen  # type: ignore[return-value]


def parse_dynamic(text: str) -> dict[str, Range]:
    """`B,T` or `B,H:64..512,T:..1024` (`--dynamic`): symbols with optional ranges."""
    out: dict[str, Range] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, bounds = item.partition(":")
        low, sep, high = bounds.partition("..")
        numbers = [low.strip(), high.strip()]
        if (
            not name.strip().isidentifier()
            or (bounds and not sep)
            or not all(n.isdigit() or not n for n in numbers)
        ):
            raise ArgumentError(
                f"cannot read '{item}' in --dynamic",
                hint="give symbols, each with an optional range: B,T or B,H:64..512,T:..1024",
            )
        out[name.strip()] = (int(low) if low.strip() else None, int(high) if high.strip() else None)
    return out


# ============================================================================ deriving ranges


def plan_dynamic(resolved: Resolved, dynamic: Dynamic, spec: Any = None) -> DynamicPlan:
    """The plan for `dynamic=`: the chosen symbols, each with the range the network needs;
    `spec` (default: the file the net was read from) locates the errors."""
    where = input_symbols(resolved)
    symbols = list(dict.fromkeys(s for dims in where for s in dims if s is not None))
    chosen = chosen_ranges(dynamic, symbols)
    plan = DynamicPlan(
        names=[name for name, _ in resolved.inputs],
        where=[[s if s in chosen else None for s in dims] for dims in where],
        shapes=[tuple(meta.shape) for _, meta in resolved.inputs],
        dtypes=[meta.dtype for _, meta in resolved.inputs],
    )
    plan.span, plan.symbol_spans = input_spans(resolved, spec)
    plan.root = resolved.root
    if chosen:
        from dsl.tools.measure import meta_model

        reps = {name: resolved.symbols.sizes[name] for name in chosen}
        metas = [meta for _, meta in resolved.inputs]
        probe = _Probe(meta_model(resolved), metas, plan.where, reps)
        for name, stated in chosen.items():
            batch = any(dims and dims[0] == name for dims in plan.where)
            plan.ranges[name] = probe.derive(name, reps[name], batch, stated)
    return plan


class _Probe:
    """Runs the meta model with one symbol changed, the others at their representative sizes."""

    def __init__(
        self, model: Any, metas: list[torch.Tensor], where: Any, sizes: dict[str, int]
    ) -> None:
        self.model, self.metas, self.where, self.sizes = model, metas, where, sizes
        self.moving: list[tuple[int, int]] = []  # (module id, dim) that move with the symbol

    def run(self, name: str, size: int) -> dict[int, tuple[int, ...]] | None:
        from dsl.tools.symbolic import _run  # the summary's meta run with other sizes

        return _run(self.model, self.metas, self.where, {**self.sizes, name: size})

    def safe(self, name: str, size: int) -> bool:
        shapes = self.run(name, size)
        if shapes is None:
            return False
        return all(
            key not in shapes or i >= len(shapes[key]) or shapes[key][i] != 1
            for key, i in self.moving
        )

    def derive(self, name: str, rep: int, batch: bool, stated: Range) -> SymbolRange:
        """A batch symbol takes any size from 1; another one the sizes from where no
        intermediate that moves with it is 1, in the steps the net runs at."""
        low, high = stated
        if batch:
            return SymbolRange(name, rep, rep, low or 1, high, stated=low is not None, batch=True)
        step = self.step(name, rep)
        ref, doubled = self.run(name, rep), self.run(name, 2 * rep)
        if ref is None or doubled is None:  # the net does not run on meta here: torch decides
            return SymbolRange(name, rep, rep, low or 1, high, stated=low is not None)
        self.moving = [
            (key, i)
            for key, shape in ref.items()
            if key in doubled and len(doubled[key]) == len(shape)
            for i, n in enumerate(shape)
            if doubled[key][i] != n
        ]
        k = rep // step
        if self.safe(name, rep):
            safe = step * _first(lambda j: self.safe(name, j * step), 1, k)
        else:
            safe = step * _first(lambda j: self.safe(name, j * step), k, 8 * k)
        result = SymbolRange(name, rep, rep, low or safe, high, step, safe, low is not None)
        result.trace = _at_least(result, max(rep, safe))
        if not result.valid(result.trace):
            result.trace = _at_least(result, result.min)
        return result

    def step(self, name: str, rep: int) -> int:
        """The step between sizes the net runs at, where it is not 1 (a cat without padding)."""
        if self.run(name, rep + 1) is not None:
            return 1
        for d in range(2, rep + 1):
            if rep % d == 0 and self.run(name, rep + d) is not None:
                return d
        return 1


def _first(pred: Any, lo: int, hi: int) -> int:
    """The smallest k in [lo, hi] where `pred` holds (it holds from there on); hi if none."""
    lo = max(lo, 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def _at_least(r: SymbolRange, size: int) -> int:
    """The smallest size from `size` on that is a multiple of the step."""
    return -(-size // r.multiple) * r.multiple


def input_spans(resolved: Resolved, spec: Any = None) -> tuple[Span | None, dict[str, Span]]:
    """The span of the net's first `input` line and of each symbol written there (for errors
    about their sizes); the net's own span where the spec cannot be read again."""
    from dsl.errors import DSLError
    from dsl.tools.sizes import declared_input

    root = getattr(resolved.root, "span", None)
    if spec is None and root and root.file and Path(root.file).is_file():
        spec = Path(root.file)
    if spec is None:
        return root, {}
    try:
        declared = declared_input(spec, resolved.name)
    except DSLError:
        return root, {}
    if declared is None:
        return root, {}
    written = declared.node.shape or []
    spans = {s: e.span for s, e in zip(declared.symbols, written) if s is not None and e.span}
    return declared.node.span, spans
