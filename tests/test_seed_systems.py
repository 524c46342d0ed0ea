"""The seed systems (../shared/SEED_SYSTEMS.md, S1-S20): each example against a reference.

Every seed system is covered by a test that builds its example spec and compares it with a
reference written in plain PyTorch or taken from torchvision: the same state_dict keys in
the same order, strict loading both ways, equal outputs (and, where noted, the same initial
weights for the same seed). Systems already covered elsewhere are not tested twice; this
table says where each one is:

| #   | system                          | example(s)                                   | test(s)                                                                                                                             |
|-----|---------------------------------|----------------------------------------------|-------------------------------------------------------------------------------------------------------------------------------------|
| S1  | MNIST MLP                       | mnist_mlp.net, mnist_mlp.yaml                | test_compile::test_mnist_mlp, ::test_mnist_mlp_seed_is_reproducible; test_init::test_mnist_mlp_equals_hand_written; here: test_yaml_twins_* |
| S2  | custom layer                    | custom_layer.net                             | test_compile::test_custom_layer, ::test_custom_layer_gradients_reach_both_params                                                    |
| S3  | Sequential, two ways            | sequential_positional.net, sequential_named.net | test_compile::test_sequential                                                                                                    |
| S4  | ModuleList                      | modulelist.net, modulelist_order.net         | test_compile::test_modulelist_chain, ::test_modulelist_runs_in_declared_order                                                       |
| S5  | ModuleDict                      | moduledict_heads.net                         | test_compile::test_moduledict_heads                                                                                                 |
| S6  | U-Net                           | unet.net, unet.yaml                          | test_compile::test_unet_structure_and_init, ::test_unet_outputs (17x33, 64x64); here: test_s6_unet_other_sizes (100x75, 1x1x17x33) |
| S7  | ResNet-18/50                    | resnet18.net, resnet50.net, resnet18.yaml    | here: test_s7_resnet_loads_torchvision, test_s7_resnet18_example_init; test_init::test_resnet18_equals_torchvision, ::test_resnet50_zero_init_residual_equals_torchvision |
| S8  | head surgery                    | head_surgery.net                             | here: test_s8_head_surgery                                                                                                          |
| S9  | two outputs                     | two_outputs.net                              | test_compile::test_two_outputs                                                                                                      |
| S10 | intermediate features           | features.net (or resnet18.net with outputs=) | here: test_s10_features_equal_forward_hooks                                                                                        |
| S11 | fine-tuning                     | finetune.net                                 | here: test_s11_finetune                                                                                                             |
| S12 | registration edge cases         | registration.net                             | here: test_s12_registration                                                                                                         |
| S13 | small conv net                  | small_conv.net                               | test_compile::test_small_conv_infers_in_features                                                                                    |
| S14 | regression MLP                  | regression_mlp.net                           | here: test_s14_regression_mlp_trains                                                                                                |
| S15 | init recipes                    | (blocks/resnet.net, vgg16_bn.net, init rules) | test_init (all of it: test_recipes_statistics, test_resnet18_equals_torchvision, test_vgg16_bn_equals_torchvision, test_xavier_statistics, ...) |
| S16 | depthwise conv                  | depthwise.net                                | here: test_s16_depthwise                                                                                                            |
| S17 | dilation surgery                | dilation.net                                 | here: test_s17_dilation_output_stride_8                                                                                             |
| S18 | reuse of parts                  | -                                            | not covered here (being designed separately)                                                                                        |
| S19 | distributed and mixed precision | (the spec in test_everywhere)                | test_everywhere::test_distributed_data_parallel_gloo, ::test_sync_batchnorm_conversion, ::test_autocast_bf16_on_cpu, ::test_fsdp2_fully_shard_from_meta_build |
| S20 | save / load                     | regression_mlp.net, mnist_mlp.net            | here: test_s20_save_and_load; test_everywhere::test_save_load_whole_model, ::test_state_dict_weights_only                           |

Also here: every examples/*.net and blocks/*.net passes `dsl validate` (test_dsl_validate_*).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dsl
from dsl.build.compile import feature_extractor
from dsl.cli import main as dsl_main
from tests.test_compile import (
    UNet,
    _randomise_bn,
    assert_equivalent,
    assert_same_init,
    assert_same_structure,
    seeded,
)

torchvision = pytest.importorskip("torchvision")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BLOCKS = ROOT / "blocks"


def build(name: str, **kwargs: object) -> nn.Module:
    return dsl.build_model(EXAMPLES / name, **kwargs)  # type: ignore[arg-type]


def randomised(model: nn.Module) -> nn.Module:
    """`model` with non-trivial batch-norm statistics (so eval-mode outputs test them)."""
    with torch.no_grad():
        _randomise_bn(model)
    return model


def assert_loads_both_ways(
    model: nn.Module, ref: nn.Module, x: torch.Tensor, atol: float = 1e-5
) -> None:
    """Same keys in the same order; `ref`'s weights load strictly into `model` and give the
    same outputs in eval mode; `model`'s load strictly back into a copy of `ref`."""
    assert_same_structure(model, ref)
    model.load_state_dict(ref.state_dict(), strict=True)
    model.eval()
    ref.eval()
    with torch.no_grad():
        expected = ref(x)
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=atol)
    back = copy.deepcopy(ref)
    back.load_state_dict(model.state_dict(), strict=True)


