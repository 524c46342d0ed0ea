"""`dsl summary`: a table of a network's modules, shapes, parameters and FLOPs.

Everything is measured on the meta device (`dsl.tools.measure`): the model is compiled there
(no weights are allocated, so a 175B-parameter spec summarises in seconds), run once on meta
inputs with a forward hook on every module (output shapes, activation sizes) and under
torch's own `FlopCounterMode` (FLOPs per module, matmuls and attention included).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from dsl.plan import LeafSpec, ModuleSpec, Resolved, TensorSpec, iter_modules
from dsl.records import asdict, field, record
from dsl.source import Span
from dsl.tools.measure import Trace, meta_model, shape_text, trace
from dsl.tools.symbolic import merged, symbolic_shapes
from dsl.torchlib.symbols import Symbols


def spec_spans(spec: ModuleSpec) -> dict[str, Span]:
    """Qualified module name -> where the spec wrote it (a derived net: its own line)."""
    return {
        path: node.span for path, node in iter_modules(spec) if not isinstance(node, TensorSpec)
    }


# ============================================================================ the summary


@record
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


@record
class InitRow:
    """`dsl summary --init`: which rule initialised one parameter."""

    name: str
    shape: list[int]
    init: str  # "kaiming_normal(mode=\"fan_out\")", "default (reset_parameters)", "declared: normal(0, 0.01)"
    rule: str  # the rule's target, e.g. "Conv2d.weight" ("" for defaults and declared params)
    recipe: str | None  # the recipe that wrote the rule, if any
    spec: str  # file:line of the rule or the declaration ("" for defaults)


# The table's columns after "Module": key -> heading (`dsl summary --columns output,flops`).
COLUMNS = {
    "type": "Type",
    "output": "Output shape",
    "params": "Params",
    "trainable": "Trainable",
    "flops": "FLOPs",
    "spec": "Spec",
}
NUMERIC_COLUMNS = {"params", "trainable", "flops"}  # flush right


@record
class Summary:
    """`dsl.summary(...)`: the rows as data, `str()` renders the table (`depth` and
    `columns` pick what it shows), `to_json()` gives everything as plain data. `flops` is
    for the whole batch measured (`batch`, the first input's leading size);
    `flops_per_sample` divides it by that batch."""

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
    batch: int = 1
    init: list[InitRow] | None = None  # filled by summarise(..., init=True)
    depth: int | None = field(default=3, repr=False)
    columns: list[str] = field(default_factory=lambda: list(COLUMNS), repr=False)

    @property
    def flops_per_sample(self) -> float:
        return self.flops / self.batch if self.batch else float(self.flops)

    def __str__(self) -> str:
        return render(self, depth=self.depth, columns=self.columns)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["depth"], data["columns"]
        data["flops_per_sample"] = self.flops_per_sample
        if self.init is None:
            del data["init"]
        return data


def check_columns(columns: Sequence[str]) -> list[str]:
    """`columns` if each is one of COLUMNS, else an ArgumentError naming the unknown one."""
    from dsl.errors import ArgumentError, did_you_mean

    for column in columns:
        if column not in COLUMNS:
            raise ArgumentError(
                f"no summary column '{column}'",
                hint=did_you_mean(column, COLUMNS) or f"columns: {', '.join(COLUMNS)}",
            )
    return list(columns)


def summarise(resolved: Resolved, *, concrete: bool = False, init: bool = False) -> Summary:
    """Measure `resolved` on the meta device. `concrete` shows numbers instead of symbols;
    `init` adds, for every parameter, the init rule (or default) that set it."""
    model = meta_model(resolved)
    inputs = [meta for _, meta in resolved.inputs]
    result = trace(model, inputs)
    symbols = None if concrete else resolved.symbols
    formulas = None if symbols is None else symbolic_shapes(model, inputs, symbols)
    params = list(model.parameters())
    summary = Summary(
        net=resolved.name,
        inputs=[(name, shape_text(meta, symbols)) for name, meta in resolved.inputs],
        sizes=dict(resolved.symbols.sizes),
        output=merged((formulas or {}).get(id(model)), result.output, symbols),
        rows=_rows(model, resolved, result, symbols, formulas or {}),
        params=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        activation_bytes=result.activation_bytes,
        flops=result.total_flops,
        batch=int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 1,
    )
    if init:
        summary.init = init_rows(model, resolved)
    return summary


def _rows(
    model: nn.Module,
    resolved: Resolved,
    result: Trace,
    symbols: Symbols | None,
    formulas: dict[int, list[str | None]],
) -> list[Row]:
    """One row per module, depth first; a module registered a second time is one row that
    names its first place, without its children."""
    spans = spec_spans(resolved.root)
    rows = []
    first_place: dict[int, str] = {}
    shared = None  # the name of the last shared module: its children are left out
    for name, module in model.named_modules(remove_duplicate=False):
        if shared is not None and name.startswith(shared + "."):
            continue
        depth = name.count(".") + 1 if name else 0
        if id(module) in first_place:
            shared = name
            where = _where(spans.get(name))
            row = Row(
                name, depth, type(module).__name__, "-", 0, 0, None, where, first_place[id(module)]
            )
            rows.append(row)
            continue
        first_place[id(module)] = name
        call = result.calls.get(id(module))
        own = list(module.parameters())
        rows.append(
            Row(
                name=name or resolved.name,
                depth=depth,
                type=type(module).__name__,
                output=merged(formulas.get(id(module)), call[1], symbols) if call else "-",
                params=sum(p.numel() for p in own),
                trainable=sum(p.numel() for p in own if p.requires_grad),
                flops=result.flops.get(name, 0 if call else None),
                spec=_where(spans.get(name)),
            )
        )
    return rows


# ============================================================================ which rule set each parameter


def init_rows(model: nn.Module, resolved: Resolved) -> list[InitRow]:
    """For each parameter of a model built by `compile_resolved` (on meta or for real), the
    init rule that set it (`BUILT[model]`'s winners), its declared initialiser, or the
    layer's own default."""
    from dsl.build.compile import BUILT

    _, winners = BUILT[model]
    declared, leaves = _spec_tensors(resolved.root)
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


def _spec_tensors(spec: ModuleSpec) -> tuple[dict[str, TensorSpec], dict[str, LeafSpec]]:
    """Qualified names of declared `param`s, and of every leaf layer (for its default)."""
    declared: dict[str, TensorSpec] = {}
    leaves: dict[str, LeafSpec] = {}
    for path, node in iter_modules(spec):
        if isinstance(node, TensorSpec):
            declared[path] = node
        elif isinstance(node, LeafSpec):
            leaves[path] = node
    return declared, leaves


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


def render(
    summary: Summary,
    *,
    depth: int | None = 3,
    color: bool = False,
    columns: Sequence[str] | None = None,
) -> str:
    bold = (lambda s: f"\x1b[1m{s}\x1b[0m") if color else (lambda s: s)
    dim = (lambda s: f"\x1b[2m{s}\x1b[0m") if color else (lambda s: s)
    keys = ["module", *(columns if columns is not None else COLUMNS)]
    header = tuple("Module" if k == "module" else COLUMNS[k] for k in keys)
    body = [
        tuple(_cells(row)[k] for k in keys)
        for row in summary.rows
        if depth is None or row.depth <= depth
    ]
    right = {i for i, k in enumerate(keys) if k in NUMERIC_COLUMNS}
    out = _table(header, body, right=right, bold=bold, dim=dim, dim_last=keys[-1] == "spec")
    out += _totals(summary)
    if summary.init is not None:
        out += ["", render_init(summary.init, bold=bold, dim=dim)]
    return "\n".join(out)


def _cells(row: Row) -> dict[str, str]:
    name = row.name if row.depth == 0 else row.name.rsplit(".", 1)[-1]
    cells = {"module": "  " * row.depth + name, "type": row.type, "spec": row.spec}
    if row.shared_with is not None:
        shared = {"output": f"(shared with {row.shared_with})", "params": "-", "trainable": "-"}
        return {**cells, **shared, "flops": "-"}
    return {
        **cells,
        "output": row.output,
        "params": f"{row.params:,}",
        "trainable": f"{row.trainable:,}",
        "flops": human_count(row.flops) if row.flops is not None else "-",
    }


def _table(
    header: tuple[str, ...],
    body: Sequence[tuple[str, ...]],
    *,
    right: set[int] | None = None,
    bold: Any = str,
    dim: Any = str,
    dim_last: bool = True,
) -> list[str]:
    """Columns padded to their widest cell (those in `right` flush right), between rules;
    the last column (the spec line) dimmed unless `dim_last` is False."""
    right = right or set()
    widths = [
        max(len(header[i]), *(len(r[i]) for r in body)) if body else len(header[i])
        for i in range(len(header))
    ]

    def line(cells: tuple[str, ...]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(tuple("x" * w for w in widths)))
    out = [bold(line(header)), rule]
    for cells in body:
        text, last = line(cells), cells[-1]
        dimmed = dim_last and last and text.endswith(last)
        out.append(text[: -len(last)] + dim(last) if dimmed else text)
    out.append(rule)
    return out


def _totals(summary: Summary) -> list[str]:
    inputs = ", ".join(f"{n}: {s}" for n, s in summary.inputs)
    sizes = ", ".join(f"{k}={v}" for k, v in summary.sizes.items())
    buffers = f" (+ {human_bytes(summary.buffer_bytes)} buffers)" if summary.buffer_bytes else ""
    per_sample = human_count(summary.flops_per_sample)
    macs = human_count(summary.flops_per_sample / 2)
    batch = f"the batch of {summary.batch} measured: {human_count(summary.flops)}"
    return [
        f"Input:                {inputs}" + (f"   (measured with {sizes})" if sizes else ""),
        f"Output:               {summary.output}",
        f"Total parameters:     {summary.params:,} ({human_count(summary.params)})",
        f"Trainable parameters: {summary.trainable:,}",
        f"Non-trainable:        {summary.params - summary.trainable:,}",
        f"Parameter memory:     {human_bytes(summary.param_bytes)}" + buffers,
        f"Activation memory:    {human_bytes(summary.activation_bytes)} (module outputs in one forward pass, estimate)",
        f"FLOPs per sample:     {per_sample} ({macs} MACs; {batch})",
    ]


def render_init(rows: list[InitRow], *, bold: Any = str, dim: Any = str) -> str:
    """The `--init` table: one row per parameter, the rule that set it and where it is written."""
    header = ("Parameter", "Shape", "Initialised by", "Rule", "Spec")
    body = [
        (
            row.name,
            str(row.shape),
            row.init,
            row.rule + (f" ({row.recipe}() recipe)" if row.recipe else ""),
            row.spec,
        )
        for row in rows
    ]
    return "\n".join(_table(header, body, bold=bold, dim=dim))


def render_json(summary: Summary) -> str:
    return json.dumps(summary.to_json(), indent=2)
