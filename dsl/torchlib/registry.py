"""What a spec may name: layers (module constructors), graph functions, and initialisers.

A spec never imports anything by itself. Names resolve against fixed tables: every public
`torch.nn` module class by its class name, torchvision's models and ops by qualified name
(`torchvision.models.resnet50`, `torchvision.ops.SqueezeExcitation`), torch's pure tensor
functions (`catalog`), and whatever the user's own Python code registers with `@dsl.register`.
"""

from __future__ import annotations

import functools
import inspect
import operator
import types
import typing
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from torch import nn

from dsl.errors import (
    ArgumentError,
    DSLError,
    UndefinedValueError,
    did_you_mean,
)
from dsl.records import field, record
from dsl.source import Span
from dsl.torchlib import catalog, choices, offline, ops

# Constructor arguments that describe the incoming tensor, and the input dimension each one
# is read from when a spec leaves it out.
INPUT_SIZE_PARAMS: dict[str, int] = {
    "in_channels": 1,
    "in_features": -1,
    "num_features": 1,
    "num_channels": 1,
    "normalized_shape": -1,
    "embed_dim": -1,
    "d_model": -1,
    "input_size": -1,
}


@record(frozen=True)
class Layer:
    """Something that constructs an `nn.Module`."""

    name: str
    factory: Callable[..., nn.Module]
    source: str  # "torch.nn", "torchvision", "user"

    def construct(self, bound: dict[str, Any]) -> nn.Module:
        """Call the factory with bound arguments; keys "0", "1", ... (for a constructor that
        takes `*args`, like `LSTM(16, 8)`) go by position."""
        positional = [value for key, value in bound.items() if key.isdigit()]
        named = {key: value for key, value in bound.items() if not key.isdigit()}
        return self.factory(*positional, **named)

    @functools.cached_property
    def signature(self) -> inspect.Signature | None:
        target = self.factory.__init__ if inspect.isclass(self.factory) else self.factory
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            return None
        params = [p for p in sig.parameters.values() if p.name != "self"]
        return sig.replace(parameters=params)

    @functools.cached_property
    def positional_params(self) -> tuple[inspect.Parameter, ...]:
        sig = self.signature
        if sig is None:
            return ()
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return tuple(p for p in sig.parameters.values() if p.kind in kinds)

    @functools.cached_property
    def accepts_var_kwargs(self) -> bool:
        sig = self.signature
        return sig is None or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
        )

    @functools.cached_property
    def keyword_names(self) -> tuple[str, ...]:
        sig = self.signature
        if sig is None:
            return ()
        return tuple(
            p.name
            for p in sig.parameters.values()
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        )

    @functools.cached_property
    def input_size_params(self) -> tuple[str, ...]:
        return tuple(p for p in self.keyword_names if p in INPUT_SIZE_PARAMS)

    @functools.cached_property
    def expected_types(self) -> dict[str, type | tuple[type, ...]]:
        """The parameters whose annotation `isinstance` can check, and what it checks."""
        sig = self.signature
        if sig is None:
            return {}
        types_ = {
            p.name: _plain_type(p.annotation)
            for p in sig.parameters.values()
            if p.annotation is not inspect.Parameter.empty
        }
        return {name: expected for name, expected in types_.items() if expected is not None}

    def binding(self, keywords: tuple[str, ...], count: int) -> Binding:
        """How a call with these keywords and `count` positional arguments binds; the
        same few shapes of call recur for every layer of a network."""
        key = (keywords, count)
        found = self._bindings.get(key)
        if found is None:
            if len(self._bindings) >= _MAX_BINDINGS:
                self._bindings.clear()
            found = self._bindings[key] = self._bind(keywords, count)
        return found

    @functools.cached_property
    def _bindings(self) -> dict[tuple[tuple[str, ...], int], Binding]:
        return {}

    def _bind(self, keywords: tuple[str, ...], count: int) -> Binding:
        names = self.keyword_names
        unknown = (
            next((k for k in keywords if k not in names), None)
            if not self.accepts_var_kwargs
            else None
        )
        positional = [p for p in self.positional_params if p.name not in keywords]
        required = [p.name for p in positional if p.default is inspect.Parameter.empty]
        inferable = [name for name in required if name in INPUT_SIZE_PARAMS]
        inferred = inferable[: max(0, min(len(required) - count, len(inferable)))]
        slots = tuple(p.name for p in positional if p.name not in inferred)
        return Binding(unknown, slots, tuple(inferred), tuple(required))


_MAX_BINDINGS = 256


