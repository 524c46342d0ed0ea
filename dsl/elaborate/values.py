"""The values an elaboration computes with, as plain records.

Build-time values are plain Python (ints, tuples, strings) or the classes here: a graph
value `Val` (an fx node and its meta tensor), a symbolic size `Dim`, references to layers,
blocks and functions, and `Handle`, one module of the spec on its way to a resolved spec.
What is done with a handle (building it on its first application, finishing it) lives in
`dsl.elaborate.handles`; nothing here calls back into the elaboration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.fx as fx

from dsl import ir
from dsl.elaborate import limits
from dsl.errors import EvaluationError, LimitError, did_you_mean
from dsl.plan import ModuleSpec
from dsl.records import record
from dsl.source import Span
from dsl.syntax.loader import Definition
from dsl.torchlib import fx_private, shapes
from dsl.torchlib.init import Rule
from dsl.torchlib.registry import Function, Layer

MAX_LOOP = 100_000
MAX_SEQUENCE = 1_000_000
MAX_INT_BITS = 4096
STATIC_TYPES = frozenset(
    {int, float, bool, str, type(None)}
)  # build-time values that are already static


class Training:
    """`training` in a graph body: the module's mode, known only when forward runs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "training"


TRAINING = Training()


class StaticScope(Protocol):
    """A scope that computes build-time values (`dsl.elaborate.evaluate.Frame`)."""

    def static(self, expr: ir.ExprNode) -> Any: ...

    def child_scope(self, extra: dict[str, Any]) -> StaticScope: ...


@record(eq=False, slots=True)
class Val:
    """A tensor computed in `forward`: its graph node and its meta tensor."""

    node: fx.Node
    meta: Any
    span: Span


class Dim:
    """A size read from a graph value: an int while building, a node in `forward`."""

    __slots__ = ("_emit", "_node", "name", "value")

    def __init__(self, value: int, emit: Callable[[], fx.Node]) -> None:
        self.value = value
        self.name: str | None = None  # the name it is bound to, for the generated code
        self._emit = emit
        self._node: fx.Node | None = None

    def node(self) -> fx.Node:
        if self._node is None:
            self._node = self._emit()
            if self.name:
                fx_private.rename(self._node, self.name)
        return self._node

    def bind_name(self, name: str) -> None:
        """Name the size where it is first bound (`h = x.shape[2]`); later names alias it."""
        if self.name is None:
            self.name = name
            if self._node is not None:
                fx_private.rename(self._node, name)

    def __repr__(self) -> str:
        return f"Dim({self.value})"


class DimSource(Protocol):
    """What a shape reads its sizes from (`dsl.elaborate.graph.GraphBuilder`)."""

    def dim(self, val: Val, index: int) -> Dim: ...

    def node(self, op: str, target: Any, args: tuple, kwargs: dict | None = None) -> fx.Node: ...


@record(frozen=True)
class ShapeView:
    val: Val
    builder: DimSource

    def dims(self) -> list[Dim]:
        return [self.builder.dim(self.val, i) for i in range(self.val.meta.dim())]


@record(eq=False)
class Parts:
    """A model whose submodules a body takes as its own members."""

    key: str
    spec: ModuleSpec
    meta: torch.nn.Module
    span: Span


@record(frozen=True)
class LayerRef:
    layer: Layer

    def __repr__(self) -> str:  # as a spec writes it (`dsl resolve` shows `act=ReLU`)
        return self.layer.name


@record(frozen=True)
class BlockRef:
    definition: Definition

    def __repr__(self) -> str:
        return self.definition.node.name


@record(frozen=True)
class FunctionRef:
    function: Function


@record(frozen=True)
class MethodRef:
    val: Val
    name: str


@record(frozen=True)
class Builtin:
    name: str
    fn: Callable[..., Any] | None


Runner = Callable[..., Any]  # (input metas, their sources, where applied[, keyword metas])


