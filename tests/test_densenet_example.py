"""examples/densenet.net against torchvision's DenseNet-121 (issue 13), and container blocks
with a forward of their own against the same subclasses written in plain PyTorch.

DenseNet's `_DenseBlock` is an `nn.ModuleDict` with its own forward: in the DSL a
`block DenseBlock(...) = ModuleDict:` whose children are followed by `forward:`. The module
tree and state_dict keys are torchvision's, its weights load strictly both ways, the initial
weights are equal under the same seed (the `densenet()` recipe), and so are the outputs in
eval and in train mode (BatchNorm's batch statistics and running averages)."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import dsl
from dsl.cli import main
from dsl.syntax.loader import read_file

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "densenet.net"


@pytest.fixture(scope="module")
def pair() -> tuple[nn.Module, nn.Module]:
    model = dsl.build_model(SPEC, seed=3, sizes={"H": 64})
    torch.manual_seed(3)
    return model, torchvision.models.densenet121()


def test_same_tree_keys_and_initial_weights_for_the_same_seed(
    pair: tuple[nn.Module, nn.Module],
) -> None:
    model, theirs = pair
    assert [n for n, _ in model.named_modules()] == [n for n, _ in theirs.named_modules()]
    ours = model.state_dict()
    assert list(ours) == list(theirs.state_dict())
    assert "features.denseblock1.denselayer1.norm1.weight" in ours
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours[key], value), key
    block = model.features.denseblock1
    assert isinstance(block, nn.ModuleDict) and isinstance(
        theirs.features.denseblock1, nn.ModuleDict
    )
    assert type(block).__name__ == "DenseBlock" and "def forward(self, init_features)" in (
        type(block).dsl_source
    )
    assert isinstance(model.features.transition1, nn.Sequential)


@pytest.mark.parametrize("training", [False, True])
def test_outputs_equal_torchvision_in_both_modes(
    pair: tuple[nn.Module, nn.Module], training: bool
) -> None:
    model, theirs = pair
    torch.manual_seed(11)
    theirs = torchvision.models.densenet121()  # weights of their own, loaded strictly
    model.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(model.state_dict(), strict=True)
    model.train(training), theirs.train(training)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, expected = model(x), theirs(x)
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    state = model.state_dict()
    for key, value in theirs.state_dict().items():  # running statistics moved alike
        torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)


# ----------------------------------------------------------------- every container kind

CONTAINERS = """
block Chain = ModuleList:
    Linear(8, 8)
    Linear(8, 8)
    forward:
        input x
        for i, layer in enumerate(self):
            x = x + layer(x) * (i + 1)
        return x

block Ends = Sequential:
    first = Linear(8, 4)
    mid = ReLU()
    last = Linear(4, 8)
    forward:
        input x
        return self.last(self[1](self.first(x))) * len(self)

block Heads(n) = ModuleDict:
    for i in range(n):
        "head{i}" = Linear(8, 2)
    forward:
        input x
        outs = []
        for name, layer in self.items():
            outs = outs + [layer(x)]
        return stack(outs, 1)

net Net:
    input x: [B, 8]
    chain = Chain()
    ends = Ends()
    heads = Heads(3)
    return heads(ends(chain(x)))
"""


class Chain(nn.ModuleList):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self):
            x = x + layer(x) * (i + 1)
        return x


class Ends(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self[1](self.first(x))) * len(self)


class Heads(nn.ModuleDict):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([layer(x) for _, layer in self.items()], 1)


class HandWritten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.ends = Ends(OrderedDict(first=nn.Linear(8, 4), mid=nn.ReLU(), last=nn.Linear(4, 8)))
        self.heads = Heads({f"head{i}": nn.Linear(8, 2) for i in range(3)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.ends(self.chain(x)))


def test_each_container_kind_equals_its_hand_written_subclass() -> None:
    model = dsl.build_model(CONTAINERS, seed=2)
    torch.manual_seed(2)
    ref = HandWritten()
    assert list(model.state_dict()) == list(ref.state_dict())
    for key, value in ref.state_dict().items():  # built in the same order: same weights
        assert torch.equal(model.state_dict()[key], value), key
    for name, kind in (("chain", nn.ModuleList), ("ends", nn.Sequential), ("heads", nn.ModuleDict)):
        assert isinstance(getattr(model, name), kind)
    x = torch.randn(5, 8)
    torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)
    again = pickle.loads(pickle.dumps(model))
    assert type(again.heads).__mro__[1:] == type(model.heads).__mro__[1:]
    torch.testing.assert_close(again(x), ref(x), rtol=0, atol=0)


def test_a_container_without_forward_is_the_torch_container() -> None:
    spec = "net Plain = Sequential:\n    input x: [B, 8]\n    Linear(8, 8)\n"
    assert type(dsl.build_model(spec)) is nn.Sequential


def test_a_container_net_may_have_a_forward() -> None:
    spec = "net Twice = ModuleList:\n    Linear(8, 8)\n    forward:\n        input x: [B, 8]\n"
    spec += "        return self[0](self[0](x))\n"
    model = dsl.build_model(spec, seed=0)
    assert isinstance(model, nn.ModuleList) and list(model.state_dict()) == ["0.weight", "0.bias"]
    x = torch.randn(3, 8)
    torch.testing.assert_close(model(x), model[0](model[0](x)))


@pytest.mark.parametrize("source", ["containers.net", "densenet.net"])
def test_fmt_and_convert_round_trip_both_ways(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = tmp_path / source
    net.write_text(CONTAINERS if source == "containers.net" else SPEC.read_text())
    assert main(["fmt", str(net)]) == 0
    assert main(["fmt", "--check", str(net)]) == 0
    yaml, back = tmp_path / "twin.yaml", tmp_path / "back.net"
    assert main(["convert", str(net), "-o", str(yaml)]) == 0
    assert "forward:" in yaml.read_text()
    assert main(["convert", str(yaml), "-o", str(back)]) == 0
    assert read_file(yaml) == read_file(net) == read_file(back)  # YAML keeps no comments
    if source == "containers.net":
        assert back.read_text() == net.read_text()
    capsys.readouterr()
