"""Build-time programming that Python users reach for (issue 13): `def` functions, loop
targets that unpack, comprehensions, `in` / `not in`, `is` / `is not`, `*args` / `**kwargs`, `x += y`,
value bindings in Sequential bodies, and early `return` inside an `if`."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models._utils import _make_divisible

import dsl
from dsl.errors import (
    ArgumentError,
    EvaluationError,
    LimitError,
    StructureError,
    SymbolicDecisionError,
    UndefinedValueError,
    WorkLimitError,
)
from dsl.syntax.parse_net import parse_net
from dsl.syntax.parse_yaml import parse_yaml
from dsl.syntax.printer import print_net
from dsl.syntax.yaml_printer import print_yaml

MAKE_DIVISIBLE = """
def make_divisible(v, divisor, min_value=none):
    if min_value is none:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    # Make sure that round down does not go down by more than 10%.
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v
"""

CASES = [
    (v, m, d) for v in (3, 16, 24, 30, 40, 96, 160, 1280) for m in (0.35, 0.75, 1.3) for d in (4, 8)
]


def test_make_divisible_equals_torchvisions() -> None:
    values = [v * m for v, m, _ in CASES]
    divisors = [d for _, _, d in CASES]
    spec = (
        MAKE_DIVISIBLE
        + f"""
net Widths(values={values}, divisors={divisors}):
    input x: [B, 4]
    layers = ModuleList:
        for v, d in zip(values, divisors):
            Linear(4, make_divisible(v, d))
    return layers[0](x)
"""
    )
    model = dsl.build_model(spec, seed=0)
    built = [layer.out_features for layer in model.layers]
    assert built == [_make_divisible(v * m, d) for v, m, d in CASES]


def test_recursion_and_its_bound() -> None:
    spec = """
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)

net N(n=15):
    input x: [B, 4]
    fc = Linear(fib(n))
    return fc(x)
"""
    assert dsl.build_model(spec, seed=0).fc.out_features == 610
    endless = spec.replace("    if n < 2:\n        return n\n", "")
    with pytest.raises(LimitError, match="nest more than 32 deep") as caught:
        dsl.validate(endless)
    assert caught.value.span.line == 3


def test_calls_spend_the_work_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETDSL_MAX_WORK", "200000")
    spec = """
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)

net N:
    input x: [B, 4]
    fc = Linear(fib(25))
    return fc(x)
"""
    with pytest.raises(WorkLimitError) as caught:  # 250,000 calls: over 200,000 units
        dsl.validate(spec)
    assert caught.value.span.line in (3, 4, 5)


def test_a_def_returns_early_from_a_loop() -> None:
    spec = """
def first_over(values, limit):
    for v in values:
        if v > limit:
            return v
    return -1

net N:
    input x: [B, 4]
    a = Linear(first_over([2, 8, 16], 4))
    b = Linear(first_over([2, 3], 4) + 10)
    return a(x), b(x)
"""
    model = dsl.build_model(spec, seed=0)
    assert (model.a.out_features, model.b.out_features) == (8, 9)


class _Stage(nn.Module):
    """What `Stage` below is, written by hand."""

    def __init__(self, widths: list[int], strides: list[int]) -> None:
        super().__init__()
        channels = 3
        for i, (c, s) in enumerate(zip(widths, strides)):
            setattr(self, f"conv{i}", nn.Conv2d(channels, c, 3, stride=s, padding=1))
            channels = c
        self.count = len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.count):
            x = getattr(self, f"conv{i}")(x)
        return x


def test_loop_targets_unpack_like_python() -> None:
    spec = """
block Stage(widths, strides):
    input x
    for i, (c, s) in enumerate(zip(widths, strides)):
        conv{i} = Conv2d(c, kernel_size=3, stride=s, padding=1)
        x = conv{i}(x)
    return x

net N:
    input x: [B, 3, 32, 32]
    return stage(x): Stage([8, 16, 24], [1, 2, 2])
