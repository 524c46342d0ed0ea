"""Regressions for what the long fuzz campaigns (issue 14, `python -m tests.fuzz`) found:
each input class that escaped as a non-DSLError, with the located DSLError it gives now."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

import dsl
from dsl.errors import NetworkAccessError
from tests.test_trust_runtime import no_network  # noqa: F401  (a fixture)

EXAMPLES = Path(__file__).parent.parent / "examples"

# Campaign seed 20261207: examples/features.net with `resnet18(\uff11)` (a full-width 1)
# reached torchvision's download as `weights=1`: validate raised URLError at offline.py.
POSITIONAL_WEIGHTS = ("\uff11", "1", "True", '"DEFAULT"', '"IMAGENET1K_V1", false')


@pytest.mark.parametrize("argument", POSITIONAL_WEIGHTS)
@pytest.mark.parametrize("form", ["derived", "layer"])
def test_weights_passed_positionally_are_refused_without_a_download(
    argument: str,
    form: str,
    no_network: list[str],  # noqa: F811  (the imported fixture)
) -> None:
    call = f"torchvision.models.resnet18({argument})"
    spec = (
        f"net P = {call}:\n    input x: [B, 3, 32, 32]\n"
        if form == "derived"
        else f"net P:\n    input x: [B, 3, 32, 32]\n    m = {call}\n    return m(x)\n"
    )
    with pytest.raises(NetworkAccessError) as info:
        dsl.validate(spec)
    assert no_network == []
    assert info.value.code == "E520" and info.value.span.line == (1 if form == "derived" else 3)
    assert "resnet18(weights=" in info.value.message
    assert "allow_download=True" in (info.value.hint or "")
    with pytest.raises(NetworkAccessError):
        dsl.build_model(spec, device="meta")
    assert no_network == []


@pytest.mark.parametrize("argument", ["None", "false", "weights=None"])
def test_no_weights_passed_positionally_still_build(argument: str) -> None:
    spec = f"net P = torchvision.models.resnet18({argument}):\n    input x: [B, 3, 32, 32]\n"
    assert dsl.validate(spec).output.shape[-1] == 1000


# Campaign seed 20261207: examples/masked_attention.net with `attn(dropout, x, x, ...)`:
# MultiheadAttention's forward read `0.1.dim()`, an AttributeError out of validate.
def test_a_number_where_a_layer_takes_a_tensor_is_a_located_error() -> None:
    spec = (
        "net A(p=0.1):\n"
        "    input x: [B, T, 32]\n"
        "    attn = MultiheadAttention(32, 4, batch_first=true)\n"
        "    y, _ = attn(p, x, x, need_weights=false)\n"
        "    return y\n"
    )
    with pytest.raises(dsl.DSLError) as info:
        dsl.validate(spec)
    assert info.value.code == "E300" and (info.value.span.line, info.value.span.col) == (4, 12)
    assert info.value.message == (
        "attn (MultiheadAttention) expects tensors computed in forward where torch takes "
        "them, not (float, a tensor, a tensor)"
    )
    assert info.value.hint == "pass the tensor first, e.g. attn(x, ...)"


# Campaign seed 20261208: examples/gpt.net with `c_attn = Linear(10**9 * d_model)`: the
# `.split(d_model, dim=2)` after it made a billion meta tensors (the worker passed 1 GiB
# and was killed). A split into more than MAX_PIECES tensors is refused before torch.
@pytest.mark.parametrize(
    ("call", "pieces", "name"),
    [
        ("x.split(1, dim=1)", 10**9, "split"),
        ("split(x, 4, 1)", 250_000_000, "split"),
        ("x.chunk(10**6, 1)", 10**6, "chunk"),
        ("x.unbind(dim=1)", 10**9, "unbind"),
        ("x.tensor_split(70000)", 70_000, "tensor_split"),
    ],
)
def test_a_split_into_too_many_tensors_is_refused_before_torch_makes_them(
    call: str, pieces: int, name: str
) -> None:
    from dsl.elaborate.limits import MAX_PIECES

    spec = f"net S:\n    input x: [B, 10**9]\n    a, b = {call}\n    return a\n"
    with pytest.raises(dsl.DSLError) as info:
        dsl.validate(spec)
    assert info.value.code == "E602" and info.value.span.line == 3
    assert info.value.message == (
        f"{name}() would make {pieces:,} tensors; the limit is {MAX_PIECES:,} (MAX_PIECES)"
    )
    assert "MAX_PIECES" in (info.value.hint or "")


def test_splits_under_the_limit_still_work() -> None:
    spec = (
        "net S:\n    input x: [B, 65536]\n    parts = x.split(1, dim=1)\n"
        "    q, k, v = x.chunk(3, dim=1)\n    return parts[5] + q[:, :1]\n"
    )
    assert tuple(dsl.validate(spec).output.shape) == (2, 1)


# Campaign seed 20261207: examples/two_outputs.net with `return to, x1000`: validate
# accepted a function among the returned values; build_model's generated forward did not
# compile (SyntaxError at compile.py).
@pytest.mark.parametrize(
    ("returned", "kind"),
    [
        ("to, fc(x)", "function to"),
        ("fc(x), relu", "function relu"),
        ("fc(x), fc", "module 'fc'"),
        ("[fc(x), (1, Linear)]", "layer Linear"),
        ("{'a': fc(x), 'b': x.view}", "method .view"),
    ],
)
def test_a_module_layer_or_function_returned_with_tensors_is_a_located_error(
    returned: str, kind: str
) -> None:
    spec = f"net T:\n    input x: [B, 4]\n    fc = Linear(3)\n    return {returned}\n"
    with pytest.raises(dsl.DSLError) as info:
        dsl.validate(spec)
    assert info.value.code == "E300" and info.value.span.line == 4
    assert info.value.message == f"return takes values, and {kind} is not one"
    assert info.value.hint
    with pytest.raises(dsl.DSLError):
        dsl.build_model(spec)


@pytest.mark.parametrize("extra", ["3", '"a"', "x.shape", "x.dtype", "None", "x.shape[0]"])
def test_plain_values_returned_with_tensors_still_build(extra: str) -> None:
    spec = f"net T:\n    input x: [B, 4]\n    fc = Linear(3)\n    return fc(x), {extra}\n"
    y, value = dsl.build_model(spec, seed=0)(torch.zeros(2, 4))
    assert y.shape == (2, 3)
    assert value == {"3": 3, '"a"': "a", "x.shape": (2, 4), "x.dtype": torch.float32}.get(
        extra, None if extra == "None" else 2
    )


# The memory outlier class of the campaigns (a mutated derived ResNet, +160 MiB once in a
# worker): a derived net is run whole on meta tensors, and `shapes.fast_meta` was to answer
# its norm and conv layers by their shape rules, but `infer` refused every module whose
# forward had been replaced, fast_meta's own replacement included, so each BatchNorm ran
# torch's Python meta kernel (its decomposition; the first one imports torch._dynamo).
def test_a_derived_net_runs_its_layers_by_their_shape_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch.nn.modules.batchnorm as batchnorm

    calls: list[tuple[int, ...]] = []
    real = batchnorm.F.batch_norm

    def counted(input: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        calls.append(tuple(input.shape))
        return real(input, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batchnorm.F, "batch_norm", counted)
    result = dsl.validate(EXAMPLES / "dilation.net")
    assert calls == []  # 106 BatchNorm calls before
    assert tuple(result.output.shape) == (2, 1000)


def test_a_tensor_attribute_of_several_values_is_located() -> None:
    """Fuzz seed 20261209 escape: `h.chunk(2).mean(-1)` reached torch as an AttributeError."""
    spec = "net N:\n    input x: [B, 4]\n    h = x.chunk(2).mean(-1)\n    return h\n"
    with pytest.raises(dsl.DSLError) as caught:
        dsl.validate(spec)
    assert caught.value.span.line == 3 and "tuple of 2 values" in caught.value.message
    assert caught.value.hint


def test_an_initialiser_argument_too_big_for_torch_is_located() -> None:
    """Fuzz seed 20261211 escape: `trunc_normal(std=2**70)` reached torch as an OverflowError."""
    spec = "net N:\n    input x: [B, 4]\n    param p: [4] = trunc_normal(std=2**70)\n    return x + p\n"
    with pytest.raises(dsl.DSLError) as caught:
        dsl.validate(spec)
    assert caught.value.span.line == 3 and "trunc_normal()" in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize(
    "call",
    [
        'interpolate(x, size=(4, 4), mode="bilinear", align_corners=fc)',
        "cat([x, x], dim=fc)",
        "x.flatten(fc)",
        "act(x, fc)",
    ],
)
def test_a_member_passed_as_an_argument_is_a_located_error(call: str) -> None:
    """Fuzz seed 20261213 escape (examples/vit_small.net, `align_corners=blocks`): a module
    reached the generated forward as an argument, a SyntaxError in its code at build."""
    spec = (
        "net N:\n    input x: [B, 3, 8, 8]\n    fc = Linear(8)\n    act = PReLU()\n"
        f"    y = {call}\n    return y\n"
    )
    with pytest.raises(dsl.DSLError, match="module 'fc' is not one") as info:
        dsl.validate(spec)
    assert info.value.code == "E300" and (info.value.span.line, info.value.span.col) == (5, 9)


@pytest.mark.parametrize(
    "init", ["trunc_normal(std=0.01, a=1, b=2)", "trunc_normal(mean=5, std=0.1, a=-2, b=2)"]
)
def test_an_initialiser_torch_says_is_wrong_is_refused_before_it_samples(init: str) -> None:
    """Fuzz seed 20261214 timeout (examples/googlenet.net, `a=--1`): torch's trunc_normal_
    warns that its values may be incorrect, then its sampler ran for minutes."""
    spec = f"net N:\n    input x: [B, 4]\n    param p: [64, 3, 7, 7] = {init}\n    return x\n"
    started = time.process_time()
    with pytest.raises(dsl.DSLError, match="mean is more than 2 std") as info:
        dsl.validate(spec)
    assert time.process_time() - started < 5  # refused before torch samples
    assert info.value.code == "E700" and info.value.span.line == 3
    assert "a=mean-2*std" in (info.value.hint or "")
    ok = "net N:\n    input x: [B, 4]\n    param p: [4] = trunc_normal(std=0.01, a=-2, b=2)\n    return x + p\n"
    assert dsl.build_model(ok, seed=0).p.abs().max() < 0.1  # googlenet's bounds still build


def test_tensor_arguments_spend_the_work_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fuzz seed 20261216 timeout (examples/densenet.net with a dense block of 65,537 layers):
    each layer's `cat(features, 1)` over a list that grows spent next to nothing, so the
    budget let minutes of work through. A call now spends per tensor argument."""
    monkeypatch.setenv("NETDSL_MAX_WORK", "300000")
    spec = (
        "net N:\n    input x: [B, 4]\n    xs = [x for _ in range(1000)]\n"
        "    for i in range(200):\n        y = cat(xs, 1)\n    return y\n"
    )
    with pytest.raises(dsl.DSLError, match="work budget") as info:
        dsl.validate(spec)
    assert info.value.code == "E601" and info.value.span.line == 5
    monkeypatch.setenv("NETDSL_MAX_WORK", "30000000")
    assert dsl.validate(EXAMPLES / "densenet.net").output.shape[1] == 1000  # a real one passes
