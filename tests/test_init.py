"""Initialisation: declared rules and recipes, reproducibility, streams, errors, training.

- bit-exact: the standard library's ResNet and VGG with their recipes equal torchvision's
  models under the same seed, and the S1 MLP equals a hand-written reference;
- properties (hypothesis): fan_in/fan_out as torch computes them (grouped convolutions
  too), sample statistics of every initialiser, `zero_init_residual`, meta-then-materialise,
  `init_stream="per-module"` stability, and bit-identical weights across processes;
- errors: a rule that matches nothing, an unknown initialiser or recipe;
- training: the S1 MLP with its default init learns.
"""

from __future__ import annotations

import gc
import hashlib
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from references import MnistMLP
from torch import nn

import dsl
import dsl.cli
from dsl.errors import DSLError, InitError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BLOCKS = ROOT / "blocks"
SPECS = Path(__file__).resolve().parent / "specs"

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def fewer(n: int) -> settings:
    """At most `n` examples (the profile's count when that is smaller): for tests that
    build whole networks per example."""
    return settings(max_examples=min(n, settings.default.max_examples))


def net(body: str, inputs: str = "input x: [N, 16]", name: str = "T") -> str:
    """A spec text: one net whose body is `body` (dedented, then indented under the net)."""
    lines = textwrap.dedent(body).strip("\n")
    return f"net {name}:\n    {inputs}\n" + textwrap.indent(lines, "    ") + "\n"


def assert_bit_equal(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    """The same keys in the same order and bit-identical tensors."""
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        assert got[key].shape == want[key].shape, key
        assert torch.equal(got[key], want[key]), f"{key} differs"


def all_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and every buffer, non-persistent ones included."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def seeded(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return make()


# =========================================================================== bit-exact


def test_resnet18_equals_torchvision() -> None:
    torchvision = pytest.importorskip("torchvision")
    for seed in (0, 7):
        model = dsl.build_model(BLOCKS / "resnet.net", seed=seed)
        ref = seeded(torchvision.models.resnet18, seed)
        assert_bit_equal(model.state_dict(), ref.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), ref.eval()(x), rtol=0, atol=0)


def test_resnet50_zero_init_residual_equals_torchvision() -> None:
    """ResNet-50 (Bottleneck, [3, 4, 6, 3]) with zero_init_residual=true; see
    tests/specs/resnet50.net (the library ResNet with Bottleneck bound)."""
    torchvision = pytest.importorskip("torchvision")
    model = dsl.build_model(SPECS / "resnet50.net", seed=3, params={"zero_init_residual": True})
    ref = seeded(lambda: torchvision.models.resnet50(zero_init_residual=True), 3)
    got, want = model.state_dict(), ref.state_dict()
    assert_bit_equal(got, want)
    assert all(not got[k].any() for k in got if k.endswith("bn3.weight"))
    # the same spec without the option is torchvision's default ResNet-50
    del model, ref, got, want
    model = dsl.build_model(SPECS / "resnet50.net", seed=3)
    ref = seeded(torchvision.models.resnet50, 3)
    assert_bit_equal(model.state_dict(), ref.state_dict())


def test_vgg16_bn_equals_torchvision() -> None:
    """examples/vgg16_bn.net and the library's VGG(batch_norm=true) equal
    torchvision.models.vgg16_bn() under the same seed (~138M parameters each)."""
    torchvision = pytest.importorskip("torchvision")
    ref = seeded(torchvision.models.vgg16_bn, 5).eval()
    want = ref.state_dict()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = ref(x)
    del ref
    gc.collect()
    for spec, params in (
        (EXAMPLES / "vgg16_bn.net", {}),
        (BLOCKS / "vgg.net", {"batch_norm": True}),
    ):
        model = dsl.build_model(spec, seed=5, params=params).eval()
        assert_bit_equal(model.state_dict(), want)
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
        del model
        gc.collect()
    del want
    gc.collect()


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_mnist_mlp_equals_hand_written(seed: int) -> None:
    model = dsl.build_model(EXAMPLES / "mnist_mlp.net", seed=seed)
    ref = seeded(MnistMLP, seed)
    assert_bit_equal(model.state_dict(), ref.state_dict())
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)


# =========================================================================== rules