"""
    model = dsl.build_model(spec, seed=0)
    reference = _Stage([8, 16, 24], [1, 2, 2])
    reference.load_state_dict(model.stage.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), reference(x))


def test_comprehensions_and_membership() -> None:
    spec = """
net N(widths=[8, 12, 16, 20], skip=[12]):
    input x: [B, 4]
    kept = [w * 2 for w in widths if w not in skip if w < 20]
    pairs = [(i, w) for i, w in enumerate(kept) for _ in range(i + 1)]
    by_name = {"fc" + str(i): w for i, w in enumerate(kept)}
    a = Linear(len(pairs) + (100 if 24 in kept else 0))
    b = Linear(by_name["fc1"] + sum([w for _, w in pairs]))
    return a(x), b(x)
"""
    model = dsl.build_model(spec, seed=0)
    kept = [16, 32]
    assert model.a.out_features == 3 + 0
    assert model.b.out_features == kept[1] + (16 + 32 * 2)


def test_identity_with_none_true_and_false() -> None:
    spec = """
net N(norm=none, bias=true):
    input x: [B, 4]
    fc = Linear(4, 2, bias=bias is not false)
    if norm is not none:
        n = norm()
        y = n(fc(x))
    else:
        y = fc(x)
    return y if x is not none else x
"""
    plain = dsl.build_model(spec, seed=0)
    assert not hasattr(plain, "norm") and plain.fc.bias is not None
    normed = dsl.build_model(spec, seed=0, params={"norm": nn.Tanh, "bias": False})
    x = torch.randn(3, 4)
    torch.testing.assert_close(normed(x), torch.tanh(normed.fc(x)))
    assert normed.fc.bias is None


@pytest.mark.parametrize("expr", ["3 is 3", "x is x", "[1] is not [1]", "x.shape[0] is 2"])
def test_identity_of_values_is_refused(expr: str) -> None:
    spec = f"net N:\n    input x: [B, 4]\n    y = {expr}\n    return x\n"
    with pytest.raises(EvaluationError, match="takes None, True or False") as caught:
        dsl.validate(spec)
    assert caught.value.hint == "compare values with == or !="
    assert (caught.value.span.line, caught.value.span.col) == (3, 9)


def test_a_comprehension_over_tensors_in_forward() -> None:
    spec = """
net N:
    input x: [B, 4, 8, 8]
    a = Conv2d(4, kernel_size=1)
    b = Conv2d(4, kernel_size=1)
    return cat([conv(x) for conv in [a(x), b(x)] if true], dim=1)
"""
    with pytest.raises(EvaluationError):  # `conv(x)` applies a tensor: refused, located
        dsl.validate(spec)
    spec = spec.replace(
        "[conv(x) for conv in [a(x), b(x)] if true]", "[y * 2 for y in (a(x), b(x))]"
    )
    model = dsl.build_model(spec, seed=0)
    x = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(model(x), torch.cat([model.a(x) * 2, model.b(x) * 2], dim=1))


def test_star_args_and_keyword_dicts() -> None:
    spec = (
        MAKE_DIVISIBLE
        + """
block Head(classes, dropout=0.0):
    input x
    drop = Dropout(dropout)
    fc = Linear(classes)
    return fc(drop(x))

net N:
    input x: [B, 3, 16, 16]
    size = [3, 1]
    options = {"padding": 1, "bias": false}
    conv = Conv2d(3, make_divisible(*[30, 8]), *size, **options)
    y = conv(x).mean(dim=[2, 3])
    shape = (-1, 4, 8)
    y = torch.cat([*[y, y]], dim=1).reshape(*shape).flatten(1)
    return head(y): Head(**{"classes": 10, "dropout": 0.5})
"""
    )
    model = dsl.build_model(spec, seed=0)
    conv = model.conv
    assert (conv.out_channels, conv.kernel_size, conv.stride) == (32, (3, 3), (1, 1))
    assert conv.padding == (1, 1) and conv.bias is None
    assert model.head.drop.p == 0.5 and model.head.fc.out_features == 10
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    y = model.conv(x).mean(dim=[2, 3])
    y = torch.cat([y, y], dim=1).reshape(-1, 4, 8).flatten(1)
    torch.testing.assert_close(model(x), model.head.fc(y))


def test_augmented_assignment_is_a_new_value_never_in_place() -> None:
    spec = """