# =========================================================================== YAML twins (S1, S6, S7)


TWINS = ["mnist_mlp", "unet", "resnet18"]


@pytest.mark.parametrize("name", TWINS)
def test_yaml_twins_parse_to_the_same_ir(name: str) -> None:
    assert dsl.load(EXAMPLES / f"{name}.yaml") == dsl.load(EXAMPLES / f"{name}.net")


def test_yaml_twin_builds_the_same_model() -> None:
    a = build("mnist_mlp.yaml", seed=0)
    b = build("mnist_mlp.net", seed=0)
    assert_same_init(a, b)


# =========================================================================== S6: U-Net, other sizes


@pytest.mark.parametrize("bilinear", [True, False], ids=["bilinear", "transposed"])
def test_s6_unet_other_sizes(bilinear: bool) -> None:
    """One input channel; 100x75 and 17x33 (neither a multiple of 16). test_compile covers
    3 channels at 17x33 and 64x64."""
    model = build(
        "unet.net",
        seed=0,
        params={"n_channels": 1, "bilinear": bilinear},
        sizes={"B": 1, "H": 17, "W": 33},
    )
    ref = randomised(seeded(lambda: UNet(n_channels=1, bilinear=bilinear)))
    for shape in ((1, 1, 17, 33), (1, 1, 100, 75)):
        x = torch.randn(shape)
        assert_loads_both_ways(model, ref, x)
        with torch.no_grad():
            assert model(x).shape == (shape[0], 2, *shape[2:])


# =========================================================================== S7: ResNet-18/50


@pytest.mark.parametrize(
    ("name", "make_ref"), [("resnet18.net", "resnet18"), ("resnet50.net", "resnet50")]
)
def test_s7_resnet_loads_torchvision(name: str, make_ref: str) -> None:
    model = build(name)
    ref = randomised(getattr(torchvision.models, make_ref)())
    for size in (64, 224):
        x = torch.randn(1, 3, size, size)
        assert_loads_both_ways(model, ref, x)
        with torch.no_grad():
            assert model(x).shape == (1, 1000)


def test_s7_resnet18_example_init() -> None:
    """The example (and its YAML twin), not just the library net: torchvision's initial
    weights under the same seed, bit for bit."""
    ref = seeded(torchvision.models.resnet18, 11)
    for name in ("resnet18.net", "resnet18.yaml"):
        assert_same_init(build(name, seed=11), ref)
    assert build("resnet18.net", params={"num_classes": 7}).fc.out_features == 7


# =========================================================================== S8: head surgery


