"""Layer types as values: a parameter whose default is a layer or block (`net X(act=GELU)`)
set from outside (`--set act=ReLU`, `params={"act": torch.nn.ReLU}`), and a torch layer
class passed to a constructor that takes one (`Conv2dNormActivation(...,
activation_layer=ReLU6)`, as torchvision's own models pass `nn.ReLU6`)."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from dsl.elaborate.context import Context
from dsl.elaborate.values import BlockRef, LayerRef, kind_of
from dsl.errors import ArgumentError, UnknownLayerError, did_you_mean
from dsl.source import Span
from dsl.syntax.loader import Unit
from dsl.torchlib.registry import REGISTRY, Layer


def is_layer_type(value: Any) -> bool:
    return isinstance(value, LayerRef | BlockRef)


def overridden(
    name: str, value: Any, default: Any, context: Context, unit: Unit, span: Span
) -> Any:
    """An override of parameter `name` as the spec sees it: a registered `nn.Module` class
    is that layer; a string names a layer or block where the default is one."""
    if inspect.isclass(value) and issubclass(value, nn.Module):
        return LayerRef(_registered(name, value, span))
    if not (isinstance(value, str) and is_layer_type(default)):
        return value
    found = context.lookup(value, unit)
    if is_layer_type(found):
        return found
    raise UnknownLayerError(
        f"'{name}' takes a layer (its default is {kind_of(default)}), and '{value}' names none",
        span,
        hint=did_you_mean(value, [*REGISTRY.layer_names(), *unit.names])
        or "give a torch.nn class name, a block of this file, or a name registered with @dsl.register",
    )


def _registered(name: str, cls: type[nn.Module], span: Span) -> Layer:
    candidates = [
        *REGISTRY.layers.values(),
        REGISTRY.layer(f"torchvision.ops.{cls.__name__}"),
    ]
    found = next((layer for layer in candidates if layer and layer.factory is cls), None)
    if found is None:
        raise ArgumentError(
            f"'{name}' is given the class {cls.__module__}.{cls.__qualname__}, which is no layer netdsl knows",
            span,
            hint="register it with @dsl.register, or pass a torch.nn class",
        )
    return found


def constructor_argument(value: Any, span: Span) -> Any:
    """A value as a layer's constructor receives it: a layer type is its class."""
    if isinstance(value, LayerRef):
        return value.layer.factory
    if isinstance(value, BlockRef):
        raise ArgumentError(
            f"{kind_of(value)} is written in netdsl, and a torch layer's constructor takes a Python class",
            span,
            hint="pass a torch.nn class (ReLU6, Hardswish, ...) or one registered with @dsl.register",
        )
    return value
