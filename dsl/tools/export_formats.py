"""`dsl export` to ONNX, TorchScript and torch.export programs, with the spec's symbols
as dynamic dimensions (`export_dynamic`) and a check of the written file (`export_check`).

ONNX goes through torch's dynamo exporter from the same exported program, so its dynamic
axes are the program's; they are renamed after the spec's symbols (`B`, `H`, `T`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dsl.errors import ArgumentError
from dsl.plan import Resolved
from dsl.records import record
from dsl.tools.export import eject
from dsl.tools.export_check import CheckResult, self_check
from dsl.tools.export_constraints import export_program
from dsl.tools.export_dynamic import Dynamic, DynamicPlan, plan_dynamic

FORMATS = ("onnx", "torchscript", "exported-program", "python")


@record
class ExportResult:
    """What `export_model` wrote: the file, its dynamic dimensions, the check's outcome."""

    path: Path
    format: str
    plan: DynamicPlan | None = None
    check: CheckResult | None = None

    def dims_text(self) -> str:
        if self.plan is None:
            return "standalone PyTorch source"
        if not self.plan.ranges:
            shapes = ", ".join(
                f"{n} {'x'.join(map(str, s))}" for n, s in zip(self.plan.names, self.plan.shapes)
            )
            return f"static: {shapes}"
        return "dynamic: " + ", ".join(r.text() for r in self.plan.ranges.values())

    def __str__(self) -> str:
        lines = [f"wrote {self.path} ({self.format}); {self.dims_text()}"]
        if self.check is not None:
            lines.append(self.check.text())
        return "\n".join(lines)


def export_model(
    model: nn.Module,
    resolved: Resolved,
    fmt: str,
    output: Path,
    *,
    dynamic: Dynamic = True,
    check: bool = True,
    check_sizes: list[Mapping[str, int]] | None = None,
    spec: Any = None,
    source_name: str = "",
) -> ExportResult:
    """Write `model` (built from `resolved`) to `output` in `fmt`, its symbols dynamic as
    `dynamic` chooses (`export_dynamic.Dynamic`), and check the file unless `check` is False;
    `spec` (the spec it was built from) locates errors at its `input` line."""
    output = Path(output)
    if fmt == "python":
        output.write_text(eject(resolved, source_name=source_name), encoding="utf-8")
        return ExportResult(output, fmt)
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise ArgumentError(f"unknown export format '{fmt}'", hint=f"formats: {', '.join(FORMATS)}")
    model.eval()
    plan = plan_dynamic(resolved, dynamic, spec)
    writer(model, plan, output, resolved.name)
    result = ExportResult(output, fmt, plan)
    if check:
        result.check = self_check(model, plan, fmt, output, check_sizes)
    return result


def _onnx(model: nn.Module, plan: DynamicPlan, output: Path, what: str) -> None:
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise ArgumentError(
            "ONNX export needs the 'onnx' and 'onnxscript' packages",
            hint="pip install onnx onnxscript",
        ) from None
    program = export_program(model, plan, what)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_program = torch.onnx.export(program, (), dynamo=True, verbose=False)
    assert onnx_program is not None  # the dynamo exporter always returns its program
    _rename_axes(onnx_program.model, _axis_names(program, plan))
    onnx_program.save(str(output))


def _axis_names(program: Any, plan: DynamicPlan) -> dict[str, str]:
    """torch's size symbols (`s77`) -> the spec's (`B`); a root of a stepped dim -> `_H`."""
    user = set(program.graph_signature.user_inputs)
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in user]
    names: dict[str, str] = {}
    for node, symbols in zip(placeholders, plan.where):
        for size, symbol in zip(node.meta["val"].shape, symbols):
            if symbol is None or not isinstance(size, torch.SymInt):
                continue
            text = str(size)
            stepped = re.fullmatch(r"\d+\*(\w+)", text)
            if stepped:
                names[stepped.group(1)] = f"_{symbol}"
            elif text.isidentifier():
                names[text] = symbol
    return names


