"""examples/googlenet.net against torchvision's GoogLeNet (issue 13): the same module tree
and state_dict keys, strict loading both ways, the same initial weights for the same seed
(torchvision's init_weights=True: trunc_normal for Conv2d and Linear, BatchNorm 1/0), a
tensor in eval mode and torchvision's GoogLeNetOutputs fields (logits, aux2, aux1) in
training, equal under the same seed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import dsl

SPEC = Path(__file__).resolve().parent.parent / "examples" / "googlenet.net"
CLASSES = 10


def reference(aux_logits: bool = True) -> nn.Module:
    return torchvision.models.googlenet(
        weights=None, aux_logits=aux_logits, init_weights=True, num_classes=CLASSES
    )


@pytest.fixture(scope="module")
def pair() -> tuple[nn.Module, nn.Module]:
    model = dsl.build_model(SPEC, seed=4, params={"num_classes": CLASSES})
    torch.manual_seed(4)
    return model, reference()


def test_same_tree_keys_and_initial_weights_for_the_same_seed(
    pair: tuple[nn.Module, nn.Module],
) -> None:
    model, theirs = pair
    assert [name for name, _ in model.named_modules()] == [
        name for name, _ in theirs.named_modules()
    ]
    assert list(model.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert model.conv1.bn.eps == theirs.conv1.bn.eps == 0.001
    assert model.inception4a.branch3[1].conv.kernel_size == (3, 3)  # torchvision's "5x5"


@pytest.mark.parametrize("training", [False, True])
def test_outputs_equal_torchvision_in_both_modes(training: bool) -> None:
    model = dsl.build_model(SPEC, seed=0, params={"num_classes": CLASSES}, sizes={"H": 64})
    theirs = reference()
    theirs.load_state_dict(model.state_dict(), strict=True)
    model.load_state_dict(reference().state_dict(), strict=True)
    theirs.load_state_dict(model.state_dict(), strict=True)
    model.train(training), theirs.train(training)
    x = torch.randn(2, 3, 96, 80)
    torch.manual_seed(7)
    ours = model(x)
    torch.manual_seed(7)
    expected = theirs(x)
    if not training:
        assert isinstance(ours, torch.Tensor) and isinstance(expected, torch.Tensor)
        torch.testing.assert_close(ours, expected)
        return
    assert isinstance(ours, tuple) and len(ours) == 3
    assert type(expected).__name__ == "GoogLeNetOutputs"
    for field, got in zip(expected._fields, ours):  # logits, aux_logits2, aux_logits1
        torch.testing.assert_close(got, getattr(expected, field), msg=field)
    # BatchNorm's running statistics moved alike
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, msg=key)


def test_without_auxiliary_heads_loads_torchvision_without_them() -> None:
    model = dsl.build_model(SPEC, seed=1, params={"num_classes": CLASSES, "aux_logits": False})
    torch.manual_seed(1)
    theirs = reference(aux_logits=False)
    assert not hasattr(model, "aux1")
    for key, value in theirs.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    model.train()
    x = torch.randn(1, 3, 64, 64)
    torch.manual_seed(2)
    ours = model(x)
    torch.manual_seed(2)
    torch.testing.assert_close(ours, theirs(x))  # a tensor in training too


ONE_MODE = """
net AuxHead:
    input x: [N, 16]
    stem = Linear(16, 16)
    aux = Linear(16, 3)
    head = Linear(16, 10)
    x = stem(x)
    if training:
        side = aux(dropout(x, 0.5))
    if not training:
        tag = x.sum(1)
    logits = head(dropout(x, 0.5))
    if training:
        return logits, side
    return logits, tag
"""


def test_a_tensor_given_in_one_mode_is_read_by_a_later_branch_of_that_mode() -> None:
    """GoogLeNet's pattern: the auxiliary head runs where the network computes it (before
    the main dropout draws), and the value is None in the other mode."""
    model = dsl.build_model(ONE_MODE, seed=0)

    def by_hand(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = model.stem(x)
        side = model.aux(torch.nn.functional.dropout(h, 0.5)) if model.training else None
        tag = h.sum(1) if not model.training else None
        logits = model.head(torch.nn.functional.dropout(h, 0.5, training=model.training))
        return (logits, side) if model.training else (logits, tag)

    x = torch.randn(4, 16)
    for training in (True, False):
        model.train(training)
        torch.manual_seed(3)
        ours = model(x)
        torch.manual_seed(3)
        theirs = by_hand(x)
        assert ours[1].shape == ((4, 3) if training else (4,))
        for got, expected in zip(ours, theirs):
            torch.testing.assert_close(got, expected)
    assert "return (None,)" in type(model).dsl_source  # the other mode gives None


def test_a_value_given_in_both_modes_after_a_one_mode_one_wins() -> None:
    text = """
net Later:
    input x: [N, 4]
    if training:
        side = x * 2
    side = x + 1
    if training:
        return side
    return side * 3
"""
    model = dsl.build_model(text)
    x = torch.randn(2, 4)
    torch.testing.assert_close(model.train()(x), x + 1)
    torch.testing.assert_close(model.eval()(x), (x + 1) * 3)
