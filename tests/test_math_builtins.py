"""`math`-style functions and constants at build time, as `math.NAME` and as bare names
(issue 13); the bare names stay torch's ops on tensors in forward."""

from __future__ import annotations

import math

import pytest
import torch

import dsl
from dsl.errors import EvaluationError

SPEC = """
net M(width=100, ratio=0.3):
    input x: [B, 8]
    hidden = math.ceil(width * ratio)
    extra = floor(log2(width)) + gcd(12, 18) + int(round(math.pi * e)) + int(math.sqrt(16))
    fc = Linear(hidden + extra + int(exp(0)) + int(log(math.e)))
    return fc(x).exp() + sqrt(x.abs()).sum()
"""


def test_math_at_build_time_and_torch_ops_in_forward() -> None:
    model = dsl.build_model(SPEC, seed=0)
    expected = math.ceil(30.0) + 6 + 6 + round(math.pi * math.e) + 4 + 1 + 1
    assert model.fc.out_features == expected
    x = torch.randn(2, 8)
    torch.testing.assert_close(model(x), model.fc(x).exp() + torch.sqrt(x.abs()).sum())


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("math.ceill(2.5)", r"math\.ceill"),
        ("math.sqrt(-1)", r"sqrt\(\) failed"),
        ("math.exp(10000)", r"exp\(\) failed"),
        ("log(0)", r"log\(\) failed"),
    ],
)
def test_math_mistakes_are_located(expression: str, message: str) -> None:
    spec = f"net M:\n    input x: [B, 8]\n    n = {expression}\n    return x\n"
    with pytest.raises(EvaluationError, match=message) as caught:
        dsl.validate(spec)
    assert caught.value.span.line == 3