def _rename_axes(model: Any, names: dict[str, str]) -> None:
    """Every symbolic dim of the ONNX graph written with the spec's names."""
    import onnx_ir as ir

    if not names:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    graph = model.graph
    values = [*graph.inputs, *graph.outputs, *(v for n in graph.all_nodes() for v in n.outputs)]
    for value in values:
        if value.shape is None:
            continue
        dims = [
            ir.SymbolicDim(pattern.sub(lambda m: names[m.group(1)], d.value))
            if isinstance(d, ir.SymbolicDim) and d.value
            else d
            for d in value.shape
        ]
        value.shape = ir.Shape(dims)


def _torchscript(model: nn.Module, plan: DynamicPlan, output: Path, what: str) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(model, plan.inputs())
    scripted.save(str(output))


def _exported_program(model: nn.Module, plan: DynamicPlan, output: Path, what: str) -> None:
    torch.export.save(export_program(model, plan, what), str(output))


_WRITERS: dict[str, Callable[[nn.Module, DynamicPlan, Path, str], None]] = {
    "onnx": _onnx,
    "torchscript": _torchscript,
    "exported-program": _exported_program,
}


SUFFIXES = {
    ".onnx": "onnx",
    ".pt2": "exported-program",
    ".ts": "torchscript",
    ".pt": "torchscript",
    ".py": "python",
}


def export_any(
    spec_or_model: Any,
    output: str | Path,
    *,
    format: str | None = None,
    dynamic: Dynamic = None,
    input: tuple[int, ...] | None = None,
    check: bool = True,
    check_sizes: list[Mapping[str, int]] | None = None,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
) -> ExportResult:
    """`dsl.export`: a spec (built here with `seed`) or a model `build_model` built."""
    output = Path(output)
    fmt = _format_of(output, format)
    if dynamic is None:  # a concrete input shape asks for a static graph
        dynamic = input is None
    model, resolved = _model_of(spec_or_model, fmt, input, sizes, net, params, seed)
    spec = None if isinstance(spec_or_model, nn.Module) else spec_or_model
    return export_model(
        model,
        resolved,
        fmt,
        output,
        dynamic=dynamic,
        check=check,
        check_sizes=check_sizes,
        spec=spec,
    )


def _format_of(output: Path, given: str | None) -> str:
    fmt = given or SUFFIXES.get(output.suffix.lower())
    if fmt is None:
        raise ArgumentError(
            f"cannot tell the export format from '{output.name}'",
            hint=f"give format= (one of {', '.join(FORMATS)}) or a name ending in {', '.join(SUFFIXES)}",
        )
    return fmt


def _model_of(
    spec_or_model: Any,
    fmt: str,
    input: tuple[int, ...] | None,
    sizes: dict[str, int] | None,
    net: str | None,
    params: dict[str, Any] | None,
    seed: int,
) -> tuple[nn.Module, Resolved]:
    """The model and what it was built from: a spec is resolved (at `input`'s or `sizes`'
    sizes) and built; a model `build_model` built comes with its own."""
    from dsl.build.compile import BUILT, compile_resolved
    from dsl.tools.sizes import resolve_fitting, resolve_for_input

    if isinstance(spec_or_model, nn.Module):
        if spec_or_model not in BUILT or input is not None or sizes is not None:
            raise ArgumentError(
                "dsl.export takes a spec, or a model dsl.build_model built (without input= or sizes=)",
                hint="build it with build_model(..., sizes=...) for other representative sizes",
            )
        return spec_or_model, BUILT[spec_or_model][0]
    if input is not None:
        resolved = resolve_for_input(spec_or_model, params or {}, tuple(input), net)
    else:
        resolved = resolve_fitting(spec_or_model, net=net, params=params, sizes=sizes)
    model = compile_resolved(resolved, seed=seed) if fmt != "python" else nn.Module()
    return model, resolved