def _head_surgery_ref() -> nn.Module:
    model = torchvision.models.resnet50()
    model.fc = nn.Sequential(
        OrderedDict(
            [
                ("fc1", nn.Linear(2048, 128)),
                ("relu1", nn.ReLU()),
                ("dropout1", nn.Dropout(0.5)),
                ("fc2", nn.Linear(128, 10)),
                ("output", nn.Softmax(dim=1)),
            ]
        )
    )
    return model


def test_s8_head_surgery() -> None:
    model = build("head_surgery.net", seed=2)
    ref = seeded(_head_surgery_ref, 2)
    assert_same_init(model, ref)  # the backbone first, then the new head, as the code above
    keys = list(model.state_dict())
    with torch.device("meta"):
        backbone = [
            k for k in torchvision.models.resnet50().state_dict() if not k.startswith("fc.")
        ]
    assert keys[:-4] == backbone  # unchanged
    assert keys[-4:] == ["fc.fc1.weight", "fc.fc1.bias", "fc.fc2.weight", "fc.fc2.bias"]
    x = torch.randn(2, 3, 64, 64)
    assert_loads_both_ways(model, randomised(ref), x)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 10)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(2))


# =========================================================================== S10: intermediate features


FEATURES = ["conv1", "maxpool", "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1"]