class Handle:
    """A module named in a body, as a record. It is built on its first application, when
    the shapes it is applied to are known (to infer `in_channels` and the like)."""

    __slots__ = (
        "block",
        "call",
        "children",
        "container",
        "first",
        "frame",
        "init_rules",
        "kind",
        "layer",
        "name",
        "options",
        "path",
        "runner",
        "settings",
        "source",
        "span",
        "spec",
    )

    def __init__(
        self,
        kind: str,
        span: Span,
        *,
        layer: Layer | None = None,
        block: Definition | None = None,
        container: ir.Container | None = None,
        call: ir.Call | None = None,
        frame: StaticScope | None = None,
    ) -> None:
        self.kind = kind  # "layer", "block", "container", "part"
        self.span = span
        self.layer = layer
        self.block = block
        self.container = container
        self.call = call
        self.frame = frame  # the scope its arguments are evaluated in
        self.name: str | None = None  # attribute path in the enclosing graph module
        self.children: list[tuple[str, Handle]] = []
        self.init_rules: list[Rule] = []  # a container's own `init:`
        self.options: dict[str, Any] = {}
        self.spec: ModuleSpec | None = None
        self.runner: Runner | None = None  # the output for input metas, once built
        # For a block: input signatures, output, inputs and where of its first application.
        self.first: tuple[list[tuple], Any, list[Any], Span] | None = None
        self.source: Parts | None = None  # for kind "part": the parts(...) it comes from
        self.path = ""
        # `set("name.inner", k=v)` before the first application: (path left, attributes,
        # where, the layer that replaces the one named, if any) (dsl.elaborate.net_settings)
        self.settings: list[tuple[list[str], dict[str, Any], Span, Handle | None]] = []

    @property
    def title(self) -> str:
        if self.layer:
            return self.layer.name
        if self.block:
            return self.block.node.name
        return self.container.kind if self.container else "module"

    @property
    def container_kind(self) -> str:
        return self.container.kind if self.container is not None else ""

    def attach(self, name: str) -> None:
        self.name = name
        for child_name, child in self.children:
            child.attach(f"{name}.{child_name}")

    def child(self, key: Any, span: Span) -> Handle:
        names = [n for n, _ in self.children]
        if isinstance(key, int) and not isinstance(key, bool) and self._numbered():
            if -len(names) <= key < len(names):
                return self.children[key][1]
            raise EvaluationError(
                f"{self.name} has {len(names)} children; index {key} is out of range",
                span,
                hint=f"index from 0 to {len(names) - 1}, or from -{len(names)} counting from the end"
                if names
                else None,
            )
        key_text = str(key)
        for name, child in self.children:
            if name == key_text:
                return child
        raise EvaluationError(
            f"{self.name} has no child '{key_text}'",
            span,
            hint=did_you_mean(key_text, names) or f"its children are: {', '.join(names)}",
        )

    def _numbered(self) -> bool:
        return self.kind == "container" and self.container_kind != "ModuleDict"


# ============================================================================ meta modules

# Meta modules of plain arguments, kept across resolves (a second validate, a sweep over
# widths): they hold no storage, and shapes only read them. Bounded.
_META_MODULES: dict[tuple, tuple[torch.nn.Module, tuple[int, int]]] = {}
_MAX_META_MODULES = 4096


def shared_meta_module(
    layer: Layer, frozen: Any, bound: dict[str, Any], span: Span
) -> tuple[torch.nn.Module, tuple[int, int]]:
    key = (layer.factory, frozen) if _by_value(bound) else None
    found = _META_MODULES.get(key) if key is not None else None
    if found is None:
        module = shapes.construct_on_meta(layer, bound, span)
        found = (module, limits.module_numel(module))
        if key is not None:
            if len(_META_MODULES) >= _MAX_META_MODULES:
                _META_MODULES.clear()
            _META_MODULES[key] = found
    return found


def _by_value(value: Any) -> bool:
    """Whether `frozen_key(value)` names values only, with nothing kept by identity."""
    if isinstance(value, dict):
        return all([type(v) in STATIC_TYPES or _by_value(v) for v in value.values()])
    if isinstance(value, list | tuple):
        return all([type(v) in STATIC_TYPES or _by_value(v) for v in value])
    if isinstance(value, BlockRef):
        return False
    try:
        hash(value)
    except TypeError:
        return False
    return True


def frozen_key(value: Any) -> Any:
    """A hashable stand-in for a build-time value (blocks and layers by identity)."""
    if type(value) in STATIC_TYPES:
        return (type(value).__name__, value)
    # Below, plain items are frozen in place: a layer's arguments are mostly plain.
    if isinstance(value, dict):
        return tuple(
            [
                (k, (type(v).__name__, v) if type(v) in STATIC_TYPES else frozen_key(v))
                for k, v in value.items()
            ]
        )
    if isinstance(value, list | tuple):
        return (
            type(value).__name__,
            *[(type(v).__name__, v) if type(v) in STATIC_TYPES else frozen_key(v) for v in value],
        )
    if isinstance(value, BlockRef):
        return ("block", id(value.definition.node))
    if isinstance(value, LayerRef):
        return ("layer", value.layer.name)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return (type(value).__name__, value)


def meta_signature(meta: Any) -> tuple:
    if isinstance(meta, torch.Tensor):
        return (tuple(meta.shape), meta.dtype)
    return (repr(meta),)


# ============================================================================ working with values