def test_later_and_more_specific_rules_win() -> None:
    body = """
    init:
        Linear.weight: zeros()
        "b.weight": ones()
    a = Linear(16)
    b = Linear(16)
    return b(a(x))
    """
    model = dsl.build_model(net(body), seed=0)
    assert not model.a.weight.any()
    assert torch.equal(model.b.weight, torch.ones(16, 16))
    # the other order: the type rule comes last and wins everywhere
    swapped = body.replace(
        'Linear.weight: zeros()\n        "b.weight": ones()',
        '"b.weight": ones()\n        Linear.weight: zeros()',
    )
    model = dsl.build_model(net(swapped), seed=0)
    assert not model.a.weight.any() and not model.b.weight.any()


def test_a_blocks_rules_run_when_it_is_built_and_the_nets_after() -> None:
    """Construction order: a block's `init:` runs when the block is built (its draws come
    before the next member's construction), the net's rules at the end, last one winning,
    as a hand-written `__init__` that initialises its own submodules draws (issue 13)."""
    spec = """
block Inner(n):
    input x
    init:
        Linear.weight: xavier_uniform()
        Linear.bias: ones()
    fc = Linear(n)
    return fc(x)

net T:
    input x: [N, 16]
    init:
        "out.bias": zeros()
        Linear.bias: constant(2.0)
    inner = Inner(16)
    out = Linear(4)
    return out(inner(x))
"""

    class Inner(nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.fc = nn.Linear(n, n)
            nn.init.xavier_uniform_(self.fc.weight)
            nn.init.ones_(self.fc.bias)

    class T(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Inner(16)
            self.out = nn.Linear(16, 4)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.constant_(m.bias, 2.0)

    model = dsl.build_model(spec, seed=5)
    torch.manual_seed(5)
    reference = T()
    for (name, ours), theirs in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(ours, theirs), name
    assert torch.equal(model.inner.fc.bias, torch.full((16,), 2.0))  # the net's rule came last


def test_a_sequential_blocks_own_init_runs_when_it_is_built() -> None:
    """`block X = Sequential:` with its own `init:` is torchvision's MLPBlock: an
    nn.Sequential whose __init__ initialises its Linear layers (issue 13)."""
    spec = """
block MLPBlock(dim, hidden) = Sequential:
    init:
        Linear.weight: xavier_uniform()
        Linear.bias: normal(std=1e-6)
    Linear(hidden)
    GELU()
    Linear(dim)

net T:
    input x: [N, 8]
    mlp = MLPBlock(8, 32)
    head = Linear(3)
    return head(mlp(x))
"""
    model = dsl.build_model(spec, seed=2)
    torch.manual_seed(2)
    mlp = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8))
    for m in mlp.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.normal_(m.bias, std=1e-6)
    head = nn.Linear(8, 3)
    reference = [*mlp.state_dict().values(), *head.state_dict().values()]
    assert list(model.state_dict()) == [
        "mlp.0.weight",
        "mlp.0.bias",
        "mlp.2.weight",
        "mlp.2.bias",
        "head.weight",
        "head.bias",
    ]
    for ours, theirs in zip(model.state_dict().values(), reference):
        assert torch.equal(ours, theirs)


def test_rules_leave_unmatched_tensors_at_torch_defaults() -> None:
    """A rule on one tensor changes nothing else: every other tensor is what the layer's
    own reset_parameters gave (the rule draws after every module is constructed)."""
    plain = dsl.build_model(net("a = Linear(16)\nb = Linear(8)\nreturn b(a(x))"), seed=4)
    ruled = dsl.build_model(
        net('init:\n    "a.bias": constant(0.5)\na = Linear(16)\nb = Linear(8)\nreturn b(a(x))'),
        seed=4,
    )
    for name, tensor in plain.state_dict().items():
        if name != "a.bias":
            assert torch.equal(ruled.state_dict()[name], tensor), name
    assert torch.equal(ruled.a.bias, torch.full((16,), 0.5))


# =========================================================================== fan_in / fan_out

LAYER_KINDS = ("Linear", "Conv1d", "Conv2d", "Conv3d")
NONLINEARITIES = ("relu", "leaky_relu", "tanh", "linear", "sigmoid", "conv2d")
GAINS = {
    "1.0": 1.0,
    "0.5": 0.5,
    "2 ** 0.5": 2**0.5,
    'calculate_gain("tanh")': nn.init.calculate_gain("tanh"),
    'calculate_gain("leaky_relu", 0.2)': nn.init.calculate_gain("leaky_relu", 0.2),
}


