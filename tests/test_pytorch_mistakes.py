"""The mistakes a PyTorch user makes in a spec, each refused with a message that names it
(issue 16). One golden diagnostic per mistake lives in tests/golden/diagnostics/; these
tests cover the rule across layers."""

from __future__ import annotations

import pytest

import dsl
from dsl.errors import ArgumentError, DSLSyntaxError
from dsl.syntax.net_errors import _describe_expected


def _net(layer: str, shape: str) -> str:
    return f"net N:\n    input x: {shape}\n    y = m(x): {layer}\n    return y\n"


@pytest.mark.parametrize(
    ("layer", "shape", "torch_reading"),
    [
        ("Conv2d(64, 3, padding=1)", "[B, 64, 8, 8]", "in_channels=64, out_channels=3"),
        ("Conv1d(16, 5)", "[B, 16, 40]", "in_channels=16, out_channels=5"),
        ("ConvTranspose2d(32, 2, stride=2)", "[B, 32, 8, 8]", "in_channels=32, out_channels=2"),
        ("Conv3d(8, 4)", "[B, 8, 4, 4, 4]", "in_channels=8, out_channels=4"),
    ],
)
def test_torch_order_is_refused_with_both_readings(
    layer: str, shape: str, torch_reading: str
) -> None:
    with pytest.raises(ArgumentError, match="reads two ways") as caught:
        dsl.validate(_net(layer, shape))
    assert f"PyTorch reads {torch_reading}" in caught.value.message
    assert caught.value.hint and "for netdsl's reading" in caught.value.hint


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        ("Conv2d(64, 3, padding=1)", "[B, 3, 8, 8]"),  # 3 channels arrive: only netdsl's fits
        ("Conv2d(64, kernel_size=3)", "[B, 64, 8, 8]"),  # the documented inferred form
        ("Conv2d(64, 3, 3)", "[B, 64, 8, 8]"),  # all three given: PyTorch's order
        ("Linear(64, 10)", "[B, 64]"),
        ("GroupNorm(8)", "[B, 64, 4, 4]"),
        ("LayerNorm(32)", "[B, 7, 32]"),
    ],
)
def test_one_reading_is_accepted(layer: str, shape: str) -> None:
    dsl.validate(_net(layer, shape))


@pytest.mark.parametrize(
    "line",
    ["y[0] += x", "y.data -= x", "self.conv = Conv2d(8)", "f = lambda y: y", "def forward(x):"],
)
def test_python_habits_name_the_habit_not_grammar_terminals(line: str) -> None:
    text = f"net N:\n    input x: [B, 8]\n    y = x\n    {line}\n    return y\n"
    with pytest.raises(DSLSyntaxError) as caught:
        dsl.validate(text)
    assert "__anon" not in caught.value.message.lower()
    assert caught.value.span.line == 4 and caught.value.hint


def test_expected_tokens_never_list_unnamed_terminals() -> None:
    assert _describe_expected({"__ANON_0", "__ANON_1", "RPAR"}) == "')'"


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ('interpolate(x, scale_factor=2, mode="bicubc")', '"bicubic"'),  # a function, by table
        ('m(x): Conv2d(4, kernel_size=3, padding_mode="zero")', '"zeros"'),  # torch's Literal
        ('m(x): GELU(approximate="Tanh")', '"tanh"'),
        ('m(x): Upsample(scale_factor=2, mode="Bilinear")', '"bilinear"'),
    ],
)
def test_string_choices_are_checked_at_the_string(call: str, words: str) -> None:
    text = f"net N:\n    input x: [B, 3, 8, 8]\n    y = {call}\n    return y\n"
    with pytest.raises(ArgumentError, match="is one of") as caught:
        dsl.validate(text)
    assert words in caught.value.message
    line = text.splitlines()[2]
    span = caught.value.span
    assert line[span.col - 1 : span.end_col - 1].startswith('"')


def test_choices_come_from_torch_where_it_declares_them() -> None:
    from torch import nn

    from dsl.torchlib.choices import declared

    assert declared(nn.Conv2d, "Conv2d", "padding_mode") == (
        "zeros",
        "reflect",
        "replicate",
        "circular",
    )
    assert declared(nn.Conv2d, "Conv2d", "kernel_size") is None


@pytest.mark.parametrize(
    "member",
    [
        "p = Dropout(p)",  # a member by assignment
        "y = p(x): Dropout(0.1)",  # a member defined where it is applied
        "p = Sequential:\n        ReLU()",  # a container member
    ],
)
def test_a_member_named_like_a_parameter_is_refused(member: str) -> None:
    text = (
        f"block Drop(p=0.1):\n    input x\n    {member}\n    return x\n\n"
        "net N:\n    input x: [B, 8]\n    return d(x): Drop()\n"
    )
    result = dsl_validate_errors(text)
    assert any("hides the parameter 'p'" in e.message for e in result), result


def test_a_value_named_like_a_parameter_is_no_member() -> None:
    text = (
        "block Scale(w=2):\n    input x\n    w = w * 2\n    return fc(x): Linear(w)\n\n"
        "net N:\n    input x: [B, 8]\n    return s(x): Scale()\n"
    )
    assert dsl_validate_errors(text) == []


def dsl_validate_errors(text: str) -> list[dsl.DSLError]:
    from dsl.tools.validate import validate_spec

    return validate_spec(text).errors
