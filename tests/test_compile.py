"""Every example spec against a reference module written here in plain PyTorch.

For each: the same state_dict keys in the same order, the same parameter shapes,
`load_state_dict(strict=True)` both ways, equal outputs in eval mode, and, where the spec
and the reference construct their layers in the same order, the same initial weights for
the same seed.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from references import MnistMLP, UNet
from torch import nn

import dsl

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def build(name: str, **kwargs: Any) -> nn.Module:
    return dsl.build_model(EXAMPLES / name, **kwargs)


# --------------------------------------------------------------------------- checks


def assert_same_structure(model: nn.Module, ref: nn.Module) -> None:
    """Identical state_dict keys in identical order, and identical shapes."""
    got, want = model.state_dict(), ref.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert got[key].shape == want[key].shape, key
        assert got[key].dtype == want[key].dtype, key
    assert [(n, p.shape) for n, p in model.named_parameters()] == [
        (n, p.shape) for n, p in ref.named_parameters()
    ]
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in ref.named_buffers()]


def assert_equivalent(
    model: nn.Module, make_ref: Callable[[], nn.Module], *inputs: torch.Tensor
) -> Any:
    """Structure, strict loading both ways, and equal outputs (eval mode)."""
    ref = make_ref()
    assert_same_structure(model, ref)
    model.eval()
    ref.eval()
    # reference -> spec
    model.load_state_dict(ref.state_dict(), strict=True)
    with torch.no_grad():
        expected = ref(*inputs)
        got = model(*inputs)
    torch.testing.assert_close(got, expected)
    # spec -> a fresh reference (its own, different, initial weights)
    fresh = make_ref().eval()
    fresh.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(*inputs), got)
    return expected


def assert_same_init(model: nn.Module, ref: nn.Module) -> None:
    """Bit-equal state (the model was built with seed=0, the reference after manual_seed(0))."""
    got, want = model.state_dict(), ref.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), f"{key} differs"


def seeded(make_ref: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return make_ref()


def test_module_registration_hooks_see_every_child() -> None:
    """The compiler registers children without `add_module` when nothing listens; a
    global registration hook, when a program adds one, must still see each of them."""
    seen: list[str] = []

    def hook(parent: nn.Module, name: str, child: nn.Module) -> None:
        seen.append(name)

    handle = nn.modules.module.register_module_module_registration_hook(hook)
    try:
        model = build("mnist_mlp.net", seed=0)
    finally:
        handle.remove()
    expected = [name.rpartition(".")[2] for name, _ in model.named_modules() if name]
    assert sorted(seen) == sorted(expected)


# --------------------------------------------------------------------------- S1: MNIST MLP


def test_mnist_mlp() -> None:
    model = build("mnist_mlp.net", seed=0)
    assert_same_init(model, seeded(MnistMLP))
    assert list(model.state_dict())[:2] == ["layer1.1.weight", "layer1.1.bias"]
    assert list(model.state_dict())[-1] == "layer4.0.bias"
    for name in ("layer1", "layer2", "layer3", "layer4"):
        assert type(getattr(model, name)) is nn.Sequential
    out = assert_equivalent(model, MnistMLP, torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(4))


def test_mnist_mlp_seed_is_reproducible() -> None:
    a = build("mnist_mlp.net", seed=3)
    b = build("mnist_mlp.net", seed=3)
    c = build("mnist_mlp.net", seed=4)
    assert_same_init(a, b)
    assert not torch.equal(a.layer1[1].weight, c.layer1[1].weight)


# --------------------------------------------------------------------------- S3: Sequential


def _positional() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def _named() -> nn.Module:
    return nn.Sequential(
        OrderedDict(
            [("fc1", nn.Linear(784, 256)), ("relu1", nn.ReLU()), ("fc2", nn.Linear(256, 10))]
        )
    )


@pytest.mark.parametrize(
    ("spec", "make_ref", "keys"),
    [
        ("sequential_positional.net", _positional, ["0.weight", "0.bias", "2.weight", "2.bias"]),
        ("sequential_named.net", _named, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]),
    ],
)
def test_sequential(spec: str, make_ref: Callable[[], nn.Module], keys: list[str]) -> None:
    model = build(spec, seed=0)
    assert type(model) is nn.Sequential
    assert list(model.state_dict()) == keys
    assert [n for n, _ in model.named_children()] == [n for n, _ in make_ref().named_children()]
    assert_same_init(model, seeded(make_ref))
    assert_equivalent(model, make_ref, torch.randn(3, 784))


# --------------------------------------------------------------------------- S4: ModuleList


class ListMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.linears:
            x = layer(x)
        return x


def test_modulelist_chain() -> None:
    model = build("modulelist.net", seed=0)
    assert type(model.linears) is nn.ModuleList
    assert list(model.state_dict()) == [
        "linears.0.weight",
        "linears.0.bias",
        "linears.2.weight",
        "linears.2.bias",
    ]
    assert_same_init(model, seeded(ListMLP))
    assert_equivalent(model, ListMLP, torch.randn(5, 784))


class ListOrder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(10, 20), nn.Linear(20, 30), nn.Linear(5, 10)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linears[2](x)
        x = self.linears[0](x)
        return self.linears[1](x)


def test_modulelist_runs_in_declared_order() -> None:
    model = build("modulelist_order.net", seed=0, sizes={"N": 32})
    assert [tuple(m.weight.shape) for m in model.linears] == [(20, 10), (30, 20), (10, 5)]
    assert_same_init(model, seeded(ListOrder))
    x = torch.randn(32, 5)
    out = assert_equivalent(model, ListOrder, x)
    assert out.shape == (32, 30)
    with torch.no_grad():
        by_hand = model.linears[1](model.linears[0](model.linears[2](x)))
        torch.testing.assert_close(model(x), by_hand)
        with pytest.raises(RuntimeError):  # list order cannot even take this input
            model.linears[1](model.linears[0](x))
    # the spec itself says so at build time: a [32, 5] input is what the net declares
    assert dsl.validate(EXAMPLES / "modulelist_order.net", sizes={"N": 32}).output.shape == (32, 30)


# --------------------------------------------------------------------------- S5: ModuleDict


class MultiHead(nn.Module):
    def __init__(self, act: str = "relu") -> None:
        super().__init__()
        self.act = act
        self.trunk = nn.Sequential(nn.Linear(128, 64))
        self.acts = nn.ModuleDict({"relu": nn.ReLU(), "gelu": nn.GELU(), "tanh": nn.Tanh()})
        self.heads = nn.ModuleDict({"cls": nn.Linear(64, 10), "box": nn.Linear(64, 4)})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.acts[self.act](self.trunk(x))
        return {name: head(h) for name, head in self.heads.items()}


@pytest.mark.parametrize("act", ["relu", "gelu", "tanh"])
def test_moduledict_heads(act: str) -> None:
    model = build("moduledict_heads.net", seed=0, params={"act": act})
    assert type(model.heads) is nn.ModuleDict
    assert type(model.acts) is nn.ModuleDict
    assert list(model.heads.keys()) == ["cls", "box"]
    assert [k for k in model.state_dict() if k.startswith("heads.")] == [
        "heads.cls.weight",
        "heads.cls.bias",
        "heads.box.weight",
        "heads.box.bias",
    ]
    assert_same_init(model, seeded(lambda: MultiHead(act)))
    out = assert_equivalent(model, lambda: MultiHead(act), torch.randn(6, 128))
    assert isinstance(out, dict)
    with torch.no_grad():
        got = model(torch.randn(6, 128))
    assert isinstance(got, dict)
    assert list(got) == ["cls", "box"]
    assert got["cls"].shape == (6, 10)
    assert got["box"].shape == (6, 4)
    # the activation picked by the parameter is the one the forward calls
    assert f"self.acts.{act}(" in model.dsl_source


def test_moduledict_unknown_key_is_a_dsl_error() -> None:
    with pytest.raises(dsl.DSLError, match="swish"):
        build("moduledict_heads.net", params={"act": "swish"})


# --------------------------------------------------------------------------- BasicBlock


class BasicBlock(nn.Module):
    """torchvision's BasicBlock, constructing `downsample` after bn2 as the spec does."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResidualStage(nn.Module):
    def __init__(self, width: int = 64, planes: int = 128) -> None:
        super().__init__()
        self.block1 = BasicBlock(width, planes, stride=2)
        self.block2 = BasicBlock(planes, planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(self.block1(x))


def _randomise_bn(model: nn.Module) -> None:
    """Non-trivial running statistics, so eval-mode outputs test batch norm properly."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=gen) * 0.1)


def test_residual_block() -> None:
    model = build("residual_block.net", seed=0, sizes={"B": 2, "H": 16, "W": 16})
    assert hasattr(model.block1, "downsample")
    assert not hasattr(model.block2, "downsample")  # stride 1, same width: identity skip
    assert type(model.block1.downsample) is nn.Sequential
    assert model.block1.downsample[0].stride == (2, 2)
    assert_same_init(model, seeded(ResidualStage))
    with torch.no_grad():
        _randomise_bn(model)
    x = torch.randn(2, 64, 16, 16)
    out = assert_equivalent(model, lambda: _with_state(ResidualStage(), model), x)
    assert out.shape == (2, 128, 8, 8)


def _with_state(ref: nn.Module, model: nn.Module) -> nn.Module:
    ref.load_state_dict(model.state_dict())
    return ref


def test_residual_block_loads_torchvision_basic_block() -> None:
    from torchvision.models.resnet import BasicBlock as TVBasicBlock
    from torchvision.models.resnet import conv1x1

    model = build("residual_block.net", sizes={"B": 2, "H": 16, "W": 16}).eval()
    tv = nn.Sequential(
        OrderedDict(
            block1=TVBasicBlock(
                64,
                128,
                stride=2,
                downsample=nn.Sequential(conv1x1(64, 128, 2), nn.BatchNorm2d(128)),
            ),
            block2=TVBasicBlock(128, 128),
        )
    ).eval()
    with torch.no_grad():
        _randomise_bn(tv)
    model.load_state_dict(tv.state_dict(), strict=True)
    tv.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 64, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv(x))


# --------------------------------------------------------------------------- S9: two outputs


class TwoOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, 1000),
        )
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)
        self.fc1 = nn.Linear(1000, 10)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1000 = self.backbone(x)
        x10 = self.softmax(self.fc1(self.dropout(self.relu(x1000))))
        return x10, x1000


def test_two_outputs() -> None:
    model = build("two_outputs.net", seed=0, sizes={"B": 2, "H": 32, "W": 32})
    assert_same_init(model, seeded(TwoOutputs))
    out = assert_equivalent(model, TwoOutputs, torch.randn(2, 3, 32, 32))
    assert isinstance(out, tuple)
    with torch.no_grad():
        x10, x1000 = model(torch.randn(2, 3, 32, 32))
    assert x10.shape == (2, 10)
    assert x1000.shape == (2, 1000)
    # ReLU is not in place: the 1000 features come back as the backbone gave them
    assert (x1000 < 0).any()


# --------------------------------------------------------------------------- S2: custom layer


class MyLinear(nn.Module):
    def __init__(self, in_n: int = 2, out_n: int = 3) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.empty(in_n, out_n))
        nn.init.normal_(self.w, 0, 0.01)
        self.b = nn.Parameter(torch.empty(out_n))
        nn.init.normal_(self.b, 0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w + self.b


def test_custom_layer() -> None:
    model = build("custom_layer.net", seed=0, sizes={"N": 100})
    assert list(model.state_dict()) == ["w", "b"]
    assert isinstance(model.w, nn.Parameter)
    assert isinstance(model.b, nn.Parameter)
    assert_same_init(model, seeded(MyLinear))
    x = torch.randn(100, 2)
    out = assert_equivalent(model, MyLinear, x)
    assert out.shape == (100, 3)


def test_custom_layer_gradients_reach_both_params() -> None:
    model = build("custom_layer.net", seed=0, sizes={"N": 100})
    assert model.w.std().item() < 0.1  # normal(0, 0.01)
    model(torch.randn(100, 2)).pow(2).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


# --------------------------------------------------------------------------- weight sharing


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 32)
        self.head = nn.Linear(32, 10)
        self.fc_tied = self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(x))
        h = F.relu(self.fc(h))
        h = F.relu(self.fc_tied(h))
        return self.head(h)


def test_weight_sharing() -> None:
    model = build("weight_sharing.net", seed=0)
    assert model.fc_tied is model.fc
    assert model.fc_tied.weight is model.fc.weight
    assert list(model.state_dict()) == [
        "fc.weight",
        "fc.bias",
        "head.weight",
        "head.bias",
        "fc_tied.weight",
        "fc_tied.bias",
    ]
    assert [n for n, _ in model.named_parameters()] == [
        "fc.weight",
        "fc.bias",
        "head.weight",
        "head.bias",
    ]
    assert len(list(model.parameters())) == 4
    assert model.dsl_source.count("self.fc(") == 3  # the alias runs the one module
    assert_same_init(model, seeded(Shared))
    assert_equivalent(model, Shared, torch.randn(4, 32))
    # one gradient, accumulated over the three applications
    model(torch.randn(4, 32)).sum().backward()
    assert model.fc_tied.weight.grad is model.fc.weight.grad


# --------------------------------------------------------------------------- S13: small conv net


class SmallConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.fc1 = nn.Linear(1350, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc1(x)


def test_small_conv_infers_in_features() -> None:
    model = build("small_conv.net", seed=0)
    assert model.fc1.in_features == 1350
    assert list(model.state_dict()) == ["conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias"]
    assert_same_init(model, seeded(SmallConv))
    out = assert_equivalent(model, SmallConv, torch.randn(1, 1, 32, 32))
    assert out.shape == (1, 10)


# --------------------------------------------------------------------------- S6: U-Net


@pytest.fixture(scope="module", params=[True, False], ids=["bilinear", "transposed"])
def unet_pair(request: pytest.FixtureRequest) -> tuple[nn.Module, nn.Module, bool]:
    bilinear = request.param
    model = build(
        "unet.net", seed=0, params={"bilinear": bilinear}, sizes={"B": 1, "H": 17, "W": 33}
    )
    ref = seeded(lambda: UNet(bilinear=bilinear))
    return model, ref, bilinear


def test_unet_structure_and_init(unet_pair: tuple[nn.Module, nn.Module, bool]) -> None:
    model, ref, bilinear = unet_pair
    assert_same_structure(model, ref)
    keys = list(model.state_dict())
    assert keys[0] == "inc.double_conv.0.weight"
    assert "down1.maxpool_conv.1.double_conv.0.weight" in keys
    assert "up1.conv.double_conv.0.weight" in keys
    assert keys[-2:] == ["outc.conv.weight", "outc.conv.bias"]
    assert ("up1.up.weight" in keys) is not bilinear
    assert_same_init(model, ref)


def test_unet_outputs(unet_pair: tuple[nn.Module, nn.Module, bool]) -> None:
    model, ref, bilinear = copy.deepcopy(unet_pair)  # the fixture stays as built
    with torch.no_grad():
        _randomise_bn(ref)
    # 17x33 is not a multiple of 16: every Up pads its upsampled map to the skip's size
    out = assert_equivalent(
        model, lambda: _with_state(UNet(bilinear=bilinear), ref), torch.randn(1, 3, 17, 33)
    )
    assert out.shape == (1, 2, 17, 33)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(out, ref.eval()(x))
    assert out.shape == (1, 2, 64, 64)


def test_unet_validates_odd_sizes() -> None:
    resolved = dsl.validate(
        EXAMPLES / "unet.net", params={"bilinear": False}, sizes={"B": 1, "H": 17, "W": 33}
    )
    assert tuple(resolved.output.shape) == (1, 2, 17, 33)