@st.composite
def fan_cases(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(LAYER_KINDS))
    if kind == "Linear":
        cin, cout, groups, kernel = draw(st.integers(1, 24)), draw(st.integers(1, 24)), 1, ()
    else:
        groups = draw(st.integers(1, 4))
        cin = groups * draw(st.integers(1, 6))
        cout = groups * draw(st.integers(1, 6))
        kernel = tuple(draw(st.integers(1, 3)) for _ in range(int(kind[-2])))
    init_name = draw(
        st.sampled_from(("kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal"))
    )
    if init_name.startswith("kaiming"):
        nonlinearity = draw(st.sampled_from(NONLINEARITIES))
        mode = draw(st.sampled_from(("fan_in", "fan_out")))
        a = draw(st.sampled_from((0, 0.1, 0.2, 5**0.5)))
        text_kwargs = f'a={a!r}, mode="{mode}", nonlinearity="{nonlinearity}"'
        kwargs: dict[str, Any] = {"a": a, "mode": mode, "nonlinearity": nonlinearity}
    else:
        gain_text = draw(st.sampled_from(sorted(GAINS)))
        text_kwargs, kwargs = f"gain={gain_text}", {"gain": GAINS[gain_text]}
    by_type = draw(st.booleans())
    return {
        "kind": kind,
        "cin": cin,
        "cout": cout,
        "groups": groups,
        "kernel": kernel,
        "init": init_name,
        "text_kwargs": text_kwargs,
        "kwargs": kwargs,
        "by_type": by_type,
        "seed": draw(SEEDS),
    }


@given(fan_cases())
def test_fan_in_and_fan_out_as_torch_computes_them(case: dict[str, Any]) -> None:
    """A rule on a random (grouped) Linear/ConvNd gives exactly torch's own init call on
    the layer's weight: the same fan_in/fan_out, the same draws."""
    kind, cin, cout, groups, kernel = (
        case["kind"],
        case["cin"],
        case["cout"],
        case["groups"],
        case["kernel"],
    )
    if kind == "Linear":
        inputs, call = f"input x: [2, {cin}]", f"Linear({cin}, {cout})"
        make = lambda: nn.Linear(cin, cout)  # noqa: E731
    else:
        spatial = ", ".join(str(k + 2) for k in kernel)
        inputs = f"input x: [2, {cin}, {spatial}]"
        call = f"{kind}({cin}, {cout}, kernel_size={kernel!r}, groups={groups})"
        make = lambda: getattr(nn, kind)(cin, cout, kernel_size=kernel, groups=groups)  # noqa: E731
    target = f"{kind}.weight" if case["by_type"] else '"layer.weight"'
    body = f"init:\n    {target}: {case['init']}({case['text_kwargs']})\nlayer = {call}\nreturn layer(x)"
    model = dsl.build_model(net(body, inputs), seed=case["seed"])
    ref = seeded(make, case["seed"])
    with torch.no_grad():
        getattr(nn.init, case["init"] + "_")(ref.weight, **case["kwargs"])
    assert tuple(model.layer.weight.shape) == tuple(ref.weight.shape)
    assert_bit_equal(
        {k.removeprefix("layer."): v for k, v in model.state_dict().items()}, ref.state_dict()
    )


# =========================================================================== statistics

N = 256  # Linear(256, 256): 65536 samples


