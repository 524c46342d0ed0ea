"""Shapes on the meta device: representative sizes for symbolic dims, the input-size
arguments a spec may leave out, and running one module or function on meta tensors with
torch's errors turned into `ShapeError`s that say what was expected and what arrived.

Nothing here allocates real storage: every tensor is on `meta`.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import threading
from collections.abc import Callable, Iterator, Sequence
from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dsl.errors import (
    ArgumentError,
    ArgumentTypeError,
    ArityError,
    Note,
    ShapeError,
    UnknownKeywordError,
    did_you_mean,
    keyword_span,
)
from dsl.source import Span
from dsl.torchlib import catalog, shape_rules
from dsl.torchlib.registry import INPUT_SIZE_PARAMS, Layer

BATCH_SIZE = 2  # what a leading symbolic dim (B, N) stands for while shapes are checked
SPATIAL_SIZES = (
    32,
    48,
    64,
    80,
    96,
    112,
)  # what other symbolic dims stand for, in order of appearance

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
        self._positions: dict[str, set[int]] = {}  # the dimensions each symbol was declared at

    def size(self, name: str, position: int) -> int:
        self._positions.setdefault(name, set()).add(position)
        if name not in self.sizes:
            if position == 0:
                self.sizes[name] = BATCH_SIZE
            else:
                self.sizes[name] = SPATIAL_SIZES[self._spatial % len(SPATIAL_SIZES)]
                self._spatial += 1
        return self.sizes[name]

    def describe(self, shape: Sequence[int]) -> str:
        """`[B, 64, H, W]`: a size is shown as a symbol where it equals exactly one symbol's
        representative size and sits where that symbol was declared (so that 32 channels
        are not shown as H because H happens to stand for 32)."""
        return "[" + ", ".join(self.dim(shape, i) for i in range(len(shape))) + "]"

    def dim(self, shape: Sequence[int], index: int) -> str:
        """Dimension `index` of `shape` as `describe` shows it."""
        size = int(shape[index])
        names = [name for name, value in self.sizes.items() if value == size]
        if len(names) != 1:
            return str(size)
        declared = self._positions.get(names[0])
        return names[0] if declared is None or index % len(shape) in declared else str(size)


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


def bind_layer_args(
    layer: Layer,
    args: list[Any],
    kwargs: dict[str, Any],
    input_meta: torch.Tensor | None,
    span: Span,
    arg_spans: dict[int | str, Span] | None = None,
) -> dict[str, Any]:
    """All constructor arguments by keyword, with left-out input sizes read from the input.

    `Conv2d(64, kernel_size=3)` has one positional argument for the two required positional
    parameters (in_channels, out_channels): in_channels is the one left out.
    `arg_spans` (positional index or keyword -> where its value is written) lets errors
    about one argument point at it rather than at the whole call.
    """
    arg_spans = arg_spans or {}
    if layer.signature is None or (layer.accepts_var_kwargs and not layer.positional_params):
        return {**{str(i): a for i, a in enumerate(args)}, **kwargs} if args else dict(kwargs)
    plan = layer.binding(tuple(kwargs), len(args))
    if plan.unknown is not None:
        key, names = plan.unknown, layer.keyword_names
        raise UnknownKeywordError(
            f"{layer.name} has no argument '{key}'",
            keyword_span(key, arg_spans[key]) if key in arg_spans else span,
            hint=did_you_mean(key, names) or f"its arguments are: {', '.join(names)}",
        )
    slots = plan.slots
    if len(args) > len(slots):
        raise ArityError(
            f"{layer.name} takes at most {len(slots)} positional argument{'s' if len(slots) != 1 else ''} here, {len(args)} were given",
            arg_spans.get(len(slots), span),
            hint=f"its positional parameters are: {', '.join(slots)}"
            if slots
            else "give its arguments by keyword",
        )
    bound = dict(zip(slots, args))
    bound.update(kwargs)
    for name in plan.inferred:
        if input_meta is None:
            raise ArgumentError(
                f"{layer.name} needs '{name}', which is read from its input, but it is never applied to one",
                span,
                hint=f"give {name}= explicitly, or apply the layer to a value",
            )
        bound[name] = _input_size(name, input_meta, layer, span)
    unset = [name for name in plan.required if name not in bound]
    if unset:
        raise ArityError(
            f"{layer.name} is missing required argument{'s' if len(unset) > 1 else ''} {', '.join(repr(u) for u in unset)}",
            span,
        )
    _check_types(layer, bound, span, slots, arg_spans)
    return bound


def _input_size(name: str, meta: torch.Tensor, layer: Layer, span: Span) -> int:
    dim = INPUT_SIZE_PARAMS[name]
    if meta.dim() == 0 or (dim == 1 and meta.dim() < 2):
        raise ShapeError(
            f"{layer.name} cannot read '{name}' from an input of shape {describe(meta)}", span
        )
    return int(meta.shape[dim])


def check_input_sizes(
    layer: Layer,
    bound: dict[str, Any],
    meta: torch.Tensor,
    span: Span,
    source: Span | None,
    symbols: Symbols,
    applied: Span | None = None,
) -> None:
    """A stated in_features/in_channels/... must match the tensor that arrives.

    `span` is where the layer is defined, `applied` where it is applied (if elsewhere)."""
    for name in layer.input_size_params:
        if name not in bound or not isinstance(bound[name], int) or isinstance(bound[name], bool):
            continue
        dim = INPUT_SIZE_PARAMS[name]
        if meta.dim() <= (dim if dim >= 0 else -dim - 1):
            continue
        actual = int(meta.shape[dim])
        if actual != bound[name]:
            where = "last dimension" if dim == -1 else f"dimension {dim}"
            notes = [Note("the input was produced here", source)] if source else []
            if applied and applied.line != span.line:
                notes.insert(0, Note("the layer is applied here", applied))
            hint = f"leave {name} out to have it inferred ({actual} here), or fix the layer before"
            trailing = list(meta.shape[1:])
            if dim == -1 and len(trailing) > 1 and prod(trailing) == bound[name]:
                hint = f"flatten the input first ({' x '.join(map(str, trailing))} = {bound[name]}): Flatten(), or x.flatten(1)"
            raise ShapeError(
                f"{layer.name}({name}={bound[name]}) expects its input's {where} to be {bound[name]}, "
                f"but the input has shape {describe(meta, symbols)}, whose {where} is {actual}",
                span,
                notes=notes,
                hint=hint,
            )


def _check_types(
    layer: Layer,
    bound: dict[str, Any],
    span: Span,
    slots: tuple[str, ...],
    arg_spans: dict[int | str, Span],
) -> None:
    expected_types = layer.expected_types
    for name, value in bound.items():
        expected = expected_types.get(name)
        if expected is None or isinstance(value, expected):
            continue
        if expected in (float,) and isinstance(value, int) and not isinstance(value, bool):
            continue
        hint = None
        if isinstance(value, str) and expected is bool:
            hint = "write true or false, without quotes"
        elif (
            isinstance(value, str)
            and value.strip().isdigit()
            and isinstance(expected, tuple)
            and int in expected
        ):
            hint = f"write {value.strip()} without quotes"
        raise ArgumentTypeError(
            f"{layer.name}'s '{name}' takes {_type_words(expected)}, not {type(value).__name__} {value!r}",
            _value_span(name, slots, arg_spans, span),
            hint=hint,
        )


def _value_span(
    name: str, slots: tuple[str, ...], arg_spans: dict[int | str, Span], span: Span
) -> Span:
    """Where the value of parameter `name` is written: its keyword, its positional
    argument, or else the whole call."""
    if name in arg_spans:
        return arg_spans[name]
    index = slots.index(name) if name in slots else None
    return arg_spans.get(index, span) if index is not None else span


_TYPE_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    tuple: "a tuple",
    type(None): "none",
}


def _type_words(expected: Any) -> str:
    if isinstance(expected, tuple):
        if expected == (int, bool):
            return _TYPE_WORDS[int]
        return " or ".join(dict.fromkeys(_TYPE_WORDS[t] for t in expected if t in _TYPE_WORDS))
    return _TYPE_WORDS.get(expected, str(expected))


# ----------------------------------------------------------------------------- running on meta


_INIT_FUNCTIONS = [name for name in dir(nn.init) if name.endswith("_") and not name.startswith("_")]


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    """Construct modules on meta without running their initialisers: meta tensors hold no
    values, and the init code is most of a meta construction's cost (a conv: 84 µs of 340)."""
    _META_INITS.enter()
    try:
        with torch.device("meta"):
            yield
    finally:
        _META_INITS.leave()


