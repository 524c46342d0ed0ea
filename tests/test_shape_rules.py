"""Every shape rule against torch itself: where torch (on real CPU tensors) gives a result,
a rule that answers gives the same shape and dtype; where torch refuses, the rule does not
answer (so validation runs the op on meta and reports torch's error). Each family also has
a case the rule must answer, so a rule that never answers fails here."""

from __future__ import annotations

import copy
import operator
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from dsl.torchlib.shape_rules import infer
from dsl.torchlib.shape_rules_common import BROADCASTING

FLOATS = [torch.float32, torch.float64]
DTYPES = [torch.float32, torch.float64, torch.int64, torch.bool]


def meta(value: Any) -> Any:
    """The same arguments, with every tensor (and a module's tensors) on meta."""
    if isinstance(value, torch.Tensor):
        return torch.empty(value.shape, dtype=value.dtype, device="meta")
    if isinstance(value, nn.Module):
        return copy.deepcopy(value).to("meta")
    if isinstance(value, list | tuple):
        return type(value)(meta(v) for v in value)
    if isinstance(value, dict):
        return {k: meta(v) for k, v in value.items()}
    return value


def agrees(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> torch.Tensor | None:
    """Compare the rule for `fn` with running `fn` on real tensors; the rule's answer."""
    ours = infer(meta(fn), meta(args), meta(kwargs))
    try:
        with torch.no_grad():
            expected = fn(*args, **kwargs)
    except Exception:
        assert ours is None, (
            f"torch refuses {fn}{[getattr(a, 'shape', a) for a in args]} {kwargs}, but the rule answered {ours.shape}"
        )
        return None
    if ours is not None:
        assert (tuple(ours.shape), ours.dtype) == (tuple(expected.shape), expected.dtype), (
            fn,
            args,
            kwargs,
        )
        assert ours.is_meta
    return ours


def method(name: str, tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    ours = infer(getattr(meta(tensor), name), meta(args), meta(kwargs))
    try:
        expected = getattr(tensor, name)(*args, **kwargs)
    except Exception:
        assert ours is None
        return None
    if ours is not None:
        assert (tuple(ours.shape), ours.dtype) == (tuple(expected.shape), expected.dtype), (
            name,
            tensor.shape,
            args,
            kwargs,
        )
    return ours


def tensor(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return (
        torch.zeros(shape, dtype=dtype)
        if not dtype.is_floating_point
        else torch.randn(shape, dtype=dtype)
    )


shapes = st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple)


# ============================================================================ modules


@given(
    n=st.integers(1, 3),
    transposed=st.booleans(),
    cin=st.integers(1, 4),
    cout=st.integers(1, 3),
    k=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.sampled_from([0, 1, 2, "same", "valid"]),
    dilation=st.integers(1, 2),
    output_padding=st.integers(0, 2),
    size=st.integers(1, 8),
    batched=st.booleans(),
    channel_slip=st.sampled_from([0, 0, 0, 1]),
    dtype=st.sampled_from(FLOATS),
)
def test_conv(
    n,
    transposed,
    cin,
    cout,
    k,
    stride,
    padding,
    dilation,
    output_padding,
    size,
    batched,
    channel_slip,
    dtype,
) -> None:
    cls = [
        [nn.Conv1d, nn.Conv2d, nn.Conv3d],
        [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d],
    ][transposed][n - 1]
    try:
        if transposed:
            module = cls(
                cin,
                cout,
                k,
                stride=stride,
                padding=padding if isinstance(padding, int) else 0,
                dilation=dilation,
                output_padding=output_padding,
            )
        else:
            module = cls(cin, cout, k, stride=stride, padding=padding, dilation=dilation)
    except (ValueError, RuntimeError):
        return  # torch refuses the module itself
    module = module.to(dtype)
    x = tensor(((2,) if batched else ()) + (cin + channel_slip,) + (size,) * n, dtype)
    agrees(module, x)


def test_conv_answers() -> None:
    assert agrees(nn.Conv2d(3, 8, 3, stride=2, padding=1), tensor((2, 3, 9, 9))) is not None
    assert agrees(nn.ConvTranspose2d(3, 8, 2, stride=2), tensor((2, 3, 4, 4))) is not None
    assert (
        agrees(nn.Conv1d(3, 8, 3, padding="same", padding_mode="reflect"), tensor((2, 3, 9)))
        is not None
    )


@given(
    n=st.integers(1, 3),
    kind=st.sampled_from(["Max", "Avg"]),
    k=st.integers(1, 4),
    stride=st.sampled_from([None, 1, 2, 3]),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    ceil_mode=st.booleans(),
    size=st.integers(1, 9),
    batched=st.booleans(),
)
def test_pool(n, kind, k, stride, padding, dilation, ceil_mode, size, batched) -> None:
    cls = getattr(nn, f"{kind}Pool{n}d")
    extra = {"dilation": dilation} if kind == "Max" else {}
    module = cls(k, stride=stride, padding=padding, ceil_mode=ceil_mode, **extra)
    x = tensor(((2,) if batched else ()) + (3,) + (size,) * n)
    agrees(module, x)
    if n == 2:
        fn = F.max_pool2d if kind == "Max" else F.avg_pool2d
        agrees(fn, x, k, stride, padding, **extra, ceil_mode=ceil_mode)


@given(
    n=st.integers(1, 3),
    kind=st.sampled_from(["Max", "Avg"]),
    out=st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=1, max_size=3),
    size=st.integers(1, 6),
)
def test_adaptive_pool(n, kind, out, size) -> None:
    module = getattr(nn, f"Adaptive{kind}Pool{n}d")(out[0] if len(out) == 1 else tuple(out))
    x = tensor((2, 3) + (size,) * n)
    agrees(module, x)
    if n == 2 and kind == "Avg":
        agrees(F.adaptive_avg_pool2d, x, module.output_size)


def test_pools_answer() -> None:
    assert agrees(nn.MaxPool2d(3, 2, 1), tensor((2, 8, 16, 16))) is not None
    assert agrees(nn.AvgPool2d(2, ceil_mode=True), tensor((2, 8, 7, 7))) is not None
    assert agrees(nn.AdaptiveAvgPool2d((1, None)), tensor((2, 8, 7, 5))) is not None


@given(
    cin=st.integers(1, 5),
    cout=st.integers(1, 5),
    lead=shapes,
    slip=st.sampled_from([0, 0, 1]),
    bias=st.booleans(),
    dtype=st.sampled_from(DTYPES),
)
def test_linear(cin, cout, lead, slip, bias, dtype) -> None:
    module = nn.Linear(cin, cout, bias=bias)
    x = tensor((*lead, cin + slip), dtype)
    agrees(module, x)
    agrees(F.linear, x, module.weight.detach(), module.bias.detach() if bias else None)


@given(
    vocab=st.integers(1, 6),
    dim=st.integers(1, 4),
    lead=shapes,
    dtype=st.sampled_from([torch.int64, torch.int32, torch.float32]),
    padding_idx=st.sampled_from([None, 0, -1]),
)
def test_embedding(vocab, dim, lead, dtype, padding_idx) -> None:
    module = nn.Embedding(vocab, dim, padding_idx=padding_idx)
    idx = torch.zeros(lead, dtype=dtype)
    agrees(module, idx)
    agrees(F.embedding, idx, module.weight.detach())


@given(
    kind=st.sampled_from(["bn1", "bn2", "bn3", "in2", "gn", "ln"]),
    channels=st.integers(1, 6),
    slip=st.sampled_from([0, 0, 1]),
    ndim=st.integers(1, 5),
    affine=st.booleans(),
    training=st.booleans(),
    one=st.booleans(),
)
def test_norms(kind, channels, slip, ndim, affine, training, one) -> None:
    make = {
        "bn1": lambda: nn.BatchNorm1d(channels, affine=affine), "bn2": lambda: nn.BatchNorm2d(channels, affine=affine),
        "bn3": lambda: nn.BatchNorm3d(channels, affine=affine), "in2": lambda: nn.InstanceNorm2d(channels, affine=affine),
        "gn": lambda: nn.GroupNorm(1 if channels % 2 else 2, channels, affine=affine), "ln": lambda: nn.LayerNorm(channels, elementwise_affine=affine),
    }  # fmt: skip
    module = make[kind]().train(training)
    shape = [1 if one else 2] + [channels + slip] + [1 if one else 3] * (ndim - 2)
    if kind == "ln":
        shape = [*shape[: ndim - 1], channels + slip]
    agrees(module, tensor(tuple(shape[:ndim])))


def test_norms_answer() -> None:
    assert agrees(nn.BatchNorm2d(8), tensor((2, 8, 4, 4))) is not None
    assert agrees(nn.GroupNorm(2, 8), tensor((2, 8, 4))) is not None
    assert agrees(nn.LayerNorm(8), tensor((2, 5, 8))) is not None
    assert (
        agrees(nn.BatchNorm2d(8), tensor((2, 4, 4, 4))) is None
    )  # the wrong channels: torch must say so


@given(
    cls=st.sampled_from(
        [
            nn.ReLU,
            nn.GELU,
            nn.SiLU,
            nn.Tanh,
            nn.Dropout,
            nn.Identity,
            nn.Softmax,
            nn.PReLU,
            nn.LocalResponseNorm,
        ]
    ),
    shape=shapes,
    dtype=st.sampled_from(DTYPES),
)
def test_preserving_modules(cls, shape, dtype) -> None:
    module = {
        nn.Softmax: lambda: nn.Softmax(dim=-1),
        nn.PReLU: lambda: nn.PReLU(3),
        nn.LocalResponseNorm: lambda: nn.LocalResponseNorm(2),
    }.get(cls, cls)()
    agrees(module.eval(), tensor(shape, dtype))


@given(
    mode=st.sampled_from(
        ["nearest", "nearest-exact", "bilinear", "linear", "bicubic", "trilinear", "area"]
    ),
    ndim=st.integers(3, 5),
    by_size=st.booleans(),
    factor=st.sampled_from([0.5, 1.5, 2, 2.0, 3]),
    size=st.integers(1, 6),
    align=st.sampled_from([None, False, True]),
)
def test_interpolate(mode, ndim, by_size, factor, size, align) -> None:
    x = tensor((2, 3) + (5,) * (ndim - 2))
    kwargs = {"size": size} if by_size else {"scale_factor": factor}
    agrees(F.interpolate, x, mode=mode, align_corners=align, **kwargs)
    agrees(nn.Upsample(mode=mode, align_corners=align, **kwargs), x)


def test_interpolate_answers() -> None:
    assert (
        agrees(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), tensor((2, 3, 5, 7))
        )
        is not None
    )
    assert agrees(F.interpolate, tensor((2, 3, 5, 7)), size=(9, 4)) is not None