def _trunc_normal_moments(mean: float, std: float, a: float, b: float) -> tuple[float, float]:
    """Mean and std of normal(mean, std) truncated to [a, b] (absolute bounds, as torch)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda t: (1 + math.erf(t / math.sqrt(2))) / 2  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / z
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - shift**2
    return mean + std * shift, std * math.sqrt(var)


def assert_moments(w: torch.Tensor, mean: float, std: float) -> None:
    """Sample mean within 5 standard errors; sample std within 3% (65536 samples: the
    standard error of the std is about 0.3%)."""
    w = w.detach().double()
    n = w.numel()
    assert abs(w.mean().item() - mean) <= 5 * std / math.sqrt(n) + 1e-12, (w.mean().item(), mean)
    assert abs(w.std().item() - std) <= 0.03 * std, (w.std().item(), std)


def build_linear(rule: str, seed: int, n: int = N) -> torch.Tensor:
    body = f'init:\n    "fc.weight": {rule}\nfc = Linear({n}, {n})\nreturn fc(x)'
    return dsl.build_model(net(body, f"input x: [2, {n}]"), seed=seed).fc.weight


def build_conv_weight(
    rule: str, seed: int, cin: int, cout: int, k: int, groups: int = 1
) -> torch.Tensor:
    body = f"init:\n    Conv2d.weight: {rule}\nconv = Conv2d({cin}, {cout}, kernel_size={k}, padding={k // 2}, groups={groups})\nreturn conv(x)"
    return dsl.build_model(net(body, f"input x: [2, {cin}, 8, 8]"), seed=seed).conv.weight


STAT = fewer(12)
SCALES = st.sampled_from((0.01, 0.1, 0.5, 1.0, 3.0))


@STAT
@given(SEEDS, st.sampled_from((-1.0, 0.0, 0.25)), st.sampled_from((0.5, 1.0, 2.0)))
def test_uniform_statistics(seed: int, low: float, width: float) -> None:
    w = build_linear(f"uniform({low!r}, {low + width!r})", seed)
    assert w.min() >= low and w.max() <= low + width
    assert_moments(w, low + width / 2, width / math.sqrt(12))


@STAT
@given(SEEDS, st.sampled_from((-1.0, 0.0, 2.0)), SCALES)
def test_normal_statistics(seed: int, mean: float, std: float) -> None:
    assert_moments(build_linear(f"normal({mean!r}, {std!r})", seed), mean, std)


@STAT
@given(SEEDS, SCALES, st.sampled_from(((-2.0, 2.0), (-1.0, 1.0), (-0.5, 3.0))))
def test_trunc_normal_statistics(seed: int, std: float, bounds: tuple[float, float]) -> None:
    a, b = bounds
    w = build_linear(f"trunc_normal(std={std!r}, a={a!r}, b={b!r})", seed)
    assert w.min() >= a and w.max() <= b
    assert_moments(w, *_trunc_normal_moments(0.0, std, a, b))


@STAT
@given(SEEDS, st.sampled_from((-2.5, 0.0, 0.125, 7.0)))
def test_constant_zeros_ones(seed: int, value: float) -> None:
    assert torch.equal(build_linear(f"constant({value!r})", seed), torch.full((N, N), value))
    assert torch.equal(build_linear("zeros()", seed), torch.zeros(N, N))
    assert torch.equal(build_linear("ones()", seed), torch.ones(N, N))


def test_eye() -> None:
    assert torch.equal(build_linear("eye()", 0, n=32), torch.eye(32))
    body = 'init:\n    "fc.weight": eye()\nfc = Linear(12, 5)\nreturn fc(x)'
    assert torch.equal(
        dsl.build_model(net(body, "input x: [2, 12]"), seed=0).fc.weight, torch.eye(5, 12)
    )


@STAT
@given(st.integers(1, 6), st.sampled_from((1, 3, 5)), st.sampled_from((1, 2)))
def test_dirac_preserves_the_input(channels: int, k: int, groups: int) -> None:
    """dirac() on a conv weight: the conv (bias aside) is the identity."""
    cin = channels * groups
    weight = build_conv_weight(
        f"dirac(groups={groups})" if groups > 1 else "dirac()", 0, cin, cin, k, groups=1
    )
    expected = torch.empty(cin, cin, k, k)
    nn.init.dirac_(expected, groups=groups)
    assert torch.equal(weight, expected)
    if groups == 1:
        x = torch.randn(2, cin, 8, 8)
        torch.testing.assert_close(F.conv2d(x, weight, padding=k // 2), x)


@STAT
@given(SEEDS, st.sampled_from((1.0, 0.5, 2.0)), st.sampled_from(((64, 64), (32, 96), (96, 32))))
def test_orthogonal(seed: int, gain: float, shape: tuple[int, int]) -> None:
    rows, cols = shape
    body = f'init:\n    "fc.weight": orthogonal(gain={gain!r})\nfc = Linear({cols}, {rows})\nreturn fc(x)'
    w = dsl.build_model(net(body, f"input x: [2, {cols}]"), seed=seed).fc.weight.detach().double()
    gram = w @ w.T if rows <= cols else w.T @ w
    torch.testing.assert_close(
        gram, gain**2 * torch.eye(min(rows, cols), dtype=torch.float64), atol=1e-5, rtol=0
    )


@STAT
@given(
    SEEDS,
    st.sampled_from(sorted(GAINS)),
    st.sampled_from(((256, 256), (128, 512), (512, 128))),
    st.booleans(),
)
def test_xavier_statistics(
    seed: int, gain_text: str, shape: tuple[int, int], uniform: bool
) -> None:
    fan_out, fan_in = shape
    body = f'init:\n    "fc.weight": xavier_{"uniform" if uniform else "normal"}(gain={gain_text})\nfc = Linear({fan_in}, {fan_out})\nreturn fc(x)'
    w = dsl.build_model(net(body, f"input x: [2, {fan_in}]"), seed=seed).fc.weight
    std = GAINS[gain_text] * math.sqrt(2.0 / (fan_in + fan_out))
    if uniform:
        assert w.abs().max() <= std * math.sqrt(3) * (1 + 1e-6)
    assert_moments(w, 0.0, std)


@STAT
@given(
    SEEDS,
    st.sampled_from(NONLINEARITIES),
    st.sampled_from((0, 0.2, 5**0.5)),
    st.sampled_from(("fan_in", "fan_out")),
    st.booleans(),
    st.sampled_from((1, 4)),
)
def test_kaiming_statistics(
    seed: int, nonlinearity: str, a: float, mode: str, uniform: bool, groups: int
) -> None:
    """On a grouped 3x3 conv, weight [128, 128 / groups, 3, 3]: fan_in = 9 * 128 / groups
    and fan_out = 9 * 128, as torch computes them from the weight's own shape."""
    kind = "uniform" if uniform else "normal"
    w = build_conv_weight(
        f'kaiming_{kind}(a={a!r}, mode="{mode}", nonlinearity="{nonlinearity}")',
        seed,
        128,
        128,
        3,
        groups,
    )
    fan_in = (128 // groups) * 9
    fan_out = 128 * 9
    gain = nn.init.calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    if uniform:
        assert w.abs().max() <= std * math.sqrt(3) * (1 + 1e-6)
    assert_moments(w, 0.0, std)


@STAT
@given(SEEDS, st.sampled_from((0.1, 0.5, 0.9)), st.sampled_from((0.01, 1.0)))
def test_sparse(seed: int, sparsity: float, std: float) -> None:
    w = build_linear(f"sparse({sparsity!r}, std={std!r})", seed)
    zeros_per_column = (w == 0).sum(dim=0)
    # sparse_ zeroes exactly ceil(sparsity * rows) per column; torch's normal sampler can
    # itself draw an exact 0.0 now and then (seed 5256 draws one in 65,536 values).
    assert torch.all(zeros_per_column >= math.ceil(sparsity * N))
    assert int((zeros_per_column - math.ceil(sparsity * N)).sum()) <= 2
    assert_moments(w[w != 0], 0.0, std)


def test_recipes_statistics() -> None:
    """The recipes' tensors: resnet's conv fan_out/relu std and BN 1/0, vgg's Linear
    normal(0, 0.01) and zero biases, transformer's trunc_normal(0.02) and LayerNorm 1/0."""

    def body(recipe: str | None) -> str:
        init = f"init:\n    {recipe}\n" if recipe else ""
        return (
            f"{init}conv = Conv2d(128, kernel_size=3, padding=1)\nbn = BatchNorm2d()\ngn = GroupNorm(8, 128)\n"
            "fc = Linear(256, 256)\nln = LayerNorm()\nreturn ln(fc(x2)), gn(bn(conv(x)))"
        )

    inputs = "input x: [2, 64, 8, 8]\n    input x2: [2, 256]"
    conv_std = math.sqrt(2.0) / math.sqrt(128 * 9)
    resnet = dsl.build_model(net(body("resnet()"), inputs), seed=0)
    assert_moments(resnet.conv.weight, 0.0, conv_std)
    for norm in (resnet.bn, resnet.gn):
        assert torch.equal(norm.weight, torch.ones(128)) and not norm.bias.any()
    vgg = dsl.build_model(net(body("vgg()"), inputs), seed=0)
    assert_moments(vgg.conv.weight, 0.0, conv_std)
    assert not vgg.conv.bias.any() and not vgg.fc.bias.any()
    assert_moments(vgg.fc.weight, 0.0, 0.01)
    tr = dsl.build_model(net(body("transformer()"), inputs), seed=0)
    assert_moments(tr.fc.weight, *_trunc_normal_moments(0.0, 0.02, -2.0, 2.0))
    assert not tr.fc.bias.any()
    assert torch.equal(tr.ln.weight, torch.ones(256)) and not tr.ln.bias.any()
    # transformer() leaves the conv and BN at torch's defaults
    plain = dsl.build_model(net(body(None), inputs), seed=0)
    assert torch.equal(tr.conv.weight, plain.conv.weight)


# =========================================================================== zero_init_residual


@fewer(10)
@given(
    st.sampled_from(("basic", "bottleneck")),
    st.lists(st.integers(1, 2), min_size=4, max_size=4),
    st.sampled_from((4, 8)),
    SEEDS,
)
def test_zero_init_residual_zeroes_exactly_the_last_bn(
    block: str, layers: list[int], width: int, seed: int
) -> None:
    spec = BLOCKS / "resnet.net" if block == "basic" else SPECS / "resnet50.net"
    last = "bn2" if block == "basic" else "bn3"
    params = {"layers": layers, "width": width, "num_classes": 10}
    plain = dsl.build_model(spec, seed=seed, params=params).state_dict()
    zeroed = dsl.build_model(
        spec, seed=seed, params={**params, "zero_init_residual": True}
    ).state_dict()
    expected = {f"layer{s + 1}.{i}.{last}.weight" for s, n in enumerate(layers) for i in range(n)}
    changed = {k for k in plain if not torch.equal(plain[k], zeroed[k])}
    assert changed == expected
    for key in expected:
        assert not zeroed[key].any()
        assert torch.equal(plain[key], torch.ones_like(plain[key]))


def test_zero_init_residual_on_own_blocks() -> None:
    """The recipe finds residual blocks by their `+`: not a plain block's last BN, not the
    BN inside a downsample Sequential, not the net's own BN."""
    spec = (
        (EXAMPLES / "residual_block.net")
        .read_text()
        .replace(
            "net ResidualStage(width=64, planes=128):\n    input x: [B, width, H, W]\n",
            "block Plain(planes):\n    input x\n    conv = Conv2d(planes, kernel_size=3, padding=1)\n    bn = BatchNorm2d()\n    return bn(conv(x))\n\n"
            "net ResidualStage(width=64, planes=128):\n    input x: [B, width, H, W]\n    init:\n        zero_init_residual()\n"
            "    stem = BatchNorm2d()\n    x = stem(x)\n    x = plain(x): Plain(width)\n",
        )
    )
    assert "zero_init_residual()" in spec
    model = dsl.build_model(
        spec, seed=0, params={"width": 8, "planes": 16}, sizes={"B": 2, "H": 8, "W": 8}
    )
    zeroed = {n for n, p in model.named_parameters() if n.endswith("weight") and not p.any()}
    assert zeroed == {"block1.bn2.weight", "block2.bn2.weight"}
    assert torch.equal(model.block1.downsample[1].weight, torch.ones(16))


# =========================================================================== meta, materialise

OWN_TENSORS = """
net Own(n=4):
    input x: [N, n]
    param w: [n, 3] = normal(0, 0.5)
    param b: [3] = uniform(-1, 1)
    buffer scale: [3] = uniform()
    buffer mask: [3] = normal(), persistent=false
    init:
        Linear.weight: orthogonal()
    fc = Linear(5)
    return fc((x @ w + b) * scale * mask)
"""

SMALL_VGG = """
from vgg import VGGFeatures

net SmallVGG:
    input x: [B, 3, 16, 16]
    init:
        vgg()
    features = VGGFeatures([8, "M", 16, "M"], batch_norm=true)
    fc = Linear(10)
    return fc(flatten(features(x), 1))
"""

MATERIALIZE_SPECS: dict[str, tuple[Any, dict[str, Any]]] = {
    "mnist_mlp": (EXAMPLES / "mnist_mlp.net", {}),
    "resnet": (
        BLOCKS / "resnet.net",
        {"width": 8, "layers": [1, 1, 1, 1], "num_classes": 10, "zero_init_residual": True},
    ),
    "bottleneck": (SPECS / "resnet50.net", {"width": 4, "layers": [1, 2, 1, 1], "num_classes": 10}),
    "vgg_features": (SMALL_VGG, {}),
    "own_tensors": (OWN_TENSORS, {}),
}


@fewer(15)
@given(st.sampled_from(sorted(MATERIALIZE_SPECS)), SEEDS, st.sampled_from(("global", "per-module")))
def test_meta_then_materialize_equals_direct(name: str, seed: int, stream: str) -> None:
    spec, params = MATERIALIZE_SPECS[name]
    meta = dsl.build_model(
        spec,
        params=params,
        device="meta",
        init_stream=stream,
        seed=seed if stream == "per-module" else None,
    )
    assert all(t.is_meta for t in all_tensors(meta).values())
    direct = dsl.build_model(spec, params=params, seed=seed, init_stream=stream)
    real = dsl.materialize(meta, "cpu", seed=seed, init_stream=stream)
    assert real is meta
    assert not any(t.is_meta for t in all_tensors(real).values())
    assert_bit_equal(real.state_dict(), direct.state_dict())
    assert_bit_equal(all_tensors(real), all_tensors(direct))
    for (n1, p1), (n2, p2) in zip(real.named_parameters(), direct.named_parameters()):
        assert n1 == n2 and isinstance(p1, nn.Parameter) and p1.requires_grad == p2.requires_grad


def test_materialize_keeps_non_persistent_buffers_out_of_the_state_dict() -> None:
    meta = dsl.build_model(OWN_TENSORS, device="meta")
    real = dsl.materialize(meta, "cpu", seed=9)
    direct = dsl.build_model(OWN_TENSORS, seed=9)
    assert list(real.state_dict()) == ["w", "b", "scale", "fc.weight", "fc.bias"]
    assert torch.equal(real.mask, direct.mask)
    x = torch.randn(2, 4)
    torch.testing.assert_close(real(x), direct(x), rtol=0, atol=0)


# =========================================================================== per-module stream

WIDTH = 8


def chain_spec(names: list[str], style: str, rule: bool) -> str:
    init = "init:\n    Linear.weight: xavier_uniform()\n" if rule else ""
    if style == "sequential":
        children = "".join(f"    {n} = Linear({WIDTH})\n" for n in names)
        return net(f"{init}body = Sequential:\n{children}return body(x)", f"input x: [N, {WIDTH}]")
    members = "".join(f"{n} = Linear({WIDTH})\n" for n in names)
    calls = "".join(f"x = {n}(x)\n" for n in names)
    return net(f"{init}{members}{calls}return x", f"input x: [N, {WIDTH}]")


@fewer(25)
@given(st.integers(1, 5), st.data(), st.sampled_from(("sequential", "graph")), st.booleans(), SEEDS)
def test_per_module_stream_inserting_a_layer_changes_no_other(
    n: int, data: st.DataObject, style: str, rule: bool, seed: int
) -> None:
    names = [f"l{i}" for i in range(n)]
    where = data.draw(st.integers(0, n), label="where")
    longer = [*names[:where], "inserted", *names[where:]]
    a = dsl.build_model(
        chain_spec(names, style, rule), seed=seed, init_stream="per-module"
    ).state_dict()
    b = dsl.build_model(
        chain_spec(longer, style, rule), seed=seed, init_stream="per-module"
    ).state_dict()
    again = dsl.build_model(
        chain_spec(names, style, rule), seed=seed, init_stream="per-module"
    ).state_dict()
    assert_bit_equal(again, a)
    for key, tensor in a.items():
        assert torch.equal(b[key], tensor), key
    # the default global stream, by contrast, shifts every layer built after the insertion
    if where < n:
        g_a = dsl.build_model(chain_spec(names, style, rule), seed=seed).state_dict()
        g_b = dsl.build_model(chain_spec(longer, style, rule), seed=seed).state_dict()
        assert any(not torch.equal(g_a[k], g_b[k]) for k in g_a)


def test_per_module_stream_depends_on_the_seed_and_names_only() -> None:
    spec = chain_spec(["l0", "l1"], "graph", rule=False)
    a = dsl.build_model(spec, seed=1, init_stream="per-module")
    b = dsl.build_model(spec, seed=2, init_stream="per-module")
    assert not torch.equal(a.l0.weight, b.l0.weight)
    assert not torch.equal(a.l0.weight, a.l1.weight)  # same shape, different names
    torch.manual_seed(123)  # the global stream's state does not matter
    c = dsl.build_model(spec, seed=1, init_stream="per-module")
    assert_bit_equal(c.state_dict(), a.state_dict())
    with pytest.raises(DSLError):
        dsl.build_model(spec, init_stream="per-module")  # needs a seed
    with pytest.raises(DSLError):
        dsl.build_model(spec, seed=1, init_stream="per-layer")


# =========================================================================== across processes

_HASH_SCRIPT = """
import hashlib, sys
import dsl
import dsl.cli
for stream in ("global", "per-module"):
    model = dsl.build_model(sys.argv[1], seed=1234, init_stream=stream, params={"width": 16})
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.contiguous().numpy().tobytes())
    print(h.hexdigest())
"""


def state_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.contiguous().numpy().tobytes())
    return h.hexdigest()