class _MetaInitSkipping:
    """`nn.init`'s functions, swapped for ones that leave meta tensors alone while any
    thread is inside `on_meta`. The swap is seen by every thread, so on any other tensor
    the swapped-in function runs torch's: a model another thread initialises meanwhile gets
    its values. The first thread in swaps, the last one out restores."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.saved: dict[str, Callable[..., Any]] = {}
        self.wrappers: dict[Callable[..., Any], Callable[..., Any]] = {}  # by torch's function

    def enter(self) -> None:
        with self.lock:
            if self.users == 0:
                self.saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS}
                for name, fn in self.saved.items():
                    setattr(nn.init, name, self._wrapper(fn))
            self.users += 1

    def leave(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                for name, fn in self.saved.items():
                    setattr(nn.init, name, fn)

    def _wrapper(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        wrapper = self.wrappers.get(fn)
        if wrapper is None:

            @functools.wraps(fn)
            def wrapper(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
                return tensor if tensor.is_meta else fn(tensor, *args, **kwargs)

            self.wrappers[fn] = wrapper
        return wrapper


_META_INITS = _MetaInitSkipping()


def construct_on_meta(layer: Layer, bound: dict[str, Any], span: Span) -> nn.Module:
    try:
        with on_meta():
            module = layer.factory(**bound)
    except (
        TypeError,
        ValueError,
        RuntimeError,
        AssertionError,
        AttributeError,
        IndexError,
        KeyError,
    ) as exc:
        raise ArgumentError(
            f"{layer.name}({_args_text(bound)}) cannot be built: {_first_line(exc)}", span
        ) from None
    if not isinstance(module, nn.Module):
        raise ArgumentError(f"{layer.name} did not return a torch module", span)
    return module


@contextlib.contextmanager
def fast_meta(model: nn.Module) -> Iterator[None]:
    """Run a whole meta model with each module that has a shape rule answering by its rule."""
    patched = [
        m
        for m in model.modules()
        if shape_rules.MODULE_RULES.get(type(m)) is not None and "forward" not in m.__dict__
    ]
    for module in patched:
        module.forward = functools.partial(_by_rule, module, type(module).forward.__get__(module))
    try:
        yield
    finally:
        for module in patched:
            del module.forward


def _by_rule(module: nn.Module, forward: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = shape_rules.infer(module, args, kwargs) if not kwargs else None
    return forward(*args, **kwargs) if result is None else result


def run(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    what: str,
    span: Span,
    inputs: Sequence[tuple[Any, Span | None]],
    symbols: Symbols,
) -> Any:
    """Call `fn` on meta tensors; a failure is the spec's shape mistake, said at `span`."""
    kwargs = catalog.on_meta(fn, kwargs)
    try:
        direct = shape_rules.infer(fn, args, kwargs)
        if direct is not None:
            return direct
        with torch.no_grad():
            return fn(*args, **kwargs)
    except (
        RuntimeError,
        ValueError,
        TypeError,
        IndexError,
        AssertionError,
        NotImplementedError,
    ) as exc:
        shapes = ", ".join(describe(meta, symbols) for meta, _ in inputs)
        notes = [
            Note(f"an input of shape {describe(meta, symbols)} came from here", src)
            for meta, src in inputs
            if src
        ]
        detail, hint = _explain(fn, args, kwargs, symbols) or (_first_line(exc), None)
        raise ShapeError(
            f"{what} cannot take input{'s' if len(inputs) > 1 else ''} of shape {shapes}: {detail}",
            span,
            notes=notes,
            hint=hint,
        ) from None


