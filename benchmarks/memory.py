"""Memory: peak bytes of one forward (no grad) and of one training step (forward, backward)
of the built model and its hand-written reference, with the same weights (issue 18: never
above hand-written). Peaks come from the CPU allocator's events (`forward_peak_bytes`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import dsl
from benchmarks import references as refs
from benchmarks.harness import ROOT, Row, forward_peak_bytes

EXAMPLES = ROOT / "examples"

# name, spec, params, reference, input, forward too (the forward section has the others)
CASES: list[tuple[str, str, dict[str, Any], Callable[[], nn.Module], Callable[[], Any], bool]] = [
    (
        "ResNet-50 3x224x224 b1",
        "resnet50.net",
        {},
        refs.resnet50,
        lambda: torch.randn(1, 3, 224, 224),
        True,
    ),
    (
        "ResNet-18 3x64x64 b1",
        "resnet18.net",
        {},
        refs.resnet18,
        lambda: torch.randn(1, 3, 64, 64),
        False,
    ),
    ("U-Net w64 3x64x64 b1", "unet.net", {}, refs.UNet, lambda: torch.randn(1, 3, 64, 64), False),
    (
        "GPT small T=64 b1",
        "gpt.net",
        {},
        refs.GPT,
        lambda: torch.randint(0, 256, (1, 64)),
        False,
    ),
    ("S1 MLP b1", "mnist_mlp.net", {}, refs.MnistMLP, lambda: torch.randn(1, 1, 28, 28), False),
]


def _forward(model: nn.Module, x: Any) -> Callable[[], Any]:
    def run() -> Any:
        with torch.no_grad():
            return model(x)

    return run


def _step(model: nn.Module, x: Any) -> Callable[[], None]:
    def run() -> None:
        model.zero_grad(set_to_none=True)
        out = model(x)
        (out if isinstance(out, torch.Tensor) else out[0]).float().sum().backward()

    return run


def memory(settings: Any, log: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    torch.manual_seed(0)
    for name, spec, params, make_ref, make_input, forward_too in CASES:
        built = dsl.build_model(EXAMPLES / spec, params=params, seed=0)
        reference = make_ref()
        built.load_state_dict(reference.state_dict(), strict=True)
        x = make_input()
        kinds = [("forward", _forward)] if forward_too else []
        for kind, make in [*kinds, ("training step", _step)]:
            for model in (built, reference):
                model.train(kind == "training step")
            ours = forward_peak_bytes(make(built, x)) / 2**20
            ref = forward_peak_bytes(make(reference, x)) / 2**20
            row = Row("memory", f"{name} {kind} peak", "MiB", ours, ours, ours, 1)
            row.ref_name, row.ref_median, row.ref_min, row.ref_max = (
                "hand-written",
                ref,
                ref,
                ref,
            )
            row.ratio = ours / ref if ref else None
            row.target, row.met = "ratio ≤ 1.00", ours <= ref
            rows.append(row)
            log(f"  {name} {kind}: {ours:.2f} vs {ref:.2f} MiB")
    return rows
