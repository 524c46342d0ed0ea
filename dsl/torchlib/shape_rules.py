"""Output shapes computed from the arguments, for the layers and functions specs use most.

On meta tensors torch answers most compute ops through Python meta kernels; the first one in
a process imports `torch._meta_registrations`, sympy and often `torch._dynamo` (0.4-2 s and
~150 MB), and BatchNorm alone costs ~4 ms per call. A rule here gives the same shape and
dtype from the arguments. A rule answers only when the call is certainly valid; for anything
else it returns None and the op runs on meta, so torch still reports the mistake and
`dsl.torchlib.shapes` explains it. `tests/test_shape_rules.py` checks every rule against torch.

The rules for functions and tensor methods are in `shape_rules_tensor`, those for convolution,
pooling and interpolation in `shape_rules_spatial`; here are the module rules and the tables
that pick a rule for a call.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dsl.torchlib import nn_private
from dsl.torchlib.catalog import hashable
from dsl.torchlib.shape_rules_common import BROADCASTING, float_meta, is_meta, normal_dim
from dsl.torchlib.shape_rules_spatial import (
    adaptive,
    avg_pool2d,
    conv,
    interpolate,
    max_pool2d,
    pool,
)
from dsl.torchlib.shape_rules_tensor import (
    arange,
    argmax,
    attention,
    binary,
    cat,
    checked_elementwise,
    embedding,
    layer_norm,
    like,
    linear,
    masked_fill,
    matmul,
    reduce,
    repeat,
    same,
    stack,
    where,
)


def infer(
    fn: Any, args: Sequence[Any], kwargs: dict[str, Any], *, fast_meta: bool = False
) -> Any | None:
    """The meta result of `fn(*args, **kwargs)` when a rule knows it, else None. A module
    whose own `forward` was replaced has no rule, unless `fast_meta` replaced it (by a call
    of this with `fast_meta=True`)."""
    try:
        if isinstance(fn, nn.Module):
            rule = MODULE_RULES.get(type(fn)) if fast_meta else _module_rule(fn)
            return (
                None
                if rule is None or kwargs or len(args) != 1 or not is_meta(args[0])
                else rule(fn, args[0])
            )
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, torch.Tensor):
            method = METHOD_RULES.get(getattr(fn, "__name__", ""))
            return None if method is None or not owner.is_meta else method(owner, *args, **kwargs)
        rule = FUNCTION_RULES.get(fn) if hashable(fn) else None
        return None if rule is None else rule(*args, **kwargs)
    # arguments torch would reject (a stride of 0, an infinite scale): let torch say so
    except (TypeError, ValueError, IndexError, ZeroDivisionError, OverflowError):
        return None


# ============================================================================ modules


def _norm(module: nn.Module, input: torch.Tensor) -> torch.Tensor | None:
    """BatchNorm, InstanceNorm, GroupNorm: the input's shape, when the channels fit."""
    if not float_meta(input) or input.dim() < 2:
        return None
    stats = [t for t in (module.weight, getattr(module, "running_mean", None)) if t is not None]
    if isinstance(module, nn.GroupNorm):
        fits = (
            input.shape[1] == module.num_channels
            and input.shape[1] % module.num_groups == 0
            and input.numel() > module.num_groups
        )
    else:
        nn_private.check_input_dim(
            module, input
        )  # raises torch's own ValueError (BatchNorm2d on a 2-d input)
        instance = isinstance(module, nn_private.InstanceNorm)
        batched = not instance or (
            input.dim() == nn_private.no_batch_dim(module) + 1 and input[0, 0].numel() > 1
        )
        one_value = (
            module.training
            and isinstance(module, nn_private.BatchNorm)
            and input.numel() == input.shape[1]
        )
        fits = batched and not one_value and (not stats or input.shape[1] == module.num_features)
    return input if fits and all(t.dtype == input.dtype for t in stats) else None


def _layer_norm_module(module: nn.LayerNorm, input: torch.Tensor) -> torch.Tensor | None:
    return layer_norm(input, module.normalized_shape, module.weight, module.bias)


def _preserving(module: nn.Module, input: torch.Tensor) -> torch.Tensor | None:
    if (
        isinstance(module, nn.PReLU)
        and module.num_parameters != 1
        and (input.dim() < 2 or input.shape[1] != module.num_parameters)
    ):
        return None
    if isinstance(module, nn.LocalResponseNorm) and input.dim() < 3:
        return None
    if (
        isinstance(module, nn.Softmax | nn.LogSoftmax | nn.Softmin)
        and module.dim is not None
        and normal_dim(module.dim, input.dim()) is None
    ):
        return None
    own = module.parameters(recurse=False)
    return input if float_meta(input) and all(p.dtype == input.dtype for p in own) else None