net N:
    input x: [B, 4]
    n = 2
    n **= 3
    x += 1
    fc = Linear(4)
    y = fc(x)
    y += x
    y *= n
    return y
"""
    model = dsl.build_model(spec, seed=0)
    source = inspect.getsource(type(model).forward)
    assert "x.add_(" not in source and "iadd" not in source  # the caller's tensor is kept
    x = torch.randn(3, 4, requires_grad=True)
    before = x.detach().clone()
    out = model(x)
    torch.testing.assert_close(out, (model.fc(before + 1) + before + 1) * 8)
    torch.testing.assert_close(x.detach(), before)  # the input is untouched
    out.sum().backward()  # no in-place update broke autograd
    expected = torch.autograd.grad(((model.fc(x + 1) + x + 1) * 8).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)


def test_values_bound_in_a_sequential_body() -> None:
    spec = """
net N(width=8):
    input x: [B, 4]
    body = Sequential:
        c = width
        Linear(c)
        ReLU()
        c *= 2
        for i in range(2):
            Linear(c + i)
    return body(x)
"""
    model = dsl.build_model(spec, seed=0)
    assert [m.out_features for m in model.body if isinstance(m, nn.Linear)] == [8, 16, 17]
    assert [name for name, _ in model.body.named_children()] == ["0", "1", "2", "3"]
    leaked = spec.replace("    return body(x)", "    fc = Linear(c)\n    return fc(body(x))")
    with pytest.raises(UndefinedValueError, match="'c' is not defined"):
        dsl.validate(leaked)


@pytest.mark.parametrize("short", [True, False])
def test_early_return_in_a_graph_body(short: bool) -> None:
    spec = """
block Maybe(short):
    input x
    if short:
        return x
    fc = Linear(4)
    return relu(fc(x))

net N(short=true):
    input x: [B, 4]
    return m(x): Maybe(short)
"""
    model = dsl.build_model(spec, params={"short": short}, seed=0)
    x = torch.randn(2, 4)
    expected = x if short else torch.relu(model.m.fc(x))
    torch.testing.assert_close(model(x), expected)
    assert hasattr(model.m, "fc") is not short


@pytest.mark.parametrize(
    "returning",
    [
        "    return x\n",
        "    if n > 1:\n        return x\n    else:\n        return x * 2\n",
        "    if training:\n        return x\n    else:\n        return x * 2\n",
    ],
)
def test_nothing_may_follow_a_statement_that_always_returns(returning: str) -> None:
    spec = f"net N(n=2):\n    input x: [B, 4]\n{returning}    y = x\n"
    with pytest.raises(StructureError, match="nothing may follow 'return'") as caught:
        dsl.validate(spec)
    assert caught.value.span.line == returning.count("\n") + 3


def test_a_def_decision_on_a_symbolic_size_is_refused() -> None:
    spec = """
def wide(c):
    return c > 48

block Pick:
    input x: [B, C]
    fc = Linear(64 if wide(x.shape[1]) else 8)
    return fc(x)

net N:
    input x: [B, C]
    return p(x): Pick()
