"""`--check`: build the spec, load the original's state_dict strictly (same keys, same
order), and compare outputs in eval and in training mode under the same seed."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from dsl.errors import DSLError
from dsl.torchlib.registry import register

RTOL, ATOL = 1e-5, 1e-6


def build_text(text: str, functions: dict[str, Callable[..., Any]]) -> nn.Module:
    """The module a spec text builds (the functions it calls registered first)."""
    from dsl.build.compile import compile_resolved
    from dsl.tools.sizes import resolve_fitting

    for name, fn in functions.items():
        register(fn, name=name)
    return compile_resolved(resolve_fitting(text), device=None, dtype=None, seed=0)


def check(
    text: str,
    original: nn.Module,
    inputs: Sequence[torch.Tensor],
    functions: dict[str, Callable[..., Any]],
    seed: int = 0,
) -> tuple[list[str], float]:
    """What differs between the spec's model and the original (empty: faithful), and the
    largest difference of any output element."""
    try:
        built = build_text(text, functions)
    except DSLError as exc:
        return [f"the spec does not build: {str(exc).splitlines()[0]}"], float("inf")
    mine, theirs = list(built.state_dict()), list(original.state_dict())
    if mine != theirs:
        extra = [k for k in mine if k not in theirs][:3]
        lacking = [k for k in theirs if k not in mine][:3]
        return [f"state_dict keys differ (spec only: {extra}, original only: {lacking}, "
                f"or their order)"], float("inf")  # fmt: skip
    reference = copy.deepcopy(original)
    built.load_state_dict(reference.state_dict(), strict=True)
    problems, worst = [], 0.0
    for training in (False, True):
        reference.train(training)
        built.train(training)
        mode = "train" if training else "eval"
        try:
            torch.manual_seed(seed)
            expected = _flat(reference(*inputs))
        except Exception as exc:  # an input that does not fit the model itself
            return [f"the model fails on the example input in {mode} mode: {exc}"], float("inf")
        try:
            torch.manual_seed(seed)
            got = _flat(built(*inputs))
        except Exception as exc:  # the generated forward failing is a finding
            return [f"the built model's forward fails: {type(exc).__name__}: {exc}"], float("inf")
        difference = _difference(expected, got)
        worst = max(worst, difference)
        if difference == float("inf") or not all(
            torch.allclose(a, b, rtol=RTOL, atol=ATOL) for a, b in zip(expected, got, strict=True)
        ):
            problems.append(f"outputs differ in {mode} mode (largest difference {difference:.3g})")
    return problems, worst


def _flat(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output.detach().float()]
    if isinstance(output, dict):
        return [t for key in output for t in _flat(output[key])]
    if isinstance(output, tuple | list):
        return [t for item in output for t in _flat(item)]
    return []


def _difference(expected: list[torch.Tensor], got: list[torch.Tensor]) -> float:
    if len(expected) != len(got) or any(a.shape != b.shape for a, b in zip(expected, got)):
        return float("inf")
    return max(
        (float((a - b).abs().max()) if a.numel() else 0.0 for a, b in zip(expected, got)),
        default=0.0,
    )
