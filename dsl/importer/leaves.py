"""A leaf module (a torch.nn layer, a torchvision op, a registered class) written back as
the constructor call that makes it: its `__init__` arguments read from its attributes,
checked by constructing the call on the meta device and comparing the result."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from dsl import ir
from dsl.torchlib.registry import INPUT_SIZE_PARAMS, REGISTRY
from dsl.torchlib.symbols import DTYPES

# torchvision.ops modules whose forward draws random numbers in place: kept whole.
OPAQUE_TORCHVISION = frozenset({"StochasticDepth"})
_SKIPPED = frozenset({"device", "dtype", "self"})


def layer_name(module: nn.Module) -> str | None:
    """The name a spec calls this module's class by, if it is a leaf the registry knows."""
    cls = type(module)
    for key, layer in REGISTRY.layers.items():
        if layer.factory is cls:
            return key
    if cls.__module__.startswith("torchvision.ops") and cls.__name__ in OPAQUE_TORCHVISION:
        return f"torchvision.ops.{cls.__name__}"
    return None


def _attribute(module: nn.Module, name: str) -> Any:
    """The constructor argument `name` as the module keeps it, or `inspect.Parameter.empty`."""
    if name == "bias" and isinstance(getattr(module, "bias", 0), torch.Tensor | type(None)):
        return getattr(module, "bias", None) is not None
    value = getattr(module, name, inspect.Parameter.empty)
    if isinstance(value, torch.Tensor | nn.Module) or callable(value):
        return inspect.Parameter.empty
    if isinstance(value, list):
        value = list(value)
    return value


def _simplified(value: Any) -> Any:
    """(3, 3) -> 3 where a layer takes either; lists stay lists."""
    uniform = isinstance(value, tuple) and value and all(v == value[0] for v in value)
    if uniform and isinstance(value[0], int) and not isinstance(value[0], bool):
        return value[0]
    return value


def constructor_arguments(module: nn.Module) -> dict[str, Any] | None:
    """Keyword arguments that rebuild `module` (defaults left out), or None when the
    module's attributes do not say them."""
    try:
        signature = inspect.signature(type(module).__init__)
    except (TypeError, ValueError):
        return None
    for simplify in (True, False):
        arguments = _arguments(module, signature, simplify)
        if arguments is not None and _rebuilds(module, arguments):
            return _fewest(module, signature, arguments)
    return None


def _fewest(
    module: nn.Module, signature: inspect.Signature, arguments: dict[str, Any]
) -> dict[str, Any]:
    """Arguments with a default that the module is rebuilt without (`kdim` equal to
    `embed_dim`) are left out."""
    for key in list(arguments):
        if signature.parameters[key].default is inspect.Parameter.empty:
            continue
        fewer = {k: v for k, v in arguments.items() if k != key}
        if _rebuilds(module, fewer):
            arguments = fewer
    return arguments


def _arguments(
    module: nn.Module, signature: inspect.Signature, simplify: bool
) -> dict[str, Any] | None:
    arguments: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.name in _SKIPPED or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = _attribute(module, param.name)
        if value is inspect.Parameter.empty:
            if param.default is inspect.Parameter.empty:
                return None
            continue
        value = _simplified(value) if simplify else value
        if param.default is not inspect.Parameter.empty and same_value(value, param.default):
            continue
        arguments[param.name] = value
    return arguments


def same_value(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except (RuntimeError, TypeError, ValueError):
        return False


def _rebuilds(module: nn.Module, arguments: dict[str, Any]) -> bool:
    try:
        with torch.device("meta"):
            copy = type(module)(**arguments)
    except Exception:  # any refusal means these are not its arguments
        return False
    mine = {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}
    theirs = {k: (tuple(v.shape), v.dtype) for k, v in copy.state_dict().items()}
    return (
        mine == theirs
        and copy.extra_repr() == module.extra_repr()
        and all(module.__dict__.get(k, k) == v for k, v in _settings(copy).items())
    )


def _settings(module: nn.Module) -> dict[str, Any]:
    """A module's plain attributes (what its forward reads besides tensors); those that
    code outside the class adds (`fc.stddev = 0.1` for an init loop) are not compared."""
    plain = (int, float, bool, str, tuple, type(None))
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, plain)}


def literal(value: Any) -> ir.ExprNode | None:
    """A Python value as an IR literal, or None when the language has no spelling for it."""
    if value is None or isinstance(value, bool | int | str):
        return ir.Const(value=value)
    if isinstance(value, float):
        return ir.Const(value=value) if value == value and abs(value) != float("inf") else None
    if isinstance(value, tuple | list):
        found = [literal(v) for v in value]
        items = [item for item in found if item is not None]
        if len(items) != len(found):
            return None
        node = ir.TupleExpr if isinstance(value, tuple) else ir.ListExpr
        return node(items=items)
    return None


def leaf_call(
    module: nn.Module, name: str, arguments: dict[str, Any], omit_sizes: bool
) -> ir.Call | None:
    """`Conv2d(64, kernel_size=3, bias=false)`: with `omit_sizes`, the input-size argument
    is left to inference and the first required argument after it goes by position."""
    layer = REGISTRY.layer(name)
    required = [
        p.name
        for p in (layer.positional_params if layer else ())
        if p.default is inspect.Parameter.empty
    ]
    sized = [p for p in required if p in INPUT_SIZE_PARAMS]
    kept = {k: v for k, v in arguments.items() if not (omit_sizes and k in sized)}
    rest = [p for p in required if p not in INPUT_SIZE_PARAMS]
    positional = (rest[:1] if omit_sizes else []) if sized else rest
    positional = [p for p in positional if p in kept]
    args: list[ir.ExprNode] = []
    kwargs: dict[str, ir.ExprNode] = {}
    for key, value in kept.items():
        node = literal(value)
        if node is None:
            return None
        if key in positional and len(args) == positional.index(key):
            args.append(node)
        else:
            kwargs[key] = node
    return ir.Call(func=dotted_expr(name), args=args, kwargs=kwargs)


def dtype_name(dtype: torch.dtype) -> str | None:
    """How a spec names a tensor's dtype (`long`), None for the default float."""
    if dtype == torch.float32:
        return None
    return next((name for name, known in DTYPES.items() if known == dtype), None)


def dotted_expr(name: str) -> ir.ExprNode:
    """`torchvision.ops.StochasticDepth` as Name/Attr nodes."""
    first, *rest = name.split(".")
    node: ir.ExprNode = ir.Name(id=first)
    for part in rest:
        node = ir.Attr(value=node, attr=part)
    return node
