"""Functional ops in graph bodies follow the module's mode (train/eval), as a hand-written
forward's do: `dropout(x, p)` stops dropping after `model.eval()` (issue 13)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dsl
from dsl.torchlib import catalog


class Functional(nn.Module):
    """What a hand-written module does with a functional op that has a `training` flag."""

    def __init__(self, fn: Callable[..., torch.Tensor], *args: float) -> None:
        super().__init__()
        self.fn, self.args = fn, args

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, *self.args, training=self.training)


class Attention(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dropout_p = self.p if self.training else 0.0
        return F.scaled_dot_product_attention(x, x, x, dropout_p=dropout_p)


def outputs(model: nn.Module, x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return model(x)


def assert_same_in_both_modes(model: nn.Module, ref: nn.Module, x: torch.Tensor) -> None:
    """Equal outputs under the same seed in train mode, and deterministic equal outputs
    in eval mode."""
    model.train(), ref.train()
    assert torch.equal(outputs(model, x), outputs(ref, x))
    assert not torch.equal(outputs(model, x, 1), outputs(model, x, 2))  # it does drop
    model.eval(), ref.eval()
    assert torch.equal(outputs(model, x, 1), outputs(model, x, 2))
    assert torch.equal(outputs(model, x), outputs(ref, x))


# Input shapes each op accepts; every op with a `training` parameter is derived, not listed.
_SHAPES = {"dropout1d": [4, 6, 8], "dropout2d": [4, 6, 8, 8], "dropout3d": [2, 4, 6, 8, 8]}


def _training_ops() -> list[str]:
    return [
        name
        for name in catalog.op_names()
        if "dropout" in name
        and (params := catalog.parameters(catalog.function(name))) is not None
        and "training" in params.names
    ]


def test_the_training_rule_is_derived_from_signatures() -> None:
    assert {"dropout", "alpha_dropout", "feature_alpha_dropout", "dropout2d"} <= set(
        _training_ops()
    )


@pytest.mark.parametrize("name", _training_ops())
def test_functional_dropouts_follow_eval_mode(name: str) -> None:
    shape = _SHAPES.get(name, [4, 6, 8, 8])
    spec = f"net N:\n    input x: {shape}\n    return {name}(x, 0.5)\n"
    model = dsl.build_model(spec, seed=0)
    assert "training = self.training" in type(model).dsl_source
    assert_same_in_both_modes(model, Functional(getattr(F, name), 0.5), torch.randn(shape))


@pytest.mark.parametrize("call", ["torch.nn.functional.dropout(x, 0.5)", "F.dropout(x, p=0.5)"])
def test_qualified_dropout_follows_eval_mode(call: str) -> None:
    model = dsl.build_model(f"net N:\n    input x: [8, 16]\n    return {call}\n", seed=0)
    assert_same_in_both_modes(model, Functional(F.dropout, 0.5), torch.randn(8, 16))


@pytest.mark.parametrize("call", ["dropout_p=0.4", "None, 0.4"])
def test_attention_dropout_applies_in_training_only(call: str) -> None:
    spec = f"net N:\n    input x: [2, 3, 8, 16]\n    return scaled_dot_product_attention(x, x, x, {call})\n"
    model = dsl.build_model(spec, seed=0)
    assert_same_in_both_modes(model, Attention(0.4), torch.randn(2, 3, 8, 16))


@pytest.mark.parametrize("flag", ["training=true", "true"])
def test_a_training_flag_the_spec_passes_is_kept(flag: str) -> None:
    spec = f"net N:\n    input x: [8, 16]\n    return dropout(x, 0.5, {flag})\n"
    model = dsl.build_model(spec, seed=0).eval()
    x = torch.randn(8, 16)
    assert not torch.equal(outputs(model, x, 1), outputs(model, x, 2))
    assert "self.training" not in type(model).dsl_source


def test_a_block_with_functional_dropout_pickles() -> None:
    import pickle

    model = dsl.build_model("net N:\n    input x: [8, 16]\n    return dropout(x, 0.5)\n")
    copy = pickle.loads(pickle.dumps(model)).eval()
    x = torch.randn(8, 16)
    assert torch.equal(copy(x), x)