@record(frozen=True)
class Binding:
    """A call's arguments against a layer's signature (see `shapes.bind_layer_args`)."""

    unknown: str | None  # the first keyword the layer does not take
    slots: tuple[str, ...]  # the parameters positional arguments fill, in order
    inferred: tuple[str, ...]  # required input sizes left out: read from the input
    required: tuple[str, ...]  # positional parameters without a default


_SIMPLE = {"int": int, "bool": bool, "float": float, "str": str}


def _plain_type(annotation: Any) -> type | tuple[type, ...] | None:
    """The annotation as isinstance() understands it, for the simple cases only: plain
    types, and unions of them with tuples (`kernel_size: int | tuple[int, int]`)."""
    if isinstance(annotation, str):
        return _SIMPLE.get(annotation)
    if annotation in (int, float, bool, str):
        return (int, bool) if annotation is int else annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members: list[type] = []
        for member in typing.get_args(annotation):
            if member is type(None) or member in (int, float, bool, str):
                members.append(member)
            elif typing.get_origin(member) is tuple or member is tuple:
                members.extend((tuple, list))
            else:
                return None
        if float in members and int not in members:
            members.append(int)
        return tuple(dict.fromkeys(members))
    return None


@record(frozen=True)
class Function:
    """A tensor operation usable in graph bodies; it becomes one node of generated code."""

    name: str
    fn: Callable[..., Any]


_MAX_LOOKED_UP = 8192


class Functions(MutableMapping[str, Function]):
    """The functions graph bodies may call, by the names specs write them: every name
    `catalog.op_names()` lists, and the user's (`register`). A torch function is looked up
    when a spec first names it: listing them all costs milliseconds of every start-up."""

    def __init__(self, own: dict[str, Function]) -> None:
        self._own = dict(own)
        self._looked_up: dict[str, Function | None] = {}

    def __getitem__(self, name: str) -> Function:
        found = self._own.get(name) or self._listed(name)
        if found is None:
            raise KeyError(name)
        return found

    def _listed(self, name: str) -> Function | None:
        if name in self._looked_up:
            return self._looked_up[name]
        fn = catalog.listed_function(name)
        found = Function(name, fn) if fn is not None else None
        if len(self._looked_up) < _MAX_LOOKED_UP:  # names specs wrote, bounded
            self._looked_up[name] = found
        return found

    def __setitem__(self, name: str, function: Function) -> None:
        self._own[name] = function

    def __delitem__(self, name: str) -> None:
        del self._own[name]

    def __iter__(self) -> Iterator[str]:
        yield from catalog.op_names()
        listed = set(catalog.op_names())
        yield from (name for name in self._own if name not in listed)

    def __len__(self) -> int:
        return len(set(catalog.op_names()) | set(self._own))


@record
class Registry:
    layers: dict[str, Layer] = field(default_factory=dict)
    functions: Functions = field(default_factory=lambda: Functions({}))

    def layer(self, name: str) -> Layer | None:
        found = self.layers.get(name)
        if found is not None:
            return found
        return _torchvision_layer(name)

    def function(self, name: str) -> Function | None:
        """A function by the name a spec writes: bare (`relu`), or as torch spells it
        (`F.relu`, `torch.cat`, `torch.nn.functional.gelu`)."""
        found = self.functions.get(name)
        if found is None and catalog.is_namespace_prefix(name):
            fn = catalog.function(name)
            found = Function(name, fn) if fn is not None else None
        return found

    def layer_names(self) -> list[str]:
        return list(self.layers)

    def all_names(self) -> list[str]:
        return [*self.layers, *self.functions]


def _torch_nn_layers() -> dict[str, Layer]:
    out = {}
    for name in nn.modules.__all__:
        obj = getattr(nn, name, None)
        if (
            inspect.isclass(obj)
            and issubclass(obj, nn.Module)
            and obj not in (nn.Module, nn.Container)
            and not name.startswith("Lazy")
        ):
            out[name] = Layer(name, obj, "torch.nn")
    return out


_TORCHVISION_NAMESPACES = ("torchvision.models", "torchvision.ops")


@functools.cache
def _torchvision_layer(qualified: str) -> Layer | None:
    """`torchvision.models.resnet50` or `torchvision.ops.SqueezeExcitation`; nothing else."""
    namespace, _, attr = qualified.rpartition(".")
    if namespace not in _TORCHVISION_NAMESPACES or attr.startswith("_"):
        return None
    import torchvision.models
    import torchvision.ops

    module = torchvision.models if namespace == "torchvision.models" else torchvision.ops
    if namespace == "torchvision.models" and attr in torchvision.models.list_models(
        module=torchvision.models
    ):
        builder = offline.refusing_downloads(torchvision.models.get_model_builder(attr), qualified)
        return Layer(qualified, builder, "torchvision")
    obj = getattr(module, attr, None) if attr in getattr(module, "__all__", ()) else None
    if inspect.isclass(obj) and issubclass(obj, nn.Module):
        return Layer(qualified, obj, "torchvision")
    return None