# ----------------------------------------------------------------------------- explaining failures
# torch's own messages speak of representative sizes (B as 2, H as 32) and internal argument
# names (batch2, "tensor number 1"); for the common mistakes say it in the spec's terms.

_BROADCASTING = (
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.floordiv,
    operator.mod,
    operator.pow,
    torch.add,
    torch.sub,
    torch.mul,
    torch.div,
    torch.where,
)


def _explain(
    fn: Any, args: Sequence[Any], kwargs: dict[str, Any], symbols: Symbols
) -> tuple[str, str | None] | None:
    """What went wrong, in the spec's terms, and a hint; None to keep torch's message."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    method = (
        getattr(fn, "__name__", None)
        if isinstance(getattr(fn, "__self__", None), torch.Tensor)
        else None
    )
    if fn in _BROADCASTING and len(tensors) >= 2:
        return _explain_broadcast(tensors[0], tensors[1], symbols)
    if (
        fn in (operator.matmul, torch.matmul)
        and len(tensors) == 2
        and min(t.dim() for t in tensors) >= 1
    ):
        return _explain_matmul(tensors[0], tensors[1], symbols)
    if method in ("view", "reshape"):
        return _explain_view(fn.__self__, args, method, symbols)
    if fn is torch.reshape and tensors and len(args) == 2:
        return _explain_view(args[0], args[1:], "reshape", symbols)
    if fn in (torch.cat, torch.stack) and args and isinstance(args[0], list | tuple):
        return _explain_cat(
            fn, list(args[0]), kwargs.get("dim", args[1] if len(args) > 1 else 0), symbols
        )
    if (
        (isinstance(fn, nn.Embedding) or fn is F.embedding)
        and tensors
        and tensors[0].is_floating_point()
    ):
        dtype = str(tensors[0].dtype).removeprefix("torch.")
        return (
            f"Embedding looks up integer ids, but the input holds {dtype} values",
            "declare integer inputs with a dtype, as in 'input idx: long[B, T]', or convert with .long()",
        )
    return None


def _mismatch(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first dimension (counted from the end) where `a` and `b` do not broadcast."""
    for k in range(-min(len(a), len(b)), 0):
        if a[k] != b[k] and a[k] != 1 and b[k] != 1:
            return k
    return None