# ============================================================================ functions and methods


@given(
    a=shapes,
    b=shapes,
    op=st.sampled_from(BROADCASTING),
    da=st.sampled_from(DTYPES),
    db=st.sampled_from(DTYPES),
    scalar=st.sampled_from([None, 2, 0.5, True]),
)
def test_binary(a, b, op, da, db, scalar) -> None:
    x = tensor(a, da)
    y = scalar if scalar is not None else tensor(b, db)
    agrees(op, x, y)
    agrees(op, y, x)


@given(a=shapes, b=shapes, lead=st.booleans(), dtype=st.sampled_from([torch.float32, torch.int64]))
def test_matmul(a, b, lead, dtype) -> None:
    if lead and a:
        b = (a[-1], *b[1:])
    x, y = tensor(a, dtype), tensor(b, dtype)
    agrees(operator.matmul, x, y)
    agrees(torch.matmul, x, y)


@given(
    shape=shapes,
    dims=st.one_of(st.none(), st.integers(-5, 4), st.lists(st.integers(-4, 3), max_size=3)),
    keepdim=st.booleans(),
    fn=st.sampled_from(["mean", "sum", "amax", "amin"]),
    dtype=st.sampled_from(DTYPES),
)
def test_reductions(shape, dims, keepdim, fn, dtype) -> None:
    x = tensor(shape, dtype)
    function = getattr(torch, fn)
    if dims is None:
        agrees(function, x)
    else:
        agrees(function, x, dims, keepdim)
        if fn in ("mean", "sum"):
            method(fn, x, dim=dims, keepdim=keepdim)


