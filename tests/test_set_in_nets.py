"""`set()` in an ordinary net: it changes a member declared above before forward applies it,
so shapes are inferred with the change; after the member is applied it is refused.
Compared with the same model written in plain PyTorch and changed by attribute."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dsl

BODY = """
block Body(c):
    input x
    conv1 = Conv2d(c, c, 3, padding=1)
    conv2 = Conv2d(out_channels=c, kernel_size=3, padding=1)
    return conv2(relu(conv1(x)))
"""


def _net(settings: str, blocks: str = "body = Body(8)", apply: str = "body(stem(x))") -> str:
    return (
        BODY
        + "\nnet N:\n    input x: [B, 3, 16, 16]\n    stem = Conv2d(3, 8, 3, padding=1)\n"
        + f"    {blocks}\n{settings}    return {apply}\n"
    )


class RefBody(nn.Module):
    def __init__(self, c: int, mid: int | None = None, kernel: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, mid or c, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv2d(mid or c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class RefNet(nn.Module):
    def __init__(self, mid: int | None = None, kernel: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.body = RefBody(8, mid, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x))


def _same(model: nn.Module, ref: nn.Module) -> None:
    assert list(model.state_dict()) == list(ref.state_dict())
    for a, b in zip(model.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b)  # the same initial weights for the same seed
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model(x), ref(x))


def test_set_changes_a_layer_inside_a_block_like_attributes_after_construction() -> None:
    model = dsl.build_model(_net('    set("body.conv1", dilation=2, padding=2)\n'), seed=0)
    torch.manual_seed(0)
    ref = RefNet()
    ref.body.conv1.dilation, ref.body.conv1.padding = (2, 2), (2, 2)
    assert model.body.conv1.dilation == (2, 2) and model.body.conv2.dilation == (1, 1)
    _same(model, ref)


def test_shapes_are_inferred_with_the_change() -> None:
    """conv2 reads its in_channels from conv1's output, as set() left it."""
    model = dsl.build_model(_net('    set("body.conv1", out_channels=16)\n'), seed=0)
    torch.manual_seed(0)
    ref = RefNet(mid=16)
    assert model.body.conv2.in_channels == 16
    _same(model, ref)


def test_set_replaces_a_layer_inside_a_block_where_it_is_declared() -> None:
    """The new layer takes the old one's place (and its place in the random stream); the
    layers after it read their input sizes from it."""
    new = "Conv2d(out_channels=16, kernel_size=5, padding=2)"
    model = dsl.build_model(_net(f'    set("body.conv1", {new})\n'), seed=0)
    torch.manual_seed(0)
    ref = RefNet(mid=16, kernel=5)
    assert model.body.conv1.kernel_size == (5, 5) and model.body.conv2.in_channels == 16
    _same(model, ref)


def test_set_reaches_through_nested_blocks_and_direct_layers() -> None:
    spec = BODY + (
        "\nblock Outer:\n    input x\n    body = Body(8)\n    return body(x)\n"
        "\nnet N:\n    input x: [B, 3, 16, 16]\n    stem = Conv2d(3, 8, 3, padding=1)\n"
        '    outer = Outer()\n    set("stem", bias=False)\n'
        '    set("outer.body.conv2", padding=0)\n    return outer(stem(x))\n'
    )
    model = dsl.build_model(spec)
    assert model.stem.bias is None
    assert model.outer.body.conv2.padding == (0, 0)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 8, 14, 14)


def test_instances_of_one_block_keep_their_own_settings() -> None:
    spec = _net(
        '    set("b2.conv1", dilation=2, padding=2)\n',
        "b1 = Body(8)\n    b2 = Body(8)",
        "b2(b1(stem(x)))",
    )
    model = dsl.build_model(spec)
    assert model.b1.conv1.dilation == (1, 1) and model.b2.conv1.dilation == (2, 2)


def test_a_pattern_reaches_every_matching_layer_like_a_loop_of_attributes() -> None:
    spec = _net(
        '    set("b*.conv[12]", dilation=2, padding=2)\n    set("*", padding=0)\n',
        "b1 = Body(8)\n    b2 = Body(8)",
        "b2(b1(stem(x)))",
    )
    model = dsl.build_model(spec, seed=0)
    ref = nn.Sequential()
    ref.stem = nn.Conv2d(3, 8, 3, padding=1)
    ref.b1, ref.b2 = RefBody(8), RefBody(8)
    for name, conv in ref.named_modules():
        if name.startswith("b") and isinstance(conv, nn.Conv2d):
            conv.dilation, conv.padding = (2, 2), (2, 2)
    ref.stem.padding = (0, 0)
    x = torch.randn(2, 3, 16, 16)
    reference = ref.b2(ref.b1(ref.stem(x)))
    assert list(model.state_dict()) == list(ref.state_dict())
    model.load_state_dict(ref.state_dict(), strict=True)
    torch.testing.assert_close(model(x), reference)
    assert model(x).shape == (2, 8, 14, 14)  # inferred with the stem's padding 0


@pytest.mark.parametrize(
    ("settings", "apply", "message"),
    [
        (
            '    y = body(stem(x))\n    set("body.conv1", dilation=2)\n',
            "y",
            "after 'body' is applied",
        ),
        ('    set("body.conv3", dilation=2)\n', "body(stem(x))", "has no member 'conv3'"),
        ('    set("body.conv1", dilaton=2)\n', "body(stem(x))", "has no setting 'dilaton'"),
        ('    set("body", c=4)\n', "body(stem(x))", "'body' is a block"),
        ('    set("bdy.conv1", dilation=2)\n', "body(stem(x))", "no member 'bdy'"),
        ('    set("stem", Conv2d(3, 8, 1))\n', "body(stem(x))", "declare 'stem' as that layer"),
        ('    set("body.conv1", 3)\n', "body(stem(x))", "second argument is a new layer"),
        ('    set("bo*.conv9", dilation=2)\n', "body(stem(x))", "has no member 'conv9'"),
        ('    set("z*", dilation=2)\n', "body(stem(x))", "'z\\*' matches no layer"),
        ('    set("b*.c*", Conv2d(8, 8, 1))\n', "body(stem(x))", "takes an exact path"),
    ],
)
def test_misuse_is_a_located_error(settings: str, apply: str, message: str) -> None:
    spec = _net(settings, apply=apply)
    with pytest.raises(dsl.DSLError, match=message) as info:
        dsl.build_model(spec)
    span = info.value.span
    assert span is not None
    assert spec.splitlines()[span.line - 1].lstrip().startswith("set(")  # the set() line
