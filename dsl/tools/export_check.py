"""`dsl export`'s self-check: the written artifact, loaded back and run at two sizes other
than the ones it was traced with, must give the eager model's outputs.

ONNX runs in onnxruntime, an exported program is `torch.export.load`ed, TorchScript is
`torch.jit.load`ed. A static export is run at its own sizes, with other data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dsl.errors import ArgumentError
from dsl.records import record
from dsl.tools.export_dynamic import DynamicPlan, SymbolRange

ATOL = 1e-4
RTOL = 1e-3
RUNNERS = {
    "onnx": "onnxruntime",
    "exported-program": "torch.export.load",
    "torchscript": "torch.jit.load",
}


@record
class CheckResult:
    """What the check ran and how close the artifact came to eager."""

    runner: str
    sizes: list[dict[str, int]]
    shapes: list[list[tuple[int, ...]]]
    max_abs: float
    atol: float = ATOL
    rtol: float = RTOL

    def text(self) -> str:
        tried = " and ".join(_shapes_text(s) for s in self.shapes)
        return (
            f"checked with {self.runner} at {tried}: equal to eager, "
            f"max |diff| {self.max_abs:.1e} (atol {self.atol:g}, rtol {self.rtol:g})"
        )


def _shapes_text(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join("x".join(map(str, s)) for s in shapes)


def check_sizes(plan: DynamicPlan) -> list[dict[str, int]]:
    """Two sizes per dynamic symbol, both other than its representative and trace sizes:
    batch 1 and the representative + 3 (1 and 5), others about half and one and a half
    times the representative, within the symbol's range and steps. A static plan: its own
    sizes, once."""
    if not plan.ranges:
        return [{}]
    rs = plan.ranges.items()
    return [
        {n: _pick(r, 1 if r.batch else r.representative // 2, up=False) for n, r in rs},
        {
            n: _pick(r, r.representative + (3 if r.batch else r.representative // 2 + 1), up=True)
            for n, r in rs
        },
    ]


def _pick(r: SymbolRange, target: int, up: bool) -> int:
    """The valid size nearest `target` that is not one the export was traced with."""
    taken = {r.representative, r.trace}
    for d in range(4 * max(target, r.multiple) + 1):
        for size in (target + d, target - d) if up else (target - d, target + d):
            if size >= 1 and r.valid(size) and size not in taken:
                return size
    return r.trace  # the range holds nothing else: the traced size


def self_check(
    model: nn.Module,
    plan: DynamicPlan,
    fmt: str,
    path: Path,
    sizes: list[Mapping[str, int]] | None = None,
) -> CheckResult:
    """Run the artifact at `sizes` (default `check_sizes`) and compare with `model`."""
    chosen = [dict(s) for s in sizes] if sizes is not None else check_sizes(plan)
    for size in chosen:
        for name, value in size.items():
            r = plan.ranges.get(name)
            if r is None or not r.valid(value):
                raise ArgumentError(
                    f"the check size {name}={value} is not one the export accepts",
                    plan.span,
                    hint="the export's ranges: "
                    + ", ".join(x.text() for x in plan.ranges.values()),
                )
    run = _LOADERS[fmt](path)
    worst = 0.0
    shapes = []
    for index, size in enumerate(chosen):
        inputs = plan.inputs(size, seed=index + 1)
        shapes.append([tuple(t.shape) for t in inputs])
        with torch.no_grad():
            expected = _flat(model(*inputs))
        try:
            got = run(inputs)
        except Exception as exc:  # the runtime refused the inputs
            raise _mismatch(fmt, shapes[-1], plan, f"it refused them: {_first_line(exc)}") from None
        worst = max(worst, _compare(got, expected, fmt, shapes[-1], plan))
    return CheckResult(RUNNERS[fmt], chosen, shapes, worst)


def _compare(
    got: list[torch.Tensor], expected: list[torch.Tensor], fmt: str, shapes: Any, plan: DynamicPlan
) -> float:
    if len(got) != len(expected):
        raise _mismatch(fmt, shapes, plan, f"{len(got)} outputs where eager gives {len(expected)}")
    worst = 0.0
    for a, b in zip(got, expected):
        if a.shape != b.shape:
            raise _mismatch(
                fmt, shapes, plan, f"an output of shape {list(a.shape)}, eager {list(b.shape)}"
            )
        a, b = a.to(b.dtype), b
        if b.dtype.is_floating_point:
            diff = (a - b).abs()
            worst = max(worst, float(diff.max()) if diff.numel() else 0.0)
            if not torch.all(diff <= ATOL + RTOL * b.abs()):
                raise _mismatch(
                    fmt, shapes, plan, f"max |diff| {worst:.2e} over atol {ATOL:g}, rtol {RTOL:g}"
                )
        elif not torch.equal(a, b):
            raise _mismatch(fmt, shapes, plan, "integer outputs that differ")
    return worst


def _mismatch(fmt: str, shapes: Any, plan: DynamicPlan, what: str) -> ArgumentError:
    return ArgumentError(
        f"the exported {fmt} file does not match the eager model at inputs {_shapes_text(shapes)}: {what}",
        plan.span,
        hint="export with --static (or --input SHAPE) for a graph of fixed sizes; "
        "--no-check skips this check",
    )


def _first_line(exc: BaseException) -> str:
    return next(
        (line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__
    )


def _flat(value: Any) -> list[torch.Tensor]:
    """The tensors of an output, in the order the exporters flatten it."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flat(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _flat(v)]
    return []


def _onnx_runner(path: Path) -> Callable[[tuple[torch.Tensor, ...]], list[torch.Tensor]]:
    import onnxruntime  # type: ignore[import-untyped]

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        feed = {n: t.numpy() for n, t in zip(names, inputs)}
        return [torch.from_numpy(o) for o in session.run(None, feed)]

    return run


def _program_runner(path: Path) -> Callable[[tuple[torch.Tensor, ...]], list[torch.Tensor]]:
    module = torch.export.load(str(path)).module()

    def run(inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        with torch.no_grad():
            return _flat(module(*inputs))

    return run


def _script_runner(path: Path) -> Callable[[tuple[torch.Tensor, ...]], list[torch.Tensor]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        module = torch.jit.load(str(path))

    def run(inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        with torch.no_grad():
            return _flat(module(*inputs))

    return run


_LOADERS: dict[str, Callable[[Path], Callable[[tuple[torch.Tensor, ...]], list[torch.Tensor]]]] = {
    "onnx": _onnx_runner,
    "exported-program": _program_runner,
    "torchscript": _script_runner,
}
