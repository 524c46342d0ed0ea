"""Shapes on the meta device: the input-size arguments a spec may leave out, and running one
module or function on meta tensors with torch's errors turned into `ShapeError`s that say
what was expected and what arrived (`shape_explain` words them; `symbols` picks the sizes
that symbolic dims stand for).

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
from torch import nn

from dsl.errors import (
    ArgumentError,
    ArgumentTypeError,
    ArityError,
    DSLError,
    Note,
    ShapeError,
    UnknownKeywordError,
    did_you_mean,
)
from dsl.source import Span
from dsl.torchlib import catalog, shape_rules
from dsl.torchlib.choices import check_choices
from dsl.torchlib.registry import INPUT_SIZE_PARAMS, Binding, Layer
from dsl.torchlib.shape_explain import explain
from dsl.torchlib.symbols import DTYPES as DTYPES  # re-exported: elaborate reads shapes.DTYPES
from dsl.torchlib.symbols import Symbols, describe
from dsl.torchlib.symbols import meta_tensor as meta_tensor  # re-exported

# ----------------------------------------------------------------------------- layer arguments


def bind_layer_args(
    layer: Layer,
    args: list[Any],
    kwargs: dict[str, Any],
    input_meta: torch.Tensor | None,
    span: Span,
    arg_spans: dict[int | str, Span] | None = None,
    keyword_spans: dict[str, Span] | None = None,
) -> dict[str, Any]:
    """All constructor arguments by keyword, with left-out input sizes read from the input.

    `Conv2d(64, kernel_size=3)` has one positional argument for the two required positional
    parameters (in_channels, out_channels): in_channels is the one left out.
    `arg_spans` (positional index or keyword -> where its value is written) lets errors
    about one argument point at it rather than at the whole call; `keyword_spans` says
    where each keyword's name is written.
    """
    arg_spans = arg_spans or {}
    if layer.signature is None or (layer.accepts_var_kwargs and not layer.positional_params):
        check_choices(layer.factory, layer.name, kwargs, lambda key: arg_spans.get(key, span))
        return {**{str(i): a for i, a in enumerate(args)}, **kwargs} if args else dict(kwargs)
    plan = layer.binding(tuple(kwargs), len(args))
    if plan.unknown is not None:
        key, names = plan.unknown, layer.keyword_names
        raise UnknownKeywordError(
            f"{layer.name} has no argument '{key}'",
            (keyword_spans or {}).get(key) or arg_spans.get(key, span),
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
    if plan.inferred:
        _infer_sizes(layer, plan, args, kwargs, bound, input_meta, span)
    unset = [name for name in plan.required if name not in bound]
    if unset:
        raise ArityError(
            f"{layer.name} is missing required argument{'s' if len(unset) > 1 else ''} {', '.join(repr(u) for u in unset)}",
            span,
        )
    _check_types(layer, bound, span, slots, arg_spans)
    check_choices(
        layer.factory, layer.name, bound, lambda key: _value_span(key, slots, arg_spans, span)
    )
    return bound


def _infer_sizes(
    layer: Layer,
    plan: Binding,
    args: list[Any],
    kwargs: dict[str, Any],
    bound: dict[str, Any],
    input_meta: torch.Tensor | None,
    span: Span,
) -> None:
    """Fill the input sizes left out from the input; refuse a call PyTorch reads otherwise."""
    for name in plan.inferred:
        if input_meta is None:
            raise ArgumentError(
                f"{layer.name} needs '{name}', which is read from its input, but it is never applied to one",
                span,
                hint=f"give {name}= explicitly, or apply the layer to a value",
            )
        bound[name] = _input_size(name, input_meta, layer, span)
    ambiguous = _refuse_torch_reading(layer, plan, args, kwargs, bound)
    if ambiguous is not None:
        raise ambiguous.with_span(span)


def _refuse_torch_reading(
    layer: Layer, plan: Binding, args: list[Any], kwargs: dict[str, Any], bound: dict[str, Any]
) -> ArgumentError | None:
    """`Conv2d(64, 3)` on 64 channels: netdsl reads out=64, kernel=3 (in_channels inferred),
    PyTorch reads in=64, out=3. When torch's reading gives every inferred size the value the
    input has, and binds one argument more, the call is ambiguous: an error with both
    readings, each written out by keyword."""
    torch_order = [p.name for p in layer.positional_params if p.name not in kwargs]
    theirs = dict(zip(torch_order, args))
    if len(args) <= len(plan.inferred) or any(
        theirs.get(name, _UNSET) != bound[name] for name in plan.inferred
    ):
        return None
    ours = dict(zip(plan.slots, args))
    missing = {name: _BLANK for name in plan.required if name not in theirs}
    return ArgumentError(
        f"{layer.name}({', '.join(map(repr, args))}) reads two ways here: netdsl infers "
        f"{_keywords({n: bound[n] for n in plan.inferred})} from the input and reads "
        f"{_keywords(ours)}; "
        f"PyTorch reads {_keywords(theirs)}",
        hint=f"write {layer.name}({_keywords({**ours, **kwargs})}) for netdsl's reading, or "
        f"{layer.name}({_keywords({**theirs, **missing, **kwargs})}) for PyTorch's",
    )


class _Blank:
    def __repr__(self) -> str:
        return "..."


_UNSET, _BLANK = object(), _Blank()


def _keywords(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


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
        found = self.wrappers.get(fn)
        if found is None:

            @functools.wraps(fn)
            def wrapper(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
                return tensor if tensor.is_meta else fn(tensor, *args, **kwargs)

            found = self.wrappers[fn] = wrapper
        return found


_META_INITS = _MetaInitSkipping()


def construct_on_meta(layer: Layer, bound: dict[str, Any], span: Span) -> nn.Module:
    try:
        with on_meta():
            module = layer.construct(bound)
    except DSLError as exc:  # refused by netdsl's own wrapper (a download, ...)
        raise exc.with_span(span) from None
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
        (m, rule)
        for m in model.modules()
        if (rule := shape_rules.MODULE_RULES.get(type(m))) is not None
        and "forward" not in m.__dict__
    ]
    for module, rule in patched:
        forward = type(module).forward.__get__(module)
        module.forward = functools.partial(_by_rule, module, rule, forward)
    try:
        with _FunctionsByRule():
            yield
    finally:
        for module, _ in patched:
            del module.forward


# `a + b` in a generated forward reaches torch as Tensor.add (or Tensor.__add__): the
# rule of operator.add.
_OPERATOR_METHODS = {
    getattr(torch.Tensor, method): getattr(operator, name)
    for name, short in (("add", "add"), ("sub", "sub"), ("mul", "mul"), ("truediv", "div"))
    for method in (short, f"__{name}__")
}


class _FunctionsByRule(torch.overrides.TorchFunctionMode):
    """Functions with a shape rule answer by it while a whole meta model runs: torch's own
    meta path for some (the add of a residual block) imports torch._dynamo and sympy."""

    def __torch_function__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        result = shape_rules.infer(_OPERATOR_METHODS.get(func, func), args, kwargs)
        return func(*args, **kwargs) if result is None else result


def _by_rule(
    module: nn.Module,
    rule: shape_rules.ModuleRule,
    forward: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    # the rule of the module's class: `infer` would see the patched forward and decline
    result = shape_rules.infer_module(module, rule, args, kwargs)
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
        ZeroDivisionError,  # torch's meta shape formulas divide by a stride of 0
        OverflowError,
    ) as exc:
        shapes = ", ".join(describe(meta, symbols) for meta, _ in inputs)
        notes = [
            Note(f"an input of shape {describe(meta, symbols)} came from here", src)
            for meta, src in inputs
            if src
        ]
        detail, hint = explain(fn, args, kwargs, symbols) or (_first_line(exc), None)
        raise ShapeError(
            f"{what} cannot take input{'s' if len(inputs) > 1 else ''} of shape {shapes}: {detail}",
            span,
            notes=notes,
            hint=hint,
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _args_text(bound: dict[str, Any]) -> str:
    return ", ".join(repr(v) if k.isdigit() else f"{k}={v!r}" for k, v in bound.items())