def qualified_hint(dotted: str) -> str:
    from dsl.torchlib.registry import torchvision_names

    head = dotted.split(".")[-1]
    if dotted.startswith(("torch.nn.", "nn.")):
        return f"torch.nn layers are named by their class name alone: '{head}'"
    return (
        did_you_mean(dotted, torchvision_names())
        or "torchvision models and ops are named torchvision.models.NAME and torchvision.ops.NAME"
    )


def kind_of(value: Any) -> str:
    if isinstance(value, Val | torch.Tensor):
        return "a tensor"
    if isinstance(value, Handle):
        return f"module '{value.name}'"
    if isinstance(value, Parts):
        return "a parts(...) source"
    if isinstance(value, LayerRef):
        return f"layer {value.layer.name}"
    if isinstance(value, BlockRef):
        node = value.definition.node
        return f"{node.kind if node.kind != 'def' else 'function'} {node.name}"
    if isinstance(value, FunctionRef | Builtin):
        return f"function {value.function.name if isinstance(value, FunctionRef) else value.name}"
    if isinstance(value, MethodRef):
        return f"method .{value.name}"
    return type(value).__name__


def to_static(value: Any, span: Span, modules: bool = False) -> Any:
    """`value` known when the model is built; with `modules`, the modules it holds stay
    (what a loop runs over: `for i, layer in enumerate(self):`)."""
    if type(value) in STATIC_TYPES:
        return value
    if isinstance(value, Dim):
        return value.value
    if isinstance(value, list):
        return [to_static(v, span, modules) for v in value]
    if isinstance(value, tuple):
        return tuple(to_static(v, span, modules) for v in value)
    if isinstance(value, dict):
        return {k: to_static(v, span, modules) for k, v in value.items()}
    if modules and isinstance(value, Handle):
        return value
    if isinstance(value, Val):
        raise EvaluationError(
            "this needs a value known when the model is built, but it is a tensor computed in forward",
            span,
            hint="sizes are read with x.shape[i]",
        )
    if isinstance(value, ShapeView):
        return tuple(d.value for d in value.dims())
    if isinstance(value, Handle | FunctionRef | MethodRef | Builtin):
        raise EvaluationError(f"{kind_of(value)} is not a value", span)
    if isinstance(value, Training):
        raise EvaluationError(
            "'training' is known only when forward runs, not while the model is built",
            span,
            hint="branch on it with 'if training:' or 'a if training else b'",
        )
    return value  # constants, and layers/blocks passed as parameters (`block=BasicBlock`)


def node_arg(value: Any) -> Any:
    """`value` as an argument of an fx node: graph values become their nodes."""
    return _map_leaves(value, _node_leaf)


def meta_arg(value: Any) -> Any:
    """`value` as an argument of a meta call: graph values become their meta tensors."""
    return _map_leaves(value, _meta_leaf)


def _map_leaves(value: Any, leaf: Callable[[Any], Any]) -> Any:
    if isinstance(value, list):
        return [_map_leaves(v, leaf) for v in value]
    if isinstance(value, tuple):
        return tuple(_map_leaves(v, leaf) for v in value)
    if isinstance(value, dict):
        return {k: _map_leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(
            _map_leaves(value.start, leaf),
            _map_leaves(value.stop, leaf),
            _map_leaves(value.step, leaf),
        )
    return leaf(value)


def _node_leaf(value: Any) -> Any:
    if isinstance(value, Val):
        return value.node
    if isinstance(value, Dim):
        return value.node()
    if isinstance(value, ShapeView):
        return value.builder.node("call_function", getattr, (value.val.node, "shape"))
    return value


def _meta_leaf(value: Any) -> Any:
    if isinstance(value, Val):
        return value.meta
    if isinstance(value, Dim):
        return value.value
    if isinstance(value, ShapeView):
        return value.val.meta.shape
    return value


def vals_in(value: Any) -> list[Val]:
    """The tensor values in `value`, in order. Lists may alias themselves (`a = [a, a]`):
    past MAX_SEQUENCE nested items the walk is refused, not left to run for hours."""
    found: list[Val] = []
    stack = [value]
    walked = 0
    while stack:
        item = stack.pop()
        if isinstance(item, Val):
            found.append(item)
        elif isinstance(item, list | tuple | dict):
            items = list(item.values()) if isinstance(item, dict) else item
            walked += len(items)
            if walked > MAX_SEQUENCE:
                raise LimitError(
                    f"a value of over {MAX_SEQUENCE:,} nested items is over the limit "
                    "(MAX_SEQUENCE); a list that holds itself counts each time",
                    hint="build such values with range() or a loop, not by nesting a list in itself",
                )
            stack.extend(reversed(items))
    return found


def as_hashable(value: Any, span: Span) -> Any:
    try:
        hash(value)
    except TypeError:
        raise EvaluationError(f"{kind_of(value)} cannot be a dict key", span) from None
    return value
