"""String arguments that take one of a few words (`mode="bilinear"`, `padding_mode="zeros"`):
a misspelt word is said at the string, with the word it was probably meant to be, instead
of surfacing later as torch's error at the call.

The words come from torch where it declares them (a `Literal[...]` annotation, read with
`typing.get_args`), and from the table below where torch only says `str`.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from dsl.errors import ArgumentError, did_you_mean
from dsl.source import Span

_REDUCTION = ("none", "mean", "sum")
_CONV_PADDING = ("same", "valid")
_INTERPOLATE_MODES = (
    "nearest",
    "linear",
    "bilinear",
    "bicubic",
    "trilinear",
    "area",
    "nearest-exact",
)

# (layer or function name, parameter) -> its words, where torch annotates only `str`.
# A name of "*" stands for every layer and function with that parameter.
_TABLE: dict[tuple[str, str], tuple[str, ...]] = {
    ("*", "reduction"): _REDUCTION,
    ("KLDivLoss", "reduction"): (*_REDUCTION, "batchmean"),
    ("kl_div", "reduction"): (*_REDUCTION, "batchmean"),
    ("Upsample", "mode"): _INTERPOLATE_MODES,
    ("interpolate", "mode"): _INTERPOLATE_MODES,
    ("pad", "mode"): ("constant", "reflect", "replicate", "circular"),
    ("grid_sample", "mode"): ("bilinear", "nearest", "bicubic"),
    ("grid_sample", "padding_mode"): ("zeros", "border", "reflection"),
    ("EmbeddingBag", "mode"): ("sum", "mean", "max"),
    ("GELU", "approximate"): ("none", "tanh"),
    ("gelu", "approximate"): ("none", "tanh"),
    ("RNN", "nonlinearity"): ("tanh", "relu"),
    ("RNNCell", "nonlinearity"): ("tanh", "relu"),
    ("TransformerEncoderLayer", "activation"): ("relu", "gelu"),
    ("TransformerDecoderLayer", "activation"): ("relu", "gelu"),
    ("Transformer", "activation"): ("relu", "gelu"),
    **{(conv, "padding"): _CONV_PADDING for conv in ("Conv1d", "Conv2d", "Conv3d")},
}


@functools.lru_cache(maxsize=1024)
def declared(target: Callable[..., Any], name: str, parameter: str) -> tuple[str, ...] | None:
    """The words `parameter` of `target` (called `name` in a spec) takes, or None when any
    string (or no string) will do."""
    found = _TABLE.get((name, parameter)) or _TABLE.get(("*", parameter))
    if found is not None:
        return found
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    declared_parameter = signature.parameters.get(parameter)
    if declared_parameter is None:
        return None
    annotation = declared_parameter.annotation
    if typing.get_origin(annotation) is typing.Literal:
        words = typing.get_args(annotation)
        return words if all(isinstance(w, str) for w in words) else None
    return None


def check_choices(
    target: Callable[..., Any],
    name: str,
    values: dict[str, Any],
    span_of: Callable[[str], Span],
) -> None:
    """Refuse a string that is not one of its parameter's words, at the string."""
    for parameter, value in values.items():
        if not isinstance(value, str):
            continue
        words = declared(target, name, parameter)
        if words is None or value in words:
            continue
        listed = ", ".join(f'"{w}"' for w in words)
        raise ArgumentError(
            f"{name}'s '{parameter}' is one of {listed}, not \"{value}\"",
            span_of(parameter),
            hint=did_you_mean(value, words),
        )