"""
    with pytest.raises(SymbolicDecisionError) as caught:
        dsl.validate(spec, sizes={"C": 32})
    assert caught.value.span.line == 7
    concrete = spec.replace("input x: [B, C]\n    return p", "input x: [B, 32]\n    return p")
    assert dsl.build_model(concrete, seed=0).p.fc.out_features == 8


def test_defs_are_imported_and_checked_unused(tmp_path: Path) -> None:
    (tmp_path / "helpers.net").write_text(MAKE_DIVISIBLE, encoding="utf-8")
    main = tmp_path / "main.net"
    main.write_text(
        "from helpers import make_divisible\n\nnet N:\n    input x: [B, 4]\n"
        "    fc = Linear(make_divisible(30, 8))\n    return fc(x)\n",
        encoding="utf-8",
    )
    assert dsl.build_model(main, seed=0).fc.out_features == 32
    unused = (
        "def f(a):\n    return a + undefined_name\n\nnet N:\n    input x: [B, 4]\n    return x\n"
    )
    with pytest.raises(UndefinedValueError, match="undefined_name"):
        dsl.validate(unused)


def test_keyword_given_twice_through_a_dict() -> None:
    spec = "net N:\n    input x: [B, 4]\n    fc = Linear(4, bias=true, **{'bias': false})\n    return fc(x)\n"
    with pytest.raises(ArgumentError, match="'bias' is given twice"):
        dsl.validate(spec)


ALL_CONSTRUCTS = (
    MAKE_DIVISIBLE
    + """
block Stage(widths, strides):
    input x
    for i, (c, s) in enumerate(zip(widths, strides)):
        conv{i} = Conv2d(c, kernel_size=3, stride=s, padding=1)
        x = conv{i}(x)
    if len(widths) not in [1, 2]:
        return x
    x += x
    return x

net N(mult=0.75):
    input x: [B, 3, 32, 32]
    cs = [make_divisible(c * mult, 8) for c in [16, 24, 40]]
    options = {"kernel_size": 1}
    y = stage(x): Stage(cs, [1, 2, 2])
    head = Sequential:
        w = cs[-1]
        w *= 2
        Conv2d(w, *[1], **{"bias": false})
    return head(y)
"""
)


def test_every_construct_round_trips_through_fmt_and_convert() -> None:
    spec = parse_net(ALL_CONSTRUCTS)
    text = print_net(spec)
    assert parse_net(text) == spec and print_net(parse_net(text)) == text
    assert parse_yaml(print_yaml(spec)) == spec
    net, yaml = dsl.build_model(text, seed=0), dsl.build_model(print_yaml(spec), seed=0)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(net(x), yaml(x))
    assert net.head[0].out_channels == 64


def _doc_block(tag: str, marker: str) -> str:
    from tests.test_docs import blocks

    return next(text for where, text in blocks(tag) if "language.md" in where and marker in text)


def test_the_language_docs_examples_compute_what_they_say() -> None:
    widths = dsl.build_model(_doc_block("net", "net Widths"), seed=0)
    convs = [widths.stage.conv0, widths.stage.conv1]
    assert [c.out_channels for c in convs] == [16, 32]  # the comment's `# [16, 32]`
    assert [c.stride for c in convs] == [(2, 2), (2, 2)]
    idioms = dsl.build_model(_doc_block("net", "net Idioms"), seed=0).eval()
    assert [m.out_channels for m in idioms.features if isinstance(m, nn.Conv2d)] == [16, 32]
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(idioms(x), idioms.head.fc(idioms.features(x).mean(dim=[2, 3]) + 1))
    wide = dsl.build_model(_doc_block("yaml", "def: widen"), seed=0)
    assert (wide.fc0.out_features, wide.fc1.out_features) == (8, 16)


def test_a_derived_nets_body_refuses_augmented_replacement() -> None:
    spec = "net R = torchvision.models.resnet18():\n    input x: [B, 3, 64, 64]\n    fc += Linear(10)\n"
    with pytest.raises(StructureError, match="replaces members") as caught:
        dsl.validate(spec)
    assert caught.value.span.line == 3


def test_a_value_computed_by_a_def_may_rebind_a_parameter(tmp_path: Path) -> None:
    spec = tmp_path / "rebind.net"
    spec.write_text(
        "def half(n):\n    return n // 2\n\ndef f(c):\n    c = half(c)\n    return c\n\n"
        "net N(c=8):\n    c = half(c)\n    input x: [B, 4]\n    fc = Linear(f(c))\n    return fc(x)\n",
        encoding="utf-8",
    )
    from dsl.cli import validate_file

    assert validate_file(spec, {}) == []  # `c = half(c)` is a value, no member hiding `c`
    assert dsl.build_model(spec, seed=0).fc.out_features == 2
