"""Composition (issue 13): init recipes scoped to a sub-tree; a `block X = Sequential:` that
names its input and has its own `init:`; a derived net and `parts(...)` of a net of the
spec used inside another net, each initialised when it is built (torchvision's stream)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import dsl
from dsl.errors import StructureError

SCOPED = """
net Detector(num_classes=5):
    input x: [B, 3, 32, 32]
    init:
        "backbone.*": resnet()
        "head.*": transformer(std=0.01)
    backbone = Sequential:
        Conv2d(8, kernel_size=3, padding=1, bias=false)
        BatchNorm2d()
        ReLU()
    head = Linear(num_classes)
    return head(flatten(adaptive_avg_pool2d(backbone(x), 1), 1))
"""


def test_a_recipe_scoped_to_a_sub_tree_initialises_that_sub_tree_only() -> None:
    model = dsl.build_model(SCOPED, seed=6)
    torch.manual_seed(6)
    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
    )
    head = nn.Linear(8, 5)
    nn.init.kaiming_normal_(backbone[0].weight, mode="fan_out", nonlinearity="relu")
    nn.init.trunc_normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    reference = {
        **{f"backbone.{k}": v for k, v in backbone.state_dict().items()},
        **{f"head.{k}": v for k, v in head.state_dict().items()},
    }
    assert list(model.state_dict()) == list(reference)
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, reference[key]), key


def test_a_nested_nets_init_runs_when_it_is_built_before_the_head() -> None:
    """A DSL net used as a layer initialises itself (its `init: resnet()`) when it is built,
    then the head is constructed: the random stream of `resnet18()` followed by a fresh
    `nn.Linear`, as DeepLabV3-style code draws it."""
    spec = """
from resnet import ResNet, BasicBlock

net WithHead:
    input x: [B, 3, 32, 32]
    backbone = ResNet(BasicBlock, [2, 2, 2, 2])
    extra = Linear(3)
    return extra(backbone(x))
"""
    model = dsl.build_model(spec, seed=1)
    torch.manual_seed(1)
    backbone = torchvision.models.resnet18()
    extra = nn.Linear(1000, 3)
    for key, tensor in backbone.state_dict().items():
        assert torch.equal(model.state_dict()[f"backbone.{key}"], tensor), key
    assert torch.equal(model.extra.weight, extra.weight)


def test_a_sequential_block_names_its_input() -> None:
    spec = """
block Stem(out) = Sequential:
    input x
    init:
        Conv2d.weight: ones()
    Conv2d(out, kernel_size=3, padding=1)
    ReLU()

net Net:
    input x: [B, 3, 16, 16]
    stem = Stem(4)
    return stem(x)
"""
    model = dsl.build_model(spec, seed=0)
    assert isinstance(model.stem, nn.Sequential) and list(model.stem.state_dict()) == [
        "0.weight",
        "0.bias",
    ]
    assert torch.equal(model.stem[0].weight, torch.ones(4, 3, 3, 3))
    with pytest.raises(StructureError, match="takes one input"):
        dsl.build_model(spec.replace("    input x\n", "    input x, y\n"))


DERIVED = """
from resnet import ResNet, BasicBlock

net R18(num_classes=10) = ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)

net Two:
    input x: [B, 3, 32, 32]
    backbone = R18(num_classes=5)
    head = Linear(2)
    return head(backbone(x))
"""


def test_a_derived_net_is_a_layer_of_another_net() -> None:
    model = dsl.build_model(DERIVED, seed=2)
    torch.manual_seed(2)
    backbone = torchvision.models.resnet18(num_classes=5)
    head = nn.Linear(5, 2)
    for key, tensor in backbone.state_dict().items():
        assert torch.equal(model.state_dict()[f"backbone.{key}"], tensor), key
    assert torch.equal(model.head.weight, head.weight)
    backbone.eval(), model.eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(
        model(x), torch.nn.functional.linear(backbone(x), head.weight, head.bias)
    )


PARTS = """
from resnet import ResNet, BasicBlock

net Trunk:
    input x: [B, 3, 32, 32]
    r = parts(ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10))
    stem = Sequential:
        r.conv1
        r.bn1
        r.relu
    layer1 = r.layer1
    return layer1(stem(x))
"""


def test_parts_of_a_net_of_the_spec() -> None:
    model = dsl.build_model(PARTS, seed=8)
    torch.manual_seed(8)
    resnet = torchvision.models.resnet.ResNet(
        torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=10
    )
    stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu)
    reference = {
        **{f"stem.{k}": v for k, v in stem.state_dict().items()},
        **{f"layer1.{k}": v for k, v in resnet.layer1.state_dict().items()},
    }
    assert list(model.state_dict()) == list(reference)
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, reference[key]), key
