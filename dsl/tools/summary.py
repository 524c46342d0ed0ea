"""`dsl summary`: a table of a network's modules, shapes, parameters and FLOPs.

Everything is measured on the meta device: the model is compiled there (no weights are
allocated, so a 175B-parameter spec summarises in seconds), run once on meta inputs with a
forward hook on every module (output shapes, activation sizes) and under torch's own
`FlopCounterMode` (FLOPs per module, matmuls and attention included).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dsl import ir
from dsl.build.resolve import resolve
from dsl.errors import ArgumentError, ShapeError
from dsl.plan import (
    AliasSpec,
    ContainerSpec,
    DerivedSpec,
    GraphSpec,
    LeafSpec,
    ModuleSpec,
    ReplaceOp,
    Resolved,
    TensorSpec,
)
from dsl.source import Span
from dsl.torchlib.shapes import Symbols

# ============================================================================ preparing a meta model


def parse_shape(text: str) -> tuple[int, ...]:
    """`1x3x256x256` (or `1,3,256,256`) -> (1, 3, 256, 256)."""
    parts = text.replace(",", "x").replace("X", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        raise ArgumentError(f"--input takes sizes such as 1x3x256x256, not '{text}'") from None
    if not dims or any(d < 0 for d in dims):
        raise ArgumentError(f"--input takes non-negative sizes such as 1x3x256x256, not '{text}'")
    return dims


def resolve_for_input(
    path: str | Path, params: dict[str, Any], shape: tuple[int, ...] | None, net: str | None = None
) -> Resolved:
    """Resolve a spec; `shape` (the first input's concrete shape) sets its symbolic dims."""
    resolved = resolve(path, net=net, params=params)
    if shape is None:
        return resolved
    name, meta = resolved.inputs[0]
    if len(shape) != meta.dim():
        raise ShapeError(
            f"--input gives {len(shape)} dimensions, but input '{name}' has {meta.dim()}: {resolved.symbols.describe(meta.shape)}"
        )
    sizes = {}
    for position, symbol in enumerate(_input_symbols(path, net, resolved)):
        if symbol is not None:
            if symbol in sizes and sizes[symbol] != shape[position]:
                raise ShapeError(
                    f"--input gives two sizes ({sizes[symbol]} and {shape[position]}) for '{symbol}'"
                )
            sizes[symbol] = shape[position]
    resolved = resolve(path, net=net, params=params, sizes=sizes)
    got = tuple(resolved.inputs[0][1].shape)
    for position, (want, have) in enumerate(zip(shape, got)):
        if want != have:
            raise ShapeError(
                f"--input asks for size {want} in dimension {position} of '{name}', but the spec fixes it at {have}",
                hint="set the net parameter that decides it with --set, or give that size",
            )
    return resolved


def _input_symbols(path: str | Path, net: str | None, resolved: Resolved) -> list[str | None]:
    """For each dimension of the first declared input, the symbol written there (or None)."""
    from dsl.elaborate.resolve import pick_net
    from dsl.syntax.loader import load

    spec_file, _ = load(path)
    node = pick_net(spec_file, net)
    body = node.body.body if isinstance(node.body, ir.Container) else node.body
    first = next((s for s in body if isinstance(s, ir.Input)), None)
    if first is None or first.shape is None:
        return []
    params = {p.name for p in node.params}
    return [
        e.id
        if isinstance(e, ir.Name) and e.id not in params and e.id in resolved.symbols.sizes
        else None
        for e in first.shape
    ]


def meta_model(resolved: Resolved) -> nn.Module:
    from dsl.build.compile import compile_resolved

    return compile_resolved(resolved, device="meta")


def spec_spans(
    spec: ModuleSpec, prefix: str = "", out: dict[str, Span] | None = None
) -> dict[str, Span]:
    """Qualified module name -> where the spec wrote it."""
    out = {} if out is None else out
    out[prefix] = spec.span
    if isinstance(spec, ContainerSpec):
        for name, child in spec.children:
            spec_spans(child, _join(prefix, name), out)
    elif isinstance(spec, GraphSpec):
        for name, member in spec.members:
            if isinstance(member, AliasSpec):
                out[_join(prefix, name)] = member.span
            elif isinstance(member, LeafSpec | ContainerSpec | GraphSpec | DerivedSpec):
                spec_spans(member, _join(prefix, name), out)
    elif isinstance(
        spec, DerivedSpec
    ):  # `net X = Base(...)`: the base, then what replaced parts of it
        spec_spans(spec.base, prefix, out)
        out[prefix] = spec.span
        for op in spec.ops:
            if isinstance(op, ReplaceOp):
                spec_spans(op.spec, _join(prefix, op.path), out)
    return out


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@dataclass
class Trace:
    """One forward pass on meta tensors: each module's first inputs and output, FLOPs."""

    calls: dict[int, tuple[tuple[Any, ...], Any]]
    flops: dict[str, int]  # qualified name ("" for the whole model) -> FLOPs, children included
    total_flops: int
    activation_bytes: int
    output: Any


def trace(model: nn.Module, inputs: list[torch.Tensor], *, count_flops: bool = True) -> Trace:
    from torch.utils.flop_counter import FlopCounterMode

    calls: dict[int, tuple[tuple[Any, ...], Any]] = {}
    activations = [0]

    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        calls.setdefault(id(module), (args, out))
        if not module._modules:
            activations[0] += sum(
                t.numel() * t.element_size() for t in _tensors(out) if not any(t is a for a in args)
            )

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            if count_flops:
                with FlopCounterMode(display=False) as counter:
                    output = model(*inputs)
            else:
                counter = None
                output = model(*inputs)
    finally:
        for h in handles:
            h.remove()
    flops: dict[str, int] = {}
    total = 0
    if counter is not None:
        root = type(model).__name__
        for key, ops in counter.get_flop_counts().items():
            value = int(sum(ops.values()))
            if key == "Global":
                flops[""] = value
            elif key.startswith(root + "."):
                flops[key[len(root) + 1 :]] = value
        total = int(counter.get_total_flops())
    return Trace(calls, flops, total, activations[0], output)


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def shape_text(value: Any, symbols: Symbols | None) -> str:
    if value is None:
        return "-"
    from dsl.torchlib.shapes import describe

    return describe(value, symbols)


# ============================================================================ the summary


@dataclass
class Row:
    name: str
    depth: int
    type: str
    output: str
    params: int
    trainable: int
    flops: int | None
    spec: str
    shared_with: str | None = None


@dataclass
class InitRow:
    """`dsl summary --init`: which rule initialised one parameter."""

    name: str
    shape: list[int]
    init: str  # "kaiming_normal(mode=\"fan_out\")", "default (reset_parameters)", "declared: normal(0, 0.01)"
    rule: str  # the rule's target, e.g. "Conv2d.weight" ("" for defaults and declared params)
    recipe: str | None  # the recipe that wrote the rule, if any
    spec: str  # file:line of the rule or the declaration ("" for defaults)


@dataclass
class Summary:
    net: str
    inputs: list[tuple[str, str]]
    sizes: dict[str, int]
    output: str
    rows: list[Row] = field(default_factory=list)
    params: int = 0
    trainable: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0
    activation_bytes: int = 0
    flops: int = 0
    init: list[InitRow] | None = None  # filled by summarise(..., init=True)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.init is None:
            del data["init"]
        return data


def summarise(resolved: Resolved, *, concrete: bool = False, init: bool = False) -> Summary:
    """Measure `resolved` on the meta device. `concrete` shows numbers instead of symbols;
    `init` adds, for every parameter, the init rule (or default) that set it."""
    model = meta_model(resolved)
    inputs = [meta for _, meta in resolved.inputs]
    result = trace(model, inputs)
    symbols = None if concrete else resolved.symbols
    spans = spec_spans(resolved.root)
    params = list(model.parameters())
    summary = Summary(
        net=resolved.name,
        inputs=[(name, shape_text(meta, symbols)) for name, meta in resolved.inputs],
        sizes=dict(resolved.symbols.sizes),
        output=shape_text(result.output, symbols),
        params=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        activation_bytes=result.activation_bytes,
        flops=result.total_flops,
    )
    seen: dict[int, str] = {id(model): ""}

    def walk(module: nn.Module, name: str, depth: int) -> None:
        call = result.calls.get(id(module))
        own = list(module.parameters())
        span = spans.get(name)
        summary.rows.append(
            Row(
                name=name or resolved.name,
                depth=depth,
                type=type(module).__name__,
                output=shape_text(call[1], symbols) if call else "-",
                params=sum(p.numel() for p in own),
                trainable=sum(p.numel() for p in own if p.requires_grad),
                flops=result.flops.get(name, 0 if call else None),
                spec=f"{Path(span.file).name}:{span.line}" if span else "",
            )
        )
        for child_name, child in module._modules.items():
            if child is None:
                continue
            qualified = _join(name, child_name)
            if id(child) in seen:
                span = spans.get(qualified)
                summary.rows.append(
                    Row(
                        qualified,
                        depth + 1,
                        type(child).__name__,
                        "-",
                        0,
                        0,
                        None,
                        f"{Path(span.file).name}:{span.line}" if span else "",
                        shared_with=seen[id(child)],
                    )
                )
                continue
            seen[id(child)] = qualified
            walk(child, qualified, depth + 1)

    walk(model, "", 0)
    if init:
        summary.init = init_rows(model, resolved)
    return summary


# ============================================================================ which rule set each parameter


def init_rows(model: nn.Module, resolved: Resolved) -> list[InitRow]:
    """For each parameter of a model built by `compile_resolved` (on meta or for real), the
    init rule that set it (`BUILT[model]`'s winners), its declared initialiser, or the
    layer's own default."""
    from dsl.build.compile import BUILT

    _, winners = BUILT[model]
    declared: dict[str, TensorSpec] = {}
    leaves: dict[str, LeafSpec] = {}
    _spec_tensors(resolved.root, "", declared, leaves)
    rows = []
    for name, param in model.named_parameters():
        shape = list(param.shape)
        rule = winners.get(name)
        if rule is not None:
            rows.append(
                InitRow(
                    name,
                    shape,
                    init_call_text(rule.init),
                    rule.target,
                    rule.recipe,
                    _where(rule.span),
                )
            )
        elif name in declared and declared[name].init is not None:
            tensor = declared[name]
            rows.append(
                InitRow(
                    name,
                    shape,
                    "declared: " + init_call_text(tensor.init),
                    "",
                    None,
                    _where(tensor.span),
                )
            )
        else:
            rows.append(InitRow(name, shape, _default_text(name, leaves), "", None, ""))
    return rows


def _spec_tensors(
    spec: Any, prefix: str, declared: dict[str, TensorSpec], leaves: dict[str, LeafSpec]
) -> None:
    """Qualified names of declared `param`s, and of every leaf layer (for its default)."""
    if isinstance(spec, LeafSpec):
        leaves[prefix] = spec
    elif isinstance(spec, ContainerSpec):
        for name, child in spec.children:
            _spec_tensors(child, _join(prefix, name), declared, leaves)
    elif isinstance(spec, GraphSpec):
        for name, member in spec.members:
            if isinstance(member, TensorSpec):
                declared[_join(prefix, name)] = member
            elif isinstance(member, LeafSpec | ContainerSpec | GraphSpec | DerivedSpec):
                _spec_tensors(member, _join(prefix, name), declared, leaves)
    elif isinstance(spec, DerivedSpec):
        _spec_tensors(spec.base, prefix, declared, leaves)
        for op in spec.ops:
            if isinstance(op, ReplaceOp):
                _spec_tensors(op.spec, _join(prefix, op.path), declared, leaves)


def _default_text(name: str, leaves: dict[str, LeafSpec]) -> str:
    """A torch.nn layer's `reset_parameters`, or the constructor of a torchvision/user model."""
    path = name
    while path:
        path = path.rpartition(".")[0]
        leaf = leaves.get(path)
        if leaf is not None:
            if leaf.layer.source == "torch.nn":
                return "default (reset_parameters)"
            return f"default ({leaf.layer.name}() constructor)"
    return "default (reset_parameters)"


def _where(span: Span | None) -> str:
    return f"{Path(span.file).name}:{span.line}" if span is not None else ""


def init_call_text(call: Any) -> str:
    """An initialiser as a spec writes it: kaiming_normal(mode="fan_out", nonlinearity="relu")."""
    args = [_value_text(a) for a in call.args] + [
        f"{k}={_value_text(v)}" for k, v in call.kwargs.items()
    ]
    return f"{call.name}({', '.join(args)})"


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


# ============================================================================ rendering


def human_count(n: int | float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(int(n))


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{n} B"


def render(summary: Summary, *, depth: int | None = 3, color: bool = False) -> str:
    bold = (lambda s: f"\x1b[1m{s}\x1b[0m") if color else (lambda s: s)
    dim = (lambda s: f"\x1b[2m{s}\x1b[0m") if color else (lambda s: s)
    header = ("Module", "Type", "Output shape", "Params", "Trainable", "FLOPs", "Spec")
    body = []
    for row in summary.rows:
        if depth is not None and row.depth > depth:
            continue
        name = (
            row.name
            if row.depth == 0
            else row.name.rsplit(".", 1)[-1]
            if "." in row.name
            else row.name
        )
        label = "  " * row.depth + name
        if row.shared_with is not None:
            body.append(
                (label, row.type, f"(shared with {row.shared_with})", "-", "-", "-", row.spec)
            )
            continue
        body.append(
            (
                label,
                row.type,
                row.output,
                f"{row.params:,}",
                f"{row.trainable:,}",
                human_count(row.flops) if row.flops is not None else "-",
                row.spec,
            )
        )
    widths = [
        max(len(header[i]), *(len(r[i]) for r in body)) if body else len(header[i])
        for i in range(len(header))
    ]
    right = {3, 4, 5}

    def line(cells: tuple[str, ...]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(tuple("x" * w for w in widths)))
    out = [bold(line(header)), rule]
    for cells in body:
        text = line(cells)
        out.append(
            text[: -len(cells[6])] + dim(cells[6]) if cells[6] and text.endswith(cells[6]) else text
        )
    out.append(rule)
    inputs = ", ".join(f"{n}: {s}" for n, s in summary.inputs)
    sizes = ", ".join(f"{k}={v}" for k, v in summary.sizes.items())
    out.append(f"Input:                {inputs}" + (f"   (measured with {sizes})" if sizes else ""))
    out.append(f"Output:               {summary.output}")
    out.append(f"Total parameters:     {summary.params:,} ({human_count(summary.params)})")
    out.append(f"Trainable parameters: {summary.trainable:,}")
    out.append(f"Non-trainable:        {summary.params - summary.trainable:,}")
    out.append(
        f"Parameter memory:     {human_bytes(summary.param_bytes)}"
        + (f" (+ {human_bytes(summary.buffer_bytes)} buffers)" if summary.buffer_bytes else "")
    )
    out.append(
        f"Activation memory:    {human_bytes(summary.activation_bytes)} (module outputs in one forward pass, estimate)"
    )
    out.append(
        f"FLOPs:                {human_count(summary.flops)} ({summary.flops:,}; {human_count(summary.flops / 2)} MACs)"
    )
    if summary.init is not None:
        out += ["", render_init(summary.init, bold=bold, dim=dim)]
    return "\n".join(out)


def render_init(rows: list[InitRow], *, bold: Any = str, dim: Any = str) -> str:
    """The `--init` table: one row per parameter, the rule that set it and where it is written."""
    header = ("Parameter", "Shape", "Initialised by", "Rule", "Spec")
    body = []
    for row in rows:
        rule = row.rule + (f" ({row.recipe}() recipe)" if row.recipe else "")
        body.append((row.name, str(row.shape), row.init, rule, row.spec))
    widths = [
        max(len(header[i]), *(len(r[i]) for r in body)) if body else len(header[i])
        for i in range(len(header))
    ]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    rule_line = "-" * len(line(tuple("x" * w for w in widths)))
    out = [bold(line(header)), rule_line]
    for cells in body:
        text = line(cells)
        out.append(
            text[: -len(cells[4])] + dim(cells[4]) if cells[4] and text.endswith(cells[4]) else text
        )
    out.append(rule_line)
    return "\n".join(out)


def render_json(summary: Summary) -> str:
    return json.dumps(summary.to_json(), indent=2)
