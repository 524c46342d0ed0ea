"""Printing then parsing gives back the same IR, in both formats."""

from __future__ import annotations

import pytest
from hypothesis import given

from dsl import ir
from dsl.errors import DSLError
from dsl.syntax.parse_net import parse_expression, parse_net
from dsl.syntax.parse_yaml import parse_yaml
from dsl.syntax.printer import print_expr, print_net
from dsl.syntax.yaml_printer import print_yaml
from tests.strategies import expressions, spec_files


@given(expressions)
def test_expression_roundtrip(node: ir.ExprNode) -> None:
    assert parse_expression(print_expr(node)) == node


@given(spec_files)
def test_net_roundtrip(spec: ir.SpecFile) -> None:
    text = print_net(spec)
    assert parse_net(text) == spec
    # The printed text is canonical: comments and docs survive, nothing moves.
    assert print_net(parse_net(text)) == text


@given(spec_files)
def test_yaml_roundtrip(spec: ir.SpecFile) -> None:
    assert parse_yaml(print_yaml(spec)) == spec


@given(spec_files)
def test_net_yaml_net(spec: ir.SpecFile) -> None:
    through_yaml = parse_yaml(print_yaml(parse_net(print_net(spec))))
    assert parse_net(print_net(through_yaml)) == spec


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("a - (b - c)", "a - (b - c)"),
        ("(a - b) - c", "a - b - c"),
        ("a ** b ** c", "a ** b ** c"),
        ("(a ** b) ** c", "(a ** b) ** c"),
        ("(-a) ** b", "(-a) ** b"),
        ("-a ** b", "-a ** b"),
        ("(-1) ** 2", "(-1) ** 2"),
        ("-(1)", "-(1)"),
        ("(a < b) == c", "(a < b) == c"),
        ("not (a and b) or c", "not (a and b) or c"),
        ("(a if b else c) if d else e", "(a if b else c) if d else e"),
        ("a if b else (c if d else e)", "a if b else c if d else e"),
        ("(1).real", "(1).real"),
        ("(-1)[0]", "(-1)[0]"),
        ("x[a, ::2]", "x[a, ::2]"),
        ("x[(a,)]", "x[a,]"),
        ("f(a, k=(b, c))", "f(a, k=(b, c))"),
        ('"a\\"b\\n"', '"a\\"b\\n"'),
        ("1e+16", "1e+16"),
    ],
)
def test_print_expr_parentheses(text: str, printed: str) -> None:
    assert print_expr(parse_expression(text)) == printed


def test_unprintable_values_are_dsl_errors() -> None:
    with pytest.raises(DSLError):
        print_expr(ir.Const(value=float("inf")))
    with pytest.raises(DSLError):
        print_expr(ir.Container(kind="Sequential"))


CANONICAL = """\
from blocks.common import Down
from "./parts.net" import Stem

# Two convolutions.
# Each one is followed by a ReLU.
block DoubleConv(out, mid=none):
    # the main path
    double_conv = Sequential:
        Conv2d(mid if mid != none else out, kernel_size=3, padding=1)
        ReLU(inplace=true)

block Up(out, bilinear=true):
    input x1, x2
    if bilinear:
        up = Upsample(scale_factor=2, mode="bilinear")
    # otherwise a learned upsampling
    elif out > 2:
        up = ConvTranspose2d(x1.shape[1] // 2, kernel_size=2, stride=2)
    else:
        up = none
    return conv(cat([x2, up(x1)], dim=1))

net Heads(n=2) = ModuleDict:
    cls = Linear(n)
    box = Linear(4)

net UNet(n_channels=3):
    input x: [B, n_channels, H, W], idx: long[B]
    # a separate input
    input y
    param w: long[2, 3] = normal(0, 0.01), requires_grad=false
    x1 = inc(x): DoubleConv(64)
    for i in range(4):
        down{i + 1} = Down(64 * 2 ** (i + 1))
    init:
        Conv2d.weight: kaiming_normal(mode="fan_out")
        "layer*.bn2.weight": zeros()
        resnet()
    return x1, x: Sequential(run="chain"):
        ReLU()

# the end
"""


def test_canonical_text_is_a_fixed_point() -> None:
    assert print_net(parse_net(CANONICAL)) == CANONICAL


def test_canonical_text_through_yaml() -> None:
    spec = parse_net(CANONICAL)
    assert parse_yaml(print_yaml(spec)) == spec