def test_two_processes_give_bit_identical_weights() -> None:
    """Two fresh interpreters (different hash seeds) and this one agree bit for bit, with
    the global stream and with the per-module one."""
    spec = str(BLOCKS / "resnet.net")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _HASH_SCRIPT, spec],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        )
        for hash_seed in (1, 2)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(out.split())
    here = [
        state_hash(dsl.build_model(spec, seed=1234, init_stream=stream, params={"width": 16}))
        for stream in ("global", "per-module")
    ]
    assert here[0] != here[1]
    assert outs == [here, here]


# =========================================================================== errors


def conv_net(rule: str) -> str:
    return net(
        f"init:\n    {rule}\nconv = Conv2d(8, kernel_size=3, bias=false)\nbn = BatchNorm2d()\nreturn bn(conv(x))",
        "input x: [2, 3, 8, 8]",
    )


RULE_LINE = 4  # `net T:`, input, `init:`, then the rule


@pytest.mark.parametrize(
    "rule, hint",
    [
        ("GRU.weight: zeros()", "there is no GRU layer here"),
        ("Linear.weight: normal(0, 0.01)", "there is no Linear layer here"),
        ("Batchnorm2d.weight: ones()", "did you mean 'BatchNorm2d'"),
        ("Conv2d.bias: zeros()", "bias=false"),
        ("Conv2d.wieght: zeros()", "did you mean 'weight'"),
        ('"conv.wieght": zeros()', "conv.weight"),
        ('"layer*.*.bn2.weight": zeros()', None),
    ],
)
def test_a_rule_that_matches_nothing_is_an_error(rule: str, hint: str | None) -> None:
    with pytest.raises(InitError) as info:
        dsl.build_model(conv_net(rule), seed=0)
    err = info.value
    assert isinstance(err, DSLError)
    assert err.span.line == RULE_LINE
    assert "matches no" in err.message
    if hint is not None:
        assert hint in (err.hint or ""), err.hint
    assert "Traceback" not in err.render()