def _explain_broadcast(
    a: torch.Tensor, b: torch.Tensor, symbols: Symbols
) -> tuple[str, str | None] | None:
    k = _mismatch(a.shape, b.shape)
    if k is None:
        return None
    where = f"dimension {a.dim() + k}" if a.dim() == b.dim() else f"dimension {k} (from the end)"
    return (
        f"{where} is {symbols.dim(a.shape, k)} in the first and {symbols.dim(b.shape, k)} in the second; "
        "sizes must be equal, or 1, to broadcast",
        None,
    )


def _explain_matmul(
    a: torch.Tensor, b: torch.Tensor, symbols: Symbols
) -> tuple[str, str | None] | None:
    inner = -2 if b.dim() >= 2 else 0
    if a.shape[-1] != b.shape[inner]:
        which = {1: "only", 2: "first"}.get(b.dim(), "second-to-last")
        hint = None
        if b.dim() >= 2 and a.shape[-1] == b.shape[-1]:
            hint = "to contract the last dimensions of both, transpose the right one: a @ b.transpose(-2, -1)"
        return (
            f"the left's last dimension ({symbols.dim(a.shape, -1)}) must equal the right's {which} dimension ({symbols.dim(b.shape, inner)})",
            hint,
        )
    if a.dim() > 2 and b.dim() > 2 and _mismatch(a.shape[:-2], b.shape[:-2]) is not None:
        k = _mismatch(a.shape[:-2], b.shape[:-2])
        return (
            f"the batch dimensions do not broadcast: {symbols.dim(a.shape, k - 2)} against {symbols.dim(b.shape, k - 2)}",
            None,
        )
    return None