@given(
    parts=st.lists(shapes, min_size=1, max_size=3),
    dim=st.integers(-4, 4),
    same=st.booleans(),
    dtype=st.sampled_from(DTYPES),
)
def test_cat_stack(parts, dim, same, dtype) -> None:
    tensors = [tensor(parts[0] if same else p, dtype) for p in parts]
    agrees(torch.cat, tensors, dim)
    agrees(torch.stack, tensors, dim=dim)


@given(
    q=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
    s=st.integers(1, 4),
    ev=st.integers(1, 4),
    slip=st.sampled_from([0, 0, 1]),
    causal=st.booleans(),
)
def test_attention(q, s, ev, slip, causal) -> None:
    query = tensor(q)
    key = tensor((*q[:2], s, q[3] + slip))
    value = tensor((*q[:2], s, ev))
    agrees(F.scaled_dot_product_attention, query, key, value, is_causal=causal)


@given(
    args=st.lists(
        st.one_of(st.integers(-3, 6), st.sampled_from([0.5, 2.5])), min_size=1, max_size=3
    ),
    dtype=st.sampled_from([None, torch.float32, torch.int64]),
)
def test_arange(args, dtype) -> None:
    ours = infer(torch.arange, tuple(args), {"device": "meta", "dtype": dtype})
    try:
        expected = torch.arange(*args, dtype=dtype)
    except Exception:
        assert ours is None
        return
    if ours is not None:
        assert (ours.shape, ours.dtype) == (expected.shape, expected.dtype)


