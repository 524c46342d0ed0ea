"""examples/masked_attention.net against the same network written in plain PyTorch: the same
initial weights for a seed, strict loading, equal outputs in train and eval mode under the
same seed, at sequence lengths other than the representative one (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import dsl

SPEC = Path(__file__).resolve().parent.parent / "examples" / "masked_attention.net"


class MaskedAttention(nn.Module):
    def __init__(self, d_model: int = 32, n_head: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        mask = torch.triu(torch.ones(T, T, device=x.device), diagonal=1).bool()
        y, _ = self.attn(x, x, x, need_weights=False, attn_mask=mask)
        return y


def test_same_initial_weights_for_the_same_seed_and_strict_loading() -> None:
    model = dsl.build_model(SPEC, seed=3)
    torch.manual_seed(3)
    reference = MaskedAttention()
    assert list(model.state_dict()) == list(reference.state_dict())
    for ours, theirs in zip(model.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(ours, theirs)
    reference.load_state_dict(model.state_dict(), strict=True)


@pytest.mark.parametrize("length", [1, 7, 50])
@pytest.mark.parametrize("training", [True, False])
def test_equal_outputs_in_train_and_eval_mode(length: int, training: bool) -> None:
    model = dsl.build_model(SPEC, seed=0)
    reference = MaskedAttention()
    reference.load_state_dict(model.state_dict(), strict=True)
    model.train(training), reference.train(training)
    x = torch.randn(2, length, 32)
    torch.manual_seed(11)
    ours = model(x)
    torch.manual_seed(11)
    theirs = reference(x)
    torch.testing.assert_close(ours, theirs)
    if not training:  # the mask is causal: the first position sees only itself
        torch.testing.assert_close(model(x[:, :1]), ours[:, :1])