def test_a_rule_in_a_block_that_matches_nothing_names_its_line() -> None:
    spec = """
block B(n):
    input x
    init:
        Linear.bias: zeros()
    fc = Linear(n, bias=false)
    return fc(x)

net T:
    input x: [N, 4]
    return b(x): B(3)
"""
    with pytest.raises(InitError) as info:
        dsl.build_model(spec, seed=0)
    assert info.value.span.line == 5


def test_a_recipe_that_matches_nothing_is_fine() -> None:
    """A recipe lists rules for many layer types; those a net lacks are no error."""
    model = dsl.build_model(conv_net("resnet(zero_init_residual=true)"), seed=0)
    assert torch.equal(model.bn.weight, torch.ones(8))


@pytest.mark.parametrize(
    "rule, message, suggestion",
    [
        ("Conv2d.weight: kaiming_normall()", "unknown initialiser", "kaiming_normal"),
        ("Conv2d.weight: xavier()", "unknown initialiser", "xavier_"),
        ("resnett()", "unknown init recipe", "resnet"),
        ("zero_init_residuals()", "unknown init recipe", "zero_init_residual"),
        ("Conv2d.weight: resnet()", "recipe", None),
    ],
)
def test_unknown_initialiser_or_recipe(rule: str, message: str, suggestion: str | None) -> None:
    with pytest.raises(InitError) as info:
        dsl.build_model(conv_net(rule), seed=0)
    err = info.value
    assert message in err.message
    assert err.span.line == RULE_LINE
    if suggestion is not None:
        assert suggestion in (err.hint or ""), err.hint