def _hooked(ref: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What forward hooks on the named modules see: the user code S10 makes unnecessary."""
    seen: dict[str, torch.Tensor] = {}
    handles = [
        ref.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone())
        )
        for name in FEATURES
    ]
    try:
        with torch.no_grad():
            ref(x)
    finally:
        for handle in handles:
            handle.remove()
    return {name: seen[name] for name in FEATURES}


def load_kept(model: nn.Module, ref: nn.Module) -> None:
    """Load `ref`'s weights into a feature extractor, which keeps only the modules its
    outputs need (under their own names, in their own order)."""
    state = ref.state_dict()
    kept = list(model.state_dict())
    assert kept == [k for k in state if k in set(kept)]
    model.load_state_dict({k: state[k] for k in kept}, strict=True)


@pytest.mark.parametrize("name", ["features.net", "resnet18.net"])
def test_s10_features_equal_forward_hooks(name: str) -> None:
    model = build(name, seed=3, outputs=FEATURES)
    ref = seeded(torchvision.models.resnet18, 3)
    want = ref.state_dict()
    assert all(
        torch.equal(v, want[k]) for k, v in model.state_dict().items()
    )  # same seed, same weights
    load_kept(model, randomised(ref).eval())
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        got = model(x)
    want = _hooked(ref, x)
    assert list(got) == FEATURES
    for key in FEATURES:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    assert got["conv1"].shape == (2, 64, 32, 32)
    assert got["maxpool"].shape == (2, 64, 16, 16)


# =========================================================================== S11: fine-tuning


def _finetune_ref() -> nn.Module:
    model = torchvision.models.resnet18()
    for p in model.parameters():
        p.requires_grad = False
    model.fc = nn.Linear(512, 100)
    return model


def test_s11_finetune() -> None:
    model = build("finetune.net", seed=4)
    ref = seeded(_finetune_ref, 4)
    assert_same_init(model, ref)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    assert trainable == [n for n, p in ref.named_parameters() if p.requires_grad]
    assert model.fc.in_features == 512 and model.fc.out_features == 100
    assert_loads_both_ways(model, randomised(copy.deepcopy(ref)), torch.randn(1, 3, 64, 64))

    # One optimizer step (all parameters handed to it, as careless code does) changes only fc.
    model.eval()  # batch-norm statistics stay put too
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = F.cross_entropy(model(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed == ["fc.weight", "fc.bias"]
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("fc."))


# =========================================================================== S12: registration


class Registration(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.my_tensor = torch.ones(2)  # a plain attribute: not registered, not in the state_dict
        self.register_buffer("my_buffer", torch.ones(2))
        self.my_param = nn.Parameter(torch.randn(2))
        self.fc = nn.Linear(2, 2, bias=False)
        self.conv = nn.Conv2d(2, 1, 1)
        self.fc2 = nn.Linear(2, 2, bias=False)
        self.f3 = self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc2(self.fc(x)) * self.my_param + self.my_buffer
        h = self.f3(h) + self.my_tensor
        return self.conv(h.reshape(-1, 2, 1, 1)).flatten(1)


def test_s12_registration() -> None:
    model = build("registration.net", seed=0)
    ref = Registration()
    order = [
        "my_param",
        "my_buffer",
        "fc.weight",
        "conv.weight",
        "conv.bias",
        "fc2.weight",
        "f3.weight",
    ]
    assert list(model.state_dict()) == list(ref.state_dict()) == order
    # f3 is fc: one module, one weight, listed once by named_parameters
    assert model.f3 is model.fc
    assert model.state_dict()["f3.weight"].data_ptr() == model.state_dict()["fc.weight"].data_ptr()
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in ref.named_parameters()]
    # the plain tensor's stand-in is a non-persistent buffer: it stays out of the state_dict
    assert "my_tensor" not in model.state_dict()
    assert [n for n, _ in model.named_buffers()] == ["my_buffer", "my_tensor"]
    x = torch.randn(5, 2)
    model.load_state_dict(ref.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))
    fresh = Registration()
    fresh.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
    # changing fc changes f3 (shared weight)
    with torch.no_grad():
        model.fc.weight.add_(1.0)
    assert torch.equal(model.f3.weight, model.fc.weight)
    model(x).sum().backward()
    assert model.fc.weight.grad is not None and model.my_param.grad is not None


# =========================================================================== S14: regression MLP


def _regression_ref() -> nn.Module:
    return nn.Sequential(nn.Linear(1000, 100), nn.ReLU(), nn.Linear(100, 10))


def test_s14_regression_mlp_trains() -> None:
    model = build("regression_mlp.net", seed=0)
    ref = seeded(_regression_ref, 0)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert_same_init(model, ref)
    assert_equivalent(copy.deepcopy(model), _regression_ref, torch.randn(3, 1000))
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1000, generator=gen), torch.randn(64, 10, generator=gen)
    losses = {}
    for key, net in (("spec", model), ("ref", ref)):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
        history = []
        for _ in range(10):
            optimizer.zero_grad()
            loss = F.mse_loss(net(x), y)
            loss.backward()
            optimizer.step()
            history.append(loss.item())
        losses[key] = history
    assert all(b < a for a, b in zip(losses["spec"], losses["spec"][1:]))  # falls every step
    assert losses["spec"][-1] < 0.7 * losses["spec"][0]
    assert losses["spec"] == losses["ref"]  # the same training, step for step


# =========================================================================== S16: depthwise conv


class DepthwiseSeparable(nn.Module):
    def __init__(self, channels: int = 32, out: int = 64, kernel: int = 3) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False
        )
        self.bn1 = nn.BatchNorm2d(channels)
        self.pointwise = nn.Conv2d(channels, out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.pointwise(F.relu(self.bn1(self.depthwise(x))))))


@pytest.mark.parametrize(("channels", "kernel"), [(32, 3), (12, 5)])
def test_s16_depthwise(channels: int, kernel: int) -> None:
    model = build("depthwise.net", seed=0, params={"channels": channels, "kernel": kernel})
    assert model.depthwise.weight.shape == (channels, 1, kernel, kernel)
    assert (
        model.depthwise.groups
        == model.depthwise.in_channels
        == model.depthwise.out_channels
        == channels
    )
    assert_same_init(model, seeded(lambda: DepthwiseSeparable(channels, kernel=kernel)))
    x = torch.randn(2, channels, 9, 11)
    out = assert_equivalent(
        model, lambda: randomised(DepthwiseSeparable(channels, kernel=kernel)), x
    )
    assert out.shape == (2, 64, 9, 11)


# =========================================================================== S17: dilation surgery


def _dilated_ref() -> nn.Module:
    """The surgery as written by hand on torchvision's ResNet-50."""
    model = torchvision.models.resnet50()
    for layer, d in ((model.layer3, 2), (model.layer4, 4)):
        for name, module in layer.named_modules():
            if name.endswith("conv2"):
                module.dilation, module.padding, module.stride = (d, d), (d, d), (1, 1)
            elif name.endswith("downsample.0"):
                module.stride = (1, 1)
    return model


def test_s17_dilation_output_stride_8() -> None:
    full = build("dilation.net", seed=1)
    ref = seeded(_dilated_ref, 1)
    assert_same_init(full, ref)  # resnet50's keys and weights: the surgery changes no tensor
    for name, module in ref.named_modules():
        if isinstance(module, nn.Conv2d):
            got = full.get_submodule(name)
            assert (got.dilation, got.padding, got.stride) == (
                module.dilation,
                module.padding,
                module.stride,
            ), name
    assert full.get_submodule("layer3.0.conv2").dilation == (2, 2)
    assert full.get_submodule("layer4.0.downsample.0").stride == (1, 1)
    ref = randomised(ref).eval()
    x = torch.randn(1, 3, 64, 64)
    assert_loads_both_ways(full, ref, x)
    model = feature_extractor(full, ["layer2", "layer4"])  # what build_model(outputs=) returns
    with torch.no_grad():
        got = model(x)
        want = nn.Sequential(*list(ref.children())[:-2])(x)  # the backbone up to layer4
    assert got["layer4"].shape == (1, 2048, 8, 8)  # 64 / 8
    assert got["layer2"].shape[-2:] == got["layer4"].shape[-2:]
    torch.testing.assert_close(got["layer4"], want, rtol=1e-5, atol=1e-5)
    # 224x224 -> 28x28, checked on the meta device (no compute)
    meta = feature_extractor(full.to("meta"), ["layer4"])
    assert meta(torch.empty(1, 3, 224, 224, device="meta"))["layer4"].shape == (1, 2048, 28, 28)


# =========================================================================== S20: save / load


def test_s20_save_and_load(tmp_path: Path) -> None:
    # state_dict save, then strict load with weights_only=True: bit-equal
    model = build("regression_mlp.net", seed=0)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    fresh = build("regression_mlp.net", seed=1)
    fresh.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True), strict=True)
    assert_same_init(fresh, model)

    # a checkpoint with optimizer state and epoch; training resumes identically
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(8, 1000), torch.randn(8, 10)

    def step(net: nn.Module, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad()
        F.mse_loss(net(x), y).backward()
        opt.step()

    step(model, optimizer)
    torch.save(
        {"epoch": 3, "model": model.state_dict(), "optimizer": optimizer.state_dict()},
        tmp_path / "ckpt.pt",
    )
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed = build("regression_mlp.net", seed=5)
    resumed.load_state_dict(ckpt["model"], strict=True)
    resumed_opt = torch.optim.Adam(resumed.parameters(), lr=1e-3)
    resumed_opt.load_state_dict(ckpt["optimizer"])
    assert ckpt["epoch"] == 3
    assert_same_init(resumed, model)
    step(model, optimizer)
    step(resumed, resumed_opt)
    assert_same_init(resumed, model)

    # a spec plus weights file (`dsl build`) that rebuilds the same model
    for suffix in (".pt", ".safetensors"):
        out = tmp_path / f"mnist{suffix}"
        assert (
            dsl_main(["build", str(EXAMPLES / "mnist_mlp.net"), "-o", str(out), "--seed", "6"]) == 0
        )
        assert_same_init(dsl.load_model(out), build("mnist_mlp.net", seed=6))


# =========================================================================== dsl validate


def _validate(paths: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert paths
    code = dsl_main(["validate", *map(str, paths)])
    assert code == 0, capsys.readouterr().out


def test_dsl_validate_examples(capsys: pytest.CaptureFixture[str]) -> None:
    _validate(sorted(EXAMPLES.glob("*.net")) + sorted(EXAMPLES.glob("*.yaml")), capsys)


def test_dsl_validate_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    _validate(sorted(BLOCKS.glob("*.net")), capsys)