@given(
    shape=shapes,
    dtype=st.sampled_from(DTYPES),
    name=st.sampled_from(["exp", "sqrt", "abs", "relu", "sigmoid", "tanh"]),
)
def test_elementwise_methods(shape, dtype, name) -> None:
    method(name, tensor(shape, dtype))


@given(
    shape=shapes,
    mask=shapes,
    dim=st.integers(-4, 4),
    dtype=st.sampled_from(DTYPES),
    repeats=st.lists(st.integers(0, 3), min_size=0, max_size=5),
)
def test_other_methods(shape, mask, dim, dtype, repeats) -> None:
    x = tensor(shape, dtype)
    method("softmax", x, dim)
    method("masked_fill", x, torch.zeros(mask, dtype=torch.bool), 0.0)
    method("argmax", x, dim)
    method("repeat", x, *repeats)
    method("pow", x, 2)
    agrees(torch.where, torch.zeros(mask, dtype=torch.bool), x, 0.0)
    agrees(F.layer_norm, x, shape[-1:])
    agrees(F.softmax, x, dim)


def test_functions_answer() -> None:
    x = tensor((2, 5, 8))
    for fn, args in [(F.softmax, (x, -1)), (torch.mean, (x, [1, 2])), (torch.cat, ([x, x], 1)), (operator.matmul, (x, tensor((8, 3)))),
                     (F.scaled_dot_product_attention, (x, x, x)), (operator.add, (x, tensor((5, 1))))]:  # fmt: skip
        assert agrees(fn, *args) is not None, fn
    assert infer(torch.arange, (5,), {"device": torch.device("meta")}) is not None
    assert agrees(F.dropout, x, 1.5) is None  # torch refuses p > 1: so must validation


def test_validate_imports_no_meta_kernels() -> None:
    """The point of the rules: validating the seed networks never reaches torch's Python
    meta kernels, whose first use imports sympy and often torch._dynamo (0.4-2 s, ~150 MB)."""
    code = (
        "import sys, dsl\n"
        "for name in ('resnet50', 'gpt', 'unet', 'vgg16_bn', 'mnist_mlp'):\n"
        "    dsl.validate(f'examples/{name}.net')\n"
        "heavy = [m for m in ('torch._dynamo', 'sympy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=pytest.importorskip("dsl").__path__[0] + "/.."
    )
