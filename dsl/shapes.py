"""Shapes on the meta device: representative sizes for symbolic dims, the input-size
arguments a spec may leave out, and running one module or function on meta tensors with
torch's errors turned into `ShapeError`s that say what was expected and what arrived.

Nothing here allocates real storage: every tensor is on `meta`.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from dsl.errors import ArgumentError, ArgumentTypeError, ArityError, Note, ShapeError, UnknownKeywordError, did_you_mean
from dsl.registry import INPUT_SIZE_PARAMS, Layer
from dsl.source import Span

BATCH_SIZE = 2  # what a leading symbolic dim (B, N) stands for while shapes are checked
SPATIAL_SIZES = (32, 48, 64, 80, 96, 112)  # what other symbolic dims stand for, in order of appearance

DTYPES = {
    "float": torch.float32,
    "float32": torch.float32,
    "float64": torch.float64,
    "double": torch.float64,
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "long": torch.int64,
    "int64": torch.int64,
    "int": torch.int32,
    "int32": torch.int32,
    "bool": torch.bool,
}


class Symbols:
    """Chooses a representative size for each symbolic dim and remembers it for reports."""

    def __init__(self, sizes: dict[str, int] | None = None) -> None:
        self.sizes: dict[str, int] = dict(sizes or {})
        self._spatial = 0

    def size(self, name: str, position: int) -> int:
        if name not in self.sizes:
            if position == 0:
                self.sizes[name] = BATCH_SIZE
            else:
                self.sizes[name] = SPATIAL_SIZES[self._spatial % len(SPATIAL_SIZES)]
                self._spatial += 1
        return self.sizes[name]

    def describe(self, shape: Sequence[int]) -> str:
        """`[B, 64, H, W]` where a size equals exactly one symbol's representative size."""
        by_size: dict[int, list[str]] = {}
        for name, value in self.sizes.items():
            by_size.setdefault(value, []).append(name)
        parts = [by_size[d][0] if len(by_size.get(d, [])) == 1 else str(d) for d in shape]
        return "[" + ", ".join(parts) + "]"


