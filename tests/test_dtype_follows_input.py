"""`x.dtype` and tensors made in forward follow the input's dtype when forward runs, as a
hand-written `dtype=x.dtype` does (issue 13): after `model.half()` or `.double()` nothing is
silently computed in, or promoted back to, float32."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

import dsl

SPEC = """
net N:
    input x: [B, 4]
    fc = Linear(4)
    y = fc(x)
    keep = (y > 0).to(x.dtype)
    bias = ones(4) * 0.5
    steps = arange(4)
    return y * keep + bias + steps.sum()
"""


class Reference(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        keep = (y > 0).to(x.dtype)
        bias = torch.ones(4, dtype=x.dtype, device=x.device) * 0.5
        steps = torch.arange(4, device=x.device)
        return y * keep + bias + steps.sum()


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float32])
def test_a_converted_model_computes_in_its_own_dtype(dtype: torch.dtype) -> None:
    built = dsl.build_model(SPEC, seed=0).to(dtype)
    reference = Reference().to(dtype)
    reference.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(1)).to(dtype)
    out = built(x)
    assert out.dtype == dtype
    torch.testing.assert_close(out, reference(x))


def test_the_generated_forward_reads_dtype_when_it_runs() -> None:
    source = inspect.getsource(type(dsl.build_model(SPEC, seed=0)).forward)
    assert "x_dtype = x.dtype" in source
    assert "torch.ones(4, dtype = x_dtype" in source
    assert "torch.arange(4, device = x_device)" in source  # an integer range stays long


def test_a_long_input_gives_made_tensors_no_dtype() -> None:
    spec = "net N:\n    input idx: long[B, T]\n    z = zeros(3)\n    return idx + z.sum().long()\n"
    source = inspect.getsource(type(dsl.build_model(spec, seed=0)).forward)
    assert "dtype" not in source.split("zeros(")[1].split(")")[0]
