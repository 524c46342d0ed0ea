"""Modules applied with keyword and non-tensor arguments, as torch's forward takes them:
`attn(x, x, x, need_weights=false, attn_mask=mask)`, `lstm(x, (h0, c0))` (issue 13)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dsl
from dsl.errors import DSLError

ATTENTION = """\
net Masked:
    input x: [2, 5, 16]
    attn = MultiheadAttention(16, 4, dropout=0.1, batch_first=true)
    mask = triu(ones(5, 5), diagonal=1).bool()
    y, _ = attn(x, x, x, need_weights=false, attn_mask=mask)
    return y
"""


class Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, dropout=0.1, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.triu(torch.ones(5, 5, device=x.device), diagonal=1).bool()
        y, _ = self.attn(x, x, x, need_weights=False, attn_mask=mask)
        return y


RECURRENT = """\
net Recurrent:
    input x: [3, 4, 6]
    input h0: [1, 3, 5]
    input c0: [1, 3, 5]
    lstm = LSTM(input_size=6, hidden_size=5, batch_first=true)
    out, state = lstm(x, (h0, c0))
    h, c = state
    return out, h, c
"""


def _same_weights_and_outputs(model: nn.Module, ref: nn.Module, *inputs: torch.Tensor) -> None:
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values())
    )
    for mode in (True, False):
        model.train(mode), ref.train(mode)
        torch.manual_seed(7)
        out = model(*inputs)
        torch.manual_seed(7)
        expected = ref(*inputs)
        assert all(
            torch.equal(a, b)
            for a, b in zip(
                torch.utils._pytree.tree_leaves(out), torch.utils._pytree.tree_leaves(expected)
            )
        )


def test_masked_multi_head_attention_matches_plain_pytorch() -> None:
    model = dsl.build_model(ATTENTION, seed=0)
    torch.manual_seed(0)
    ref = Masked()
    _same_weights_and_outputs(model, ref, torch.randn(2, 5, 16))
    assert "need_weights = False, attn_mask = mask" in type(model).dsl_source


def test_lstm_with_an_initial_state_matches_plain_pytorch() -> None:
    model = dsl.build_model(RECURRENT, seed=0)
    torch.manual_seed(0)
    ref = nn.LSTM(input_size=6, hidden_size=5, batch_first=True)

    class Ref(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = ref

        def forward(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor) -> tuple:
            out, (h, c) = self.lstm(x, (h0, c0))
            return out, h, c

    inputs = torch.randn(3, 4, 6), torch.randn(1, 3, 5), torch.randn(1, 3, 5)
    _same_weights_and_outputs(model, Ref(), *inputs)


def test_a_keyword_output_shape_is_checked() -> None:
    spec = ATTENTION.replace("need_weights=false", "need_weights=true").replace(
        "    return y\n", "    return y + _\n"
    )
    with pytest.raises(DSLError) as info:
        dsl.build_model(spec)  # the weights [2, 5, 5] do not add to y [2, 5, 16]
    assert info.value.span.line == 6


def test_none_is_an_argument() -> None:
    spec = """\
net N:
    input x: [2, 5, 16]
    layer = TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=true)
    return layer(x, None, is_causal=false)
"""
    model = dsl.build_model(spec, seed=0).eval()
    x = torch.randn(2, 5, 16)
    assert torch.equal(model(x), model.layer(x))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("b(x, scale=2)", "positional inputs only"),
        ("b(x, 2)", "b is applied to int; modules take tensors"),
        ("fc(x, b)", "module 'b' is not one"),
        ("fc(x, training)", "'training' is known only when forward runs"),
    ],
)
def test_misapplied_modules_are_located_errors(call: str, message: str) -> None:
    spec = f"""\
block B:
    input x
    return x

net N:
    input x: [2, 4]
    fc = Linear(4, 4)
    b = B()
    return {call}
"""
    with pytest.raises(DSLError) as info:
        dsl.build_model(spec)
    assert message in info.value.message
    assert info.value.span.line == 9


def test_a_constructor_taking_args_gets_its_positional_arguments_by_position() -> None:
    # nn.LSTM's __init__ is (*args, **kwargs): LSTM(16, 8) means input_size=16, hidden_size=8.
    spec = "net L:\n    input x: [B, T, 16]\n    lstm = LSTM(16, 8, batch_first=true)\n    out, state = lstm(x)\n    return out\n"
    model = dsl.build_model(spec, seed=0)
    torch.manual_seed(0)
    reference = torch.nn.LSTM(16, 8, batch_first=True)
    for ours, theirs in zip(model.lstm.state_dict().values(), reference.state_dict().values()):
        torch.testing.assert_close(ours, theirs)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(model(x), reference(x)[0])


def test_a_block_passed_to_a_module_is_a_located_error() -> None:
    # Found by the fuzz campaign: `up(DoubleConv)` reached torch as an AttributeError.
    spec = (
        "block Double:\n    input x\n    return x * 2\n\n"
        "net N:\n    input x: [B, 4, 8, 8]\n    up = Upsample(scale_factor=2)\n    return up(Double)\n"
    )
    with pytest.raises(DSLError, match="block Double is not one") as caught:
        dsl.validate(spec)
    assert caught.value.span.line == 8