def _explain_view(
    source: torch.Tensor, args: Sequence[Any], method: str, symbols: Symbols
) -> tuple[str, str | None] | None:
    target = args[0] if len(args) == 1 and isinstance(args[0], list | tuple | torch.Size) else args
    if (
        not target
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in target)
        or list(target).count(-1) > 1
    ):
        return None
    target = [int(d) for d in target]
    total, fixed = source.numel(), prod(d for d in target if d != -1)
    if (total == fixed) if -1 not in target else (fixed != 0 and total % fixed == 0):
        if method == "view" and not source.is_contiguous():
            return (
                "the sizes agree, but the tensor is not contiguous in memory (a transpose or permute made it so), and view() needs it to be",
                "call .contiguous() before .view(), or use .reshape()",
            )
        return None
    common = 0
    while common < min(len(target), source.dim()) and target[common] == source.shape[common]:
        common += 1
    rest, want = list(source.shape[common:]), target[common:]
    if not want:
        return None
    after = f" after {symbols.describe(source.shape[:common])}" if common else ""
    target_text = (
        "["
        + ", ".join([*(symbols.dim(source.shape, i) for i in range(common)), *map(str, want)])
        + "]"
    )
    have = f"{_product_text(rest)} element{'s' if prod(rest) != 1 else ''}{after}"
    known = [d for d in want if d != -1]
    if want.count(-1) == 1:
        return (
            f"it has {have}, which do not split evenly into {target_text} ({prod(rest)} is not a multiple of {_product_text(known)})",
            None,
        )
    return (f"it has {have}, but {target_text} asks for {_product_text(want)}", None)


def _product_text(sizes: Sequence[int]) -> str:
    sizes = [int(s) for s in sizes]
    if len(sizes) == 1:
        return str(sizes[0])
    return f"{' x '.join(map(str, sizes))} = {prod(sizes)}"


def _explain_cat(
    fn: Any, tensors: list[Any], dim: Any, symbols: Symbols
) -> tuple[str, str | None] | None:
    if (
        len(tensors) < 2
        or not all(isinstance(t, torch.Tensor) for t in tensors)
        or not isinstance(dim, int)
    ):
        return None
    name = "cat" if fn is torch.cat else "stack"
    first = tensors[0]
    for i, t in enumerate(tensors[1:], start=1):
        if t.dim() != first.dim():
            return (
                f"{name} needs inputs with the same number of dimensions; input 0 has {first.dim()}, input {i} has {t.dim()}",
                None,
            )
    if not -first.dim() - (fn is torch.stack) <= dim < first.dim() + (fn is torch.stack):
        return None
    axis = dim % (first.dim() + (fn is torch.stack))
    for i, t in enumerate(tensors[1:], start=1):
        for d in range(first.dim()):
            if (fn is torch.stack or d != axis) and t.shape[d] != first.shape[d]:
                rule = (
                    f"every dimension but {axis} must match"
                    if fn is torch.cat
                    else "all inputs must have the same shape"
                )
                hint = None
                if first.dim() >= 4 and d >= 2:  # the spatial sizes of feature maps
                    hint = "bring the maps to one size first, e.g. pad_to(smaller, larger) as U-Net does, or crop the larger"
                return (
                    f"{rule}, but dimension {d} is {symbols.dim(first.shape, d)} in input 0 and {symbols.dim(t.shape, d)} in input {i}",
                    hint,
                )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _args_text(bound: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in bound.items())