def torchvision_names() -> list[str]:
    import torchvision.models
    import torchvision.ops

    models = [
        f"torchvision.models.{m}" for m in torchvision.models.list_models(module=torchvision.models)
    ]
    op_classes = [
        f"torchvision.ops.{n}"
        for n in torchvision.ops.__all__
        if inspect.isclass(getattr(torchvision.ops, n, None))
        and issubclass(getattr(torchvision.ops, n), nn.Module)
    ]
    return models + op_classes


# Functions netdsl adds to torch's own; torch's come from the catalog.
_OWN_FUNCTIONS: dict[str, Callable[..., Any]] = {"pad_to": ops.pad_to}

# Operators on graph values, and the function each becomes in generated code.
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "@": operator.matmul,
    "**": operator.pow,
    "|": operator.or_,  # on boolean masks: either; on sizes and parameters: bitwise
    "&": operator.and_,
}

# Comparisons on graph values give boolean tensors (`mask = x > 0`); on sizes and parameters
# they stay build-time values, decided while the spec is elaborated.
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
TENSOR_OPERATORS = {**OPERATORS, **COMPARISONS}
UNARY_OPERATORS: dict[str, Callable[[Any], Any]] = {
    "-": operator.neg,
    "+": operator.pos,
    "~": operator.invert,  # on a boolean mask: not
}


def refusal_hint(name: str) -> str | None:
    """Why a graph body may not call `name` (`manual_seed`, `x.add_`, `torch.save`), if a
    deny-list refuses it."""
    why = catalog.refusal(name)
    if why is None:
        return None
    leaf = name.rpartition(".")[2]
    pure = leaf[:-1] if leaf.endswith("_") and catalog.is_tensor_method(leaf[:-1]) else None
    return f"'{leaf}' is not allowed in a graph body: {why}" + (f" ('{pure}')" if pure else "")


def unknown_function(dotted: str, span: Span) -> DSLError | None:
    """The error for `torch.NAME`/`F.NAME` naming no allowed function (None for other
    dotted names: those are layers or values)."""
    if not catalog.is_namespace_prefix(dotted):
        return None
    leaf = dotted.rpartition(".")[2]
    hint = refusal_hint(dotted) or did_you_mean(leaf, REGISTRY.functions)
    return UndefinedValueError(f"unknown function '{dotted}'", span, hint=hint)


def check_keywords(
    kwargs: dict[str, Any],
    spans: dict[str, Span],
    function: Function | None = None,
    value_spans: dict[str, Span] | None = None,
) -> None:
    """Refuse `out=` and `inplace=true`: they write into a value other nodes may read; and
    a word that `function`'s parameter does not take (`mode="bilinaer"`, said at the
    string). `spans` says where each keyword is written, `value_spans` each value."""
    refused = catalog.refused_keyword(kwargs)
    if refused is not None:
        key, hint = refused
        span = spans.get(key)
        raise ArgumentError(f"'{key}=' writes into a tensor in place", span, hint=hint)
    if function is not None:
        name = function.name.rpartition(".")[2]
        at = value_spans or spans
        choices.check_choices(function.fn, name, kwargs, lambda key: at.get(key) or spans[key])


def _default_registry() -> Registry:
    own = {name: Function(name, fn) for name, fn in _OWN_FUNCTIONS.items()}
    return Registry(layers=_torch_nn_layers(), functions=Functions(own))


REGISTRY = _default_registry()


def register(obj: Any = None, *, name: str | None = None) -> Any:
    """Make a user module class (or module factory) or a tensor function nameable in specs.

    @dsl.register
    class Mish(nn.Module): ...

    @dsl.register(name="swish")
    def swish(x): return x * torch.sigmoid(x)
    """

    def add(target: Any) -> Any:
        key = name or target.__name__
        if inspect.isclass(target) and issubclass(target, nn.Module):
            REGISTRY.layers[key] = Layer(key, target, "user")
        elif callable(target):
            REGISTRY.functions[key] = Function(key, target)
        else:
            raise TypeError(f"dsl.register takes an nn.Module class or a function, not {target!r}")
        return target

    return add(obj) if obj is not None else add