def test_bad_initialiser_arguments_are_dsl_errors() -> None:
    with pytest.raises(DSLError):
        dsl.build_model(conv_net("resnet(zero_init=true)"), seed=0)


# =========================================================================== training


def test_mnist_mlp_trains() -> None:
    """S1 with its default init, 20 full-batch Adam steps on a 10-class problem of
    1x28x28 images (fixed random prototypes plus strong noise): over 90% training accuracy,
    from chance level."""
    g = torch.Generator().manual_seed(2024)
    prototypes = torch.randn(10, 1, 28, 28, generator=g)
    y = torch.arange(10).repeat_interleave(20)
    x = prototypes[y] + 3.0 * torch.randn(len(y), 1, 28, 28, generator=g)
    model = dsl.build_model(EXAMPLES / "mnist_mlp.net", seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def accuracy() -> float:
        with torch.no_grad():
            return (model(x).argmax(dim=1) == y).float().mean().item()

    before = accuracy()
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        probs = model(x)  # S1 ends in Softmax(dim=1): NLL on the log of its output
        loss = F.nll_loss(torch.log(probs.clamp_min(1e-12)), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    after = accuracy()
    assert before < 0.3
    assert losses[-1] < losses[0]
    assert after > 0.9, (before, after, losses)


def test_validate_finds_a_rule_that_matches_nothing_without_building(tmp_path: Path) -> None:
    """`dsl validate` never builds real weights, yet reports a rule that matches nothing."""
    spec = tmp_path / "rules.net"
    spec.write_text(
        "net A:\n    input x: [B, 4]\n    init:\n        GRU.weight: zeros()\n    fc = Linear(2)\n    return fc(x)\n"
    )
    with pytest.raises(InitError) as info:
        dsl.validate(spec)
    assert (info.value.span.line, info.value.span.col) == (4, 9)
    assert dsl.cli.main(["validate", str(spec)]) == 1
