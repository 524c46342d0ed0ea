"""The code generator adds in place (`a.add_(b)`, torchvision's `out += identity`) only where
no one can tell (dsl/build/inplace.py); everywhere else the add stays out of place. Outputs
and gradients are compared with hand-written PyTorch."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision
from torch import nn

import dsl
from dsl.build import inplace

RESIDUAL = """
net Residual:
    input x: [B, 8, 6, 6]
    conv = Conv2d(8, kernel_size=3, padding=1, bias=false)
    bn = BatchNorm2d()
    y = bn(conv(x))
    return relu(y + x)
"""


class Residual(nn.Module):
    """What a person writes, out of place."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)) + x)


def _source(model: nn.Module) -> str:
    return type(model).dsl_source  # type: ignore[no-any-return]


def _same_outputs_and_grads(built: nn.Module, reference: nn.Module, x: torch.Tensor) -> None:
    built.load_state_dict(reference.state_dict(), strict=True)
    for model in (built, reference):
        model.train()
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, out2 = built(x1), reference(x2)
    torch.testing.assert_close(out1, out2)
    (out1 * torch.arange(out1.numel()).view_as(out1)).sum().backward()
    (out2 * torch.arange(out2.numel()).view_as(out2)).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    for (name, p1), (_, p2) in zip(built.named_parameters(), reference.named_parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, msg=name)


def test_the_safe_residual_add_is_in_place_and_matches_out_of_place() -> None:
    built = dsl.build_model(RESIDUAL, seed=0)
    assert ".add_(x)" in _source(built)
    x = torch.randn(2, 8, 6, 6)
    before = x.clone()
    _same_outputs_and_grads(built, Residual(), x)
    built.eval()
    with torch.no_grad():
        built(x)
    torch.testing.assert_close(x, before)  # the caller's tensor is never written


def test_the_in_place_version_equals_the_out_of_place_one(monkeypatch: pytest.MonkeyPatch) -> None:
    inplace_model = dsl.build_model(RESIDUAL, seed=0)
    monkeypatch.setattr(inplace, "OWNED_OUTPUT", frozenset())
    plain = dsl.build_model(RESIDUAL.replace("Residual", "ResidualPlain"), seed=0)
    assert ".add_(" not in _source(plain) and ".add_(" in _source(inplace_model)
    _same_outputs_and_grads(inplace_model, plain, torch.randn(2, 8, 6, 6))


class _Sigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x)) + x  # sigmoid's backward reads its output


class _ReadTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return (y + x) * y  # y is read after the add


class _Broadcast(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + x  # the sum is wider than fc's output


class _Input(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(x)  # x is the caller's


UNSAFE: list[tuple[str, str, Callable[[], nn.Module]]] = [
    ("sigmoid output", "fc = Linear(8)\n    act = Sigmoid()\n    return act(fc(x)) + x", _Sigmoid),
    ("read after the add", "fc = Linear(8)\n    y = fc(x)\n    return (y + x) * y", _ReadTwice),
    ("broadcast", "fc = Linear(1)\n    return fc(x) + x", _Broadcast),
    ("input on the left", "fc = Linear(8)\n    return x + fc(x)", _Input),
]


@pytest.mark.parametrize(("case", "body", "reference"), UNSAFE, ids=[u[0] for u in UNSAFE])
def test_an_unsafe_add_stays_out_of_place_and_gradients_match(
    case: str, body: str, reference: Callable[[], nn.Module]
) -> None:
    built = dsl.build_model(f"net Unsafe:\n    input x: [B, 8]\n    {body}\n", seed=0)
    assert ".add_(" not in _source(built), case
    _same_outputs_and_grads(built, reference(), torch.randn(4, 8))


DERIVED = """
net Base:
    input x: [B, 8]
    fc = Linear(8)
    y = fc(x)
    return y + x

net Replaced = Base():
    fc = Identity()
"""


def test_a_derived_net_replacing_members_keeps_its_base_out_of_place() -> None:
    base = dsl.build_model(DERIVED, net="Base", seed=0)
    assert ".add_(x)" in _source(base)
    replaced = dsl.build_model(DERIVED, net="Replaced", seed=0)
    assert ".add_(" not in _source(replaced)  # fc(x) is now x itself
    x = torch.randn(4, 8)
    before = x.clone()
    torch.testing.assert_close(replaced(x), 2 * before)
    torch.testing.assert_close(x, before)


def test_resnet50_is_in_place_where_torchvision_is_and_matches_it() -> None:
    built = dsl.build_model("examples/resnet50.net", seed=0)
    reference = torchvision.models.resnet50()
    blocks = [m for m in built.modules() if type(m).__name__ == "Bottleneck"]
    assert blocks and all(".add_(" in _source(m) for m in blocks)
    # the downsample after the main path, as torchvision's forward computes it
    source = _source(built.layer1[0])
    assert source.index("self.downsample(x)") > source.index("self.bn3(")
    _same_outputs_and_grads(built, reference, torch.randn(1, 3, 64, 64))
