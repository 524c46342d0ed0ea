"""`&`, `|` and `~` (issue 13): boolean algebra on masks in forward, bitwise on build-time
integers, with Python's precedence, and printed back as written."""

from __future__ import annotations

import torch

import dsl
from dsl import ir
from dsl.syntax.parse_net import parse_expression
from dsl.syntax.printer import print_expr

SPEC = """
net Masks:
    input x: [B, T, 8]
    pad = x.sum(-1) == 0
    big = x.abs().amax(-1) > 1
    keep = ~pad & ~big | (x[:, :, 0] < -3)
    flags = 6 & 3 | 8
    return x.masked_fill(keep.unsqueeze(-1), 0.0) * flags
"""


def test_masks_combine_as_in_torch_and_integers_bitwise() -> None:
    model = dsl.build_model(SPEC)
    x = torch.randn(2, 5, 8) * 2
    x[0, 1] = 0
    pad, big = x.sum(-1) == 0, x.abs().amax(-1) > 1
    keep = ~pad & ~big | (x[:, :, 0] < -3)
    torch.testing.assert_close(model(x), x.masked_fill(keep.unsqueeze(-1), 0.0) * (6 & 3 | 8))


def test_precedence_is_pythons() -> None:
    tree = parse_expression("a | b & c == d")
    assert isinstance(tree, ir.BinOp) and tree.op == "=="
    assert isinstance(tree.left, ir.BinOp) and tree.left.op == "|"
    assert isinstance(tree.left.right, ir.BinOp) and tree.left.right.op == "&"
    assert parse_expression("~a + b") == parse_expression("(~a) + b")


def test_printed_back_canonically() -> None:
    for text in ("a | b & c", "(a | b) & c", "~(a & b)", "~a + 1"):
        assert print_expr(parse_expression(text)) == text
    # `|` binds tighter than `==`, as in Python: the parentheses were redundant.
    assert print_expr(parse_expression("x == (a | b)")) == "x == a | b"
    assert parse_expression("x == a | b") == parse_expression("x == (a | b)")