def meta_tensor(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


def describe(value: Any, symbols: Symbols | None = None) -> str:
    """A shape (or nested shapes) as a person reads it."""
    if isinstance(value, torch.Tensor):
        shape = list(value.shape)
        return symbols.describe(shape) if symbols else "[" + ", ".join(map(str, shape)) + "]"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(describe(v, symbols) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {describe(v, symbols)}" for k, v in value.items()) + "}"
    return repr(value)


# ----------------------------------------------------------------------------- layer arguments


def bind_layer_args(layer: Layer, args: list[Any], kwargs: dict[str, Any], input_meta: torch.Tensor | None, span: Span) -> dict[str, Any]:
    """All constructor arguments by keyword, with left-out input sizes read from the input.

    `Conv2d(64, kernel_size=3)` has one positional argument for the two required positional
    parameters (in_channels, out_channels): in_channels is the one left out.
    """
    if layer.signature is None or layer.accepts_var_kwargs() and not layer.positional_params():
        return {**{str(i): a for i, a in enumerate(args)}, **kwargs} if args else dict(kwargs)
    names = layer.keyword_names()
    for key in kwargs:
        if key not in names and not layer.accepts_var_kwargs():
            raise UnknownKeywordError(
                f"{layer.name} has no argument '{key}'",
                span,
                hint=did_you_mean(key, names) or f"its arguments are: {', '.join(names)}",
            )
    positional = [p for p in layer.positional_params() if p.name not in kwargs]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    inferable = [p.name for p in required if p.name in INPUT_SIZE_PARAMS]
    missing = len(required) - len(args)
    inferred = inferable[: max(0, min(missing, len(inferable)))]
    slots = [p for p in positional if p.name not in inferred]
    if len(args) > len(slots):
        raise ArityError(f"{layer.name} takes at most {len(slots)} positional arguments here, {len(args)} were given", span)
    bound = {p.name: a for p, a in zip(slots, args)}
    bound.update(kwargs)
    for name in inferred:
        if input_meta is None:
            raise ArgumentError(
                f"{layer.name} needs '{name}', which is read from its input, but it is never applied to one",
                span,
                hint=f"give {name}= explicitly, or apply the layer to a value",
            )
        bound[name] = _input_size(name, input_meta, layer, span)
    unset = [p.name for p in required if p.name not in bound]
    if unset:
        raise ArityError(f"{layer.name} is missing required argument{'s' if len(unset) > 1 else ''} {', '.join(repr(u) for u in unset)}", span)
    _check_types(layer, bound, span)
    return bound


def _input_size(name: str, meta: torch.Tensor, layer: Layer, span: Span) -> int:
    dim = INPUT_SIZE_PARAMS[name]
    if meta.dim() == 0 or (dim == 1 and meta.dim() < 2):
        raise ShapeError(f"{layer.name} cannot read '{name}' from an input of shape {describe(meta)}", span)
    return int(meta.shape[dim])


def check_input_sizes(layer: Layer, bound: dict[str, Any], meta: torch.Tensor, span: Span, source: Span | None, symbols: Symbols) -> None:
    """A stated in_features/in_channels/... must match the tensor that arrives."""
    for name in layer.input_size_params():
        if name not in bound or not isinstance(bound[name], int) or isinstance(bound[name], bool):
            continue
        dim = INPUT_SIZE_PARAMS[name]
        if meta.dim() <= (dim if dim >= 0 else -dim - 1):
            continue
        actual = int(meta.shape[dim])
        if actual != bound[name]:
            where = "last dimension" if dim == -1 else f"dimension {dim}"
            notes = [Note("the input was produced here", source)] if source else []
            raise ShapeError(
                f"{layer.name}({name}={bound[name]}) expects its input's {where} to be {bound[name]}, "
                f"but the input has shape {describe(meta, symbols)}",
                span,
                notes=notes,
                hint=f"leave {name} out to have it inferred ({actual} here), or fix the layer before",
            )


def _check_types(layer: Layer, bound: dict[str, Any], span: Span) -> None:
    sig = layer.signature
    if sig is None:
        return
    for name, value in bound.items():
        param = sig.parameters.get(name)
        if param is None or param.annotation is inspect.Parameter.empty:
            continue
        expected = _plain_type(param.annotation)
        if expected is None or isinstance(value, expected):
            continue
        if expected in (float,) and isinstance(value, int) and not isinstance(value, bool):
            continue
        raise ArgumentTypeError(
            f"{layer.name}'s '{name}' takes {_type_words(expected)}, not {type(value).__name__} {value!r}",
            span,
        )


_SIMPLE = {"int": int, "bool": bool, "float": float, "str": str}


def _plain_type(annotation: Any) -> type | tuple[type, ...] | None:
    """The annotation as isinstance() understands it, for the simple cases only."""
    if isinstance(annotation, str):
        return _SIMPLE.get(annotation)
    if annotation in (int, float, bool, str):
        return (int, bool) if annotation is int else annotation
    return None


def _type_words(expected: Any) -> str:
    if isinstance(expected, tuple):
        expected = expected[0]
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(expected, str(expected))


# ----------------------------------------------------------------------------- running on meta


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    with torch.device("meta"):
        yield


def construct_on_meta(layer: Layer, bound: dict[str, Any], span: Span) -> nn.Module:
    try:
        with on_meta():
            module = layer.factory(**bound)
    except (TypeError, ValueError, RuntimeError, AssertionError, AttributeError, IndexError, KeyError) as exc:
        raise ArgumentError(f"{layer.name}({_args_text(bound)}) cannot be built: {_first_line(exc)}", span) from None
    if not isinstance(module, nn.Module):
        raise ArgumentError(f"{layer.name} did not return a torch module", span)
    return module


def run(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any], what: str, span: Span, inputs: Sequence[tuple[Any, Span | None]], symbols: Symbols) -> Any:
    """Call `fn` on meta tensors; a failure is the spec's shape mistake, said at `span`."""
    try:
        with torch.no_grad():
            return fn(*args, **kwargs)
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError, NotImplementedError) as exc:
        shapes = ", ".join(describe(meta, symbols) for meta, _ in inputs)
        notes = [Note(f"an input of shape {describe(meta, symbols)} came from here", src) for meta, src in inputs if src]
        raise ShapeError(f"{what} cannot take input{'s' if len(inputs) > 1 else ''} of shape {shapes}: {_first_line(exc)}", span, notes=notes) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _args_text(bound: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in bound.items())