def _pool_module(module: Any, input: torch.Tensor) -> torch.Tensor | None:
    n = int(type(module).__name__[-2])
    if getattr(module, "return_indices", False) or getattr(module, "divisor_override", None) == 0:
        return None
    return pool(
        n,
        input,
        module.kernel_size,
        module.stride,
        module.padding,
        getattr(module, "dilation", 1),
        module.ceil_mode,
    )


def _adaptive_module(module: nn.Module, input: torch.Tensor) -> torch.Tensor | None:
    if getattr(module, "return_indices", False):
        return None
    return adaptive(int(type(module).__name__[-2]), input, module.output_size)


ModuleRule = Callable[[Any, torch.Tensor], torch.Tensor | None]

_PRESERVING = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout, nn.Identity,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
    nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign, nn.Tanhshrink, nn.Softmax,
    nn.LogSoftmax, nn.Softmin, nn.Threshold, nn.LocalResponseNorm,
)  # fmt: skip
_NORMS = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
    nn.InstanceNorm3d, nn.GroupNorm,
)  # fmt: skip

# Exact types: a subclass may override forward, so it runs on meta like any other module.
MODULE_RULES: dict[type, ModuleRule] = {
    **{cls: _preserving for cls in _PRESERVING},
    **{cls: _norm for cls in _NORMS},
    nn.LayerNorm: _layer_norm_module,
    nn.Linear: lambda m, x: linear(x, m.weight, m.bias),
    nn.Embedding: lambda m, x: embedding(x, m.weight, m.padding_idx, m.max_norm),
    nn.Upsample: lambda m, x: interpolate(
        x, m.size, m.scale_factor, m.mode, m.align_corners, m.recompute_scale_factor
    ),
    **{
        cls: conv
        for cls in (
            nn.Conv1d,
            nn.Conv2d,
            nn.Conv3d,
            nn.ConvTranspose1d,
            nn.ConvTranspose2d,
            nn.ConvTranspose3d,
        )
    },
    **{
        cls: _pool_module
        for cls in (
            nn.MaxPool1d,
            nn.MaxPool2d,
            nn.MaxPool3d,
            nn.AvgPool1d,
            nn.AvgPool2d,
            nn.AvgPool3d,
        )
    },
    **{
        cls: _adaptive_module
        for cls in (
            nn.AdaptiveAvgPool1d,
            nn.AdaptiveAvgPool2d,
            nn.AdaptiveAvgPool3d,
            nn.AdaptiveMaxPool1d,
            nn.AdaptiveMaxPool2d,
            nn.AdaptiveMaxPool3d,
        )
    },
}


def _module_rule(module: nn.Module) -> ModuleRule | None:
    rule = MODULE_RULES.get(type(module))
    return None if rule is None or "forward" in module.__dict__ else rule


_SOFTMAX = checked_elementwise(F.softmax)
_ACTIVATIONS = (
    F.relu,
    F.gelu,
    F.silu,
    F.leaky_relu,
    F.dropout,
    F.softmax,
    F.log_softmax,
    F.normalize,
)

FUNCTION_RULES: dict[Any, Callable[..., torch.Tensor | None]] = {
    **{fn: checked_elementwise(fn) for fn in _ACTIVATIONS},
    **{fn: same for fn in (torch.sigmoid, torch.tanh, torch.exp, torch.sqrt)},
    **{fn: binary(fn) for fn in BROADCASTING},
    **{
        fn: reduce(name)
        for fn, name in (
            (torch.mean, "mean"),
            (torch.sum, "sum"),
            (torch.amax, "amax"),
            (torch.amin, "amin"),
        )
    },
    operator.matmul: matmul,
    torch.matmul: matmul,
    torch.where: where,
    torch.cat: cat,
    torch.stack: stack,
    torch.arange: arange,
    torch.zeros_like: like,
    torch.ones_like: like,
    F.linear: linear,
    F.embedding: embedding,
    F.layer_norm: layer_norm,
    F.scaled_dot_product_attention: attention,
    F.interpolate: interpolate,
    F.adaptive_avg_pool2d: lambda input, output_size: adaptive(2, input, output_size),
    F.avg_pool2d: avg_pool2d,
    F.max_pool2d: max_pool2d,
}

# Tensor methods, by name, called with the tensor first.
METHOD_RULES: dict[str, Callable[..., torch.Tensor | None]] = {
    **{name: same for name in ("exp", "sqrt", "abs", "relu", "sigmoid", "tanh")},
    "mean": reduce("mean"),
    "sum": reduce("sum"),
    "softmax": lambda self, dim, dtype=None: (
        None if normal_dim(dim, self.dim()) is None else _SOFTMAX(self, dim, dtype=dtype)
    ),
    "pow": lambda self, exponent: binary(operator.pow)(self, exponent),
    "masked_fill": masked_fill,
    "repeat": repeat,
    "argmax": argmax,
}
