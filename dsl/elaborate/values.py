"""The values an elaboration computes with, and the modules it is building.

Build-time values are plain Python (ints, tuples, strings) or the classes here: a graph
value `Val` (an fx node and its meta tensor), a symbolic size `Dim`, references to layers,
blocks and functions, and `Handle`, one module of the spec on its way to a resolved spec
(its meta instance answers shapes; it is built at its first application). `GraphBuilder`
writes a graph body as a `torch.fx` graph. `dsl.elaborate.resolve` evaluates and elaborates with them.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.fx as fx

from dsl import ir
from dsl.elaborate import limits
from dsl.errors import (
    DSLError,
    DuplicateNameError,
    EvaluationError,
    LimitError,
    Note,
    ShapeError,
    StructureError,
    did_you_mean,
)
from dsl.plan import (
    AliasSpec,
    ContainerSpec,
    GraphSpec,
    LeafSpec,
    ModuleSpec,
    PartSpec,
    SourceSpec,
    TensorSpec,
)
from dsl.source import Span
from dsl.syntax.loader import Definition
from dsl.torchlib import init, shapes
from dsl.torchlib.registry import OPERATORS, Function, Layer

if TYPE_CHECKING:
    from dsl.elaborate.resolve import Elaborator, Frame

MAX_LOOP = 100_000
MAX_SEQUENCE = 1_000_000
MAX_INT_BITS = 4096
STATIC_TYPES = frozenset(
    {int, float, bool, str, type(None)}
)  # build-time values that are already static

# ============================================================================ values


@dataclass(eq=False, slots=True)
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
                self._node._rename(self.name)
        return self._node

    def __repr__(self) -> str:
        return f"Dim({self.value})"


@dataclass(frozen=True)
class ShapeView:
    val: Val
    builder: GraphBuilder

    def dims(self) -> list[Dim]:
        return [self.builder.dim(self.val, i) for i in range(self.val.meta.dim())]


class Parts:
    """A model whose submodules a body takes as its own members."""

    def __init__(self, key: str, spec: ModuleSpec, meta: torch.nn.Module, span: Span) -> None:
        self.key = key
        self.spec = spec
        self.meta = meta
        self.span = span

    def part(self, path: str, span: Span) -> Handle:
        try:
            self.meta.get_submodule(path)
        except AttributeError:
            names = [n for n, _ in self.meta.named_modules() if n]
            raise EvaluationError(
                f"the source has no part '{path}'", span, hint=did_you_mean(path, names)
            ) from None
        handle = Handle("part", span)
        handle.source = self
        handle.path = path
        return handle


@dataclass(frozen=True)
class LayerRef:
    layer: Layer


@dataclass(frozen=True)
class BlockRef:
    definition: Definition


@dataclass(frozen=True)
class FunctionRef:
    function: Function


@dataclass(frozen=True)
class MethodRef:
    val: Val
    name: str


@dataclass(frozen=True)
class Builtin:
    name: str
    fn: Callable[..., Any]


def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_LOOP:
        raise LimitError(f"range of {len(result)} items is over the limit of {MAX_LOOP}")
    return result


BUILTINS: dict[str, Callable[..., Any]] = {
    "range": _safe_range,
    "len": len,
    "min": min,
    "max": max,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "abs": abs,
    "round": round,
    "list": list,
    "tuple": tuple,
    "zip": lambda *a: list(zip(*a)),
    "enumerate": lambda a, start=0: list(enumerate(a, start)),
    "sum": sum,
    "calculate_gain": torch.nn.init.calculate_gain,
    "parts": None,  # handled by the evaluator: it takes a module, not a value
    "weights": None,  # a statement of a net's body (see Elaborator.add_weights)
}


# ============================================================================ modules being built


class Handle:
    """A module named in a body. It is built on its first application, when the shapes
    it is applied to are known (to infer `in_channels` and the like)."""

    __slots__ = (
        "_first",
        "_runner",
        "block",
        "call",
        "children",
        "container",
        "frame",
        "kind",
        "layer",
        "name",
        "options",
        "path",
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
        frame: Frame | None = None,
    ) -> None:
        self.kind = kind  # "layer", "block", "container"
        self.span = span
        self.layer = layer
        self.block = block
        self.container = container
        self.call = call
        self.frame = frame  # the scope its arguments are evaluated in
        self.name: str | None = None  # attribute path in the enclosing graph module
        self.children: list[tuple[str, Handle]] = []
        self.options: dict[str, Any] = {}
        self.spec: ModuleSpec | None = None
        self._runner: Callable[[list[Any]], Any] | None = None
        self._first: tuple[list[tuple], Any, list[Any], Span] | None = (
            None  # signatures, output, inputs, where
        )
        self.source: Parts | None = None  # for kind "part": the parts(...) it comes from
        self.path = ""

    @property
    def title(self) -> str:
        if self.layer:
            return self.layer.name
        if self.block:
            return self.block.node.name
        return self.container.kind if self.container else "module"

    def attach(self, name: str) -> None:
        self.name = name
        for child_name, child in self.children:
            child.attach(f"{name}.{child_name}")

    def child(self, key: Any, span: Span) -> Handle:
        names = [n for n, _ in self.children]
        key_text = str(key)
        if (
            isinstance(key, int)
            and not isinstance(key, bool)
            and self.kind == "container"
            and self.container.kind != "ModuleDict"
        ):
            if -len(names) <= key < len(names):
                return self.children[key][1]
            raise EvaluationError(
                f"{self.name} has {len(names)} children; index {key} is out of range", span
            )
        for name, child in self.children:
            if name == key_text:
                return child
        raise EvaluationError(
            f"{self.name} has no child '{key_text}'",
            span,
            hint=did_you_mean(key_text, names) or f"its children are: {', '.join(names)}",
        )

    def call_meta(
        self, inputs: list[Any], sources: list[Span | None], span: Span, elab: Elaborator
    ) -> Any:
        """The output meta for these input metas, building the module the first time."""
        if self._runner is None:
            out = self._build(inputs, sources, span, elab)
            if self.kind == "block":
                self._first = ([meta_signature(m) for m in inputs], out, inputs, span)
            return out
        if self.kind == "block" and self._first is not None:
            if [meta_signature(m) for m in inputs] == self._first[0]:
                return self._first[1]
            described = lambda metas: ", ".join(shapes.describe(m, elab.symbols) for m in metas)  # noqa: E731
            raise ShapeError(
                f"block '{self.name}' ({self.title}) was built for inputs of shape {described(self._first[2])} "
                f"and is applied again to {described(inputs)}",
                span,
                notes=[
                    Note(
                        f"it was first applied here, to {described(self._first[2])}", self._first[3]
                    )
                ],
                hint="a shared block must see the same input shapes each time; define a second block for the other shape",
            )
        return self._runner(inputs, sources, span)

    def _build(
        self, inputs: list[Any], sources: list[Span | None], span: Span, elab: Elaborator
    ) -> Any:
        if self.kind == "layer":
            return self._build_layer(inputs, sources, span, elab)
        if self.kind == "part":
            module = self.source.meta.get_submodule(self.path)
            what = f"{self.name} (part {self.path})"

            def runner(metas: list[Any], srcs: list[Span | None], at: Span) -> Any:
                return shapes.run(module, metas, {}, what, at, list(zip(metas, srcs)), elab.symbols)

            self._runner = runner
            return runner(inputs, sources, span)
        if self.kind == "block":
            spec, out = elab.instantiate_block(self, inputs, sources, span)
            self.spec = spec
            self._runner = lambda *_: out
            return out
        return self._build_container(inputs, sources, span, elab)

    def _build_layer(
        self, inputs: list[Any], sources: list[Span | None], span: Span, elab: Elaborator
    ) -> Any:
        first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        bound = self.bind(first, elab)
        if first is not None:
            shapes.check_input_sizes(
                self.layer,
                bound,
                first,
                self.span,
                sources[0] if sources else None,
                elab.symbols,
                span,
            )
        module, numel = elab.meta_module(self.layer, bound, self.span)
        self.spec = LeafSpec(self.layer, bound, self.span, numel, self._inferred(bound))
        what = f"{self.name} ({self.layer.name})"

        def runner(metas: list[Any], srcs: list[Span | None], at: Span) -> Any:
            key = (id(module), tuple(meta_signature(m) for m in metas))
            if key not in elab.outputs:
                elab.outputs[key] = shapes.run(
                    module, metas, {}, what, at, list(zip(metas, srcs)), elab.symbols
                )
            return elab.outputs[key]

        self._runner = runner
        return runner(inputs, sources, span)

    def _inferred(self, bound: dict[str, Any]) -> tuple[str, ...]:
        """Which of `bound` were read from the input: the arguments the call left out
        (bind_layer_args fills the first required input-size parameters not written)."""
        count = len(bound) - len(self.call.args) - len(self.call.kwargs)
        if count <= 0:
            return ()
        return self.layer.binding(tuple(self.call.kwargs), len(self.call.args)).inferred[:count]

    def bind(self, input_meta: torch.Tensor | None, elab: Elaborator) -> dict[str, Any]:
        assert self.layer is not None and self.call is not None and self.frame is not None
        extra = {}
        if input_meta is not None:
            for name in self.layer.input_size_params:
                dim = shapes.INPUT_SIZE_PARAMS[name]
                if input_meta.dim() > (dim if dim >= 0 else -dim - 1):
                    extra[name] = int(input_meta.shape[dim])
        frame = self.frame.child_scope(extra) if extra else self.frame
        args = [frame.static(a) for a in self.call.args]
        kwargs = {k: frame.static(v) for k, v in self.call.kwargs.items()}
        return shapes.bind_layer_args(
            self.layer, args, kwargs, input_meta, self.span, elab.arg_spans(self.call)
        )

    def _build_container(
        self, inputs: list[Any], sources: list[Span | None], span: Span, elab: Elaborator
    ) -> Any:
        kind = self.container.kind
        if kind != "Sequential":
            raise StructureError(
                f"a {kind} cannot be applied inside a Sequential: torch's {kind} has no forward",
                span,
                hint="apply it in a graph body (its run option decides how), or use a Sequential",
            )

        children = self.children  # the runner is kept on this handle: it must not refer back to it

        def runner(metas: list[Any], srcs: list[Span | None], at: Span) -> Any:
            out, src = metas, srcs
            for _, child in children:
                out = [child.call_meta(out, src, child.span, elab)]
                src = [child.span]
            return out[0]

        self._runner = runner
        return runner(inputs, sources, span)

    def finish(self, elab: Elaborator) -> ModuleSpec:
        """The resolved spec; a module never applied is built without an input, if it can be."""
        if self.kind == "container":
            return ContainerSpec(
                self.container.kind, [(n, c.finish(elab)) for n, c in self.children], self.span
            )
        if self.kind == "part":
            return PartSpec(self.source.key, self.path, self.span)
        if self.spec is None:
            if self.kind == "block":
                raise StructureError(
                    f"block '{self.name}' ({self.title}) is defined but never applied, so its input shapes are unknown",
                    self.span,
                    hint="apply it to a value, or remove it",
                )
            bound = self.bind(None, elab)
            module = shapes.construct_on_meta(self.layer, bound, self.span)
            self.spec = LeafSpec(self.layer, bound, self.span, limits.module_numel(module))
        return self.spec


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


# ============================================================================ graph bodies


class GraphBuilder:
    """One graph body being elaborated: its fx graph, its members in declaration order."""

    def __init__(self, class_name: str, span: Span) -> None:
        self.class_name = class_name
        self.span = span
        self.graph = fx.Graph()
        self.members: list[tuple[str, Handle | TensorSpec | AliasSpec | SourceSpec]] = []
        self.member_spans: dict[str, Span] = {}
        self.returned: Any = None
        self.has_return = False
        self.init_rules: list[init.Rule] = []
        self._dims: dict[tuple[int, int], Dim] = {}

    def add_member(
        self, name: str, member: Handle | TensorSpec | AliasSpec | SourceSpec, span: Span
    ) -> None:
        if name in self.member_spans:
            raise DuplicateNameError(
                f"'{name}' is already a member of {self.class_name}",
                span,
                notes=[Note("first defined here", self.member_spans[name])],
                hint=f"give this one another name; to apply the same '{name}' again (shared weights), write '{name}(...)' alone",
            )
        if not ir.IDENTIFIER.fullmatch(name):
            raise StructureError(f"'{name}' cannot name a module attribute", span)
        self.member_spans[name] = span
        self.members.append((name, member))
        if isinstance(member, Handle):
            member.attach(name)

    def node(self, op: str, target: Any, args: tuple, kwargs: dict | None = None) -> fx.Node:
        return _new_node(self.graph, op, target, args, kwargs)

    def dim(self, val: Val, index: int) -> Dim:
        key = (id(val.node), index)
        if key not in self._dims:
            size = int(val.meta.shape[index])
            # Made from the graph, not this builder, which keeps the Dim (no reference cycle).
            self._dims[key] = Dim(
                size,
                functools.partial(_new_node, self.graph, "call_method", "size", (val.node, index)),
            )
        return self._dims[key]

    def finish(self, elab: Elaborator) -> GraphSpec:
        if not self.has_return:
            raise StructureError(
                f"{self.class_name} has no return",
                self.span,
                hint="end the body with 'return <value>'",
            )
        members: list[tuple[str, ModuleSpec | TensorSpec | AliasSpec | SourceSpec]] = []
        for name, member in self.members:
            members.append((name, member.finish(elab) if isinstance(member, Handle) else member))
        # The handles' frames refer back to this builder; letting go of them lets reference
        # counting free the elaboration, instead of the cyclic collector (slower, and later).
        self.members = []
        return GraphSpec(self.class_name, members, self.graph, self.span, self.init_rules)


def _new_node(
    graph: fx.Graph, op: str, target: Any, args: tuple, kwargs: dict | None = None
) -> fx.Node:
    # fx walks a new node's arguments for symbolic ints (a pytree walk per node); ours
    # never hold any, so the node is made bare and its arguments are set after.
    node = graph.create_node(op, target, name=_node_name(graph, target))
    if args:
        node.args = args
    if kwargs:
        node.kwargs = kwargs
    return node


# The name fx gives a node, before it is made unique, depends on the target alone (`conv1`,
# `add`, `flatten`) and costs a regex each time: worked out once per target. Bounded.
_NODE_NAMES: dict[Any, str] = {}
_MAX_NODE_NAMES = 4096


def _node_name(graph: fx.Graph, target: Any) -> str:
    try:
        name = _NODE_NAMES.get(target)
    except TypeError:  # an unhashable callable
        return graph._target_to_str(target)
    if name is None:
        if len(_NODE_NAMES) >= _MAX_NODE_NAMES:
            _NODE_NAMES.clear()
        name = _NODE_NAMES[target] = graph._target_to_str(target)
    return name


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
    if isinstance(value, Val):
        return "a tensor"
    if isinstance(value, Handle):
        return f"module '{value.name}'"
    if isinstance(value, LayerRef):
        return f"layer {value.layer.name}"
    return type(value).__name__


def to_static(value: Any, span: Span) -> Any:
    if type(value) in STATIC_TYPES:
        return value
    if isinstance(value, Dim):
        return value.value
    if isinstance(value, list):
        return [to_static(v, span) for v in value]
    if isinstance(value, tuple):
        return tuple(to_static(v, span) for v in value)
    if isinstance(value, dict):
        return {k: to_static(v, span) for k, v in value.items()}
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
    if isinstance(value, Val):
        return [value]
    if isinstance(value, list | tuple):
        return [v for item in value for v in vals_in(item)]
    if isinstance(value, dict):
        return [v for item in value.values() for v in vals_in(item)]
    return []


def as_hashable(value: Any, span: Span) -> Any:
    try:
        hash(value)
    except TypeError:
        raise EvaluationError(f"{kind_of(value)} cannot be a dict key", span) from None
    return value


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip
_NUMBERS = frozenset({int, float, bool})


def python_op(op: str, left: Any, right: Any, span: Span) -> Any:
    _guard_size(op, left, right, span)
    try:
        if op in OPERATORS:
            return OPERATORS[op](left, right)
        return _COMPARISONS[op](left, right)
    except ZeroDivisionError:
        raise EvaluationError("division by zero", span) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise EvaluationError(
            f"cannot compute {kind_of(left)} {op} {kind_of(right)}: {exc}", span
        ) from None


def _guard_size(op: str, left: Any, right: Any, span: Span) -> None:
    """Build-time arithmetic may not make numbers or sequences that eat the machine (also
    when an operation is repeated in a loop: `n = n * n`, `s = s + s`)."""
    if (
        op == "**"
        and isinstance(left, int)
        and isinstance(right, int)
        and abs(left) > 1
        and right * max(abs(left).bit_length(), 1) > MAX_INT_BITS
    ):
        raise LimitError(f"{left} ** {right} is too large to compute", span)
    if (
        op == "*"
        and isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > MAX_INT_BITS
    ):
        raise LimitError(
            f"a product of {left.bit_length()}-bit and {right.bit_length()}-bit integers is too large to compute",
            span,
        )
    if type(left) in _NUMBERS and type(right) in _NUMBERS:
        return  # what follows is about strings and sequences
    if op == "*":
        for seq, count in ((left, right), (right, left)):
            if (
                isinstance(seq, str | list | tuple)
                and isinstance(count, int)
                and count > 0
                and _expanded_size(seq, MAX_SEQUENCE) * count > MAX_SEQUENCE
            ):
                raise LimitError(
                    f"repeating a {type(seq).__name__} {count} times is over the limit of {MAX_SEQUENCE} items",
                    span,
                )
    joined = (
        op == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
    )
    if (
        joined
        and _expanded_size(left, MAX_SEQUENCE) + _expanded_size(right, MAX_SEQUENCE) > MAX_SEQUENCE
    ):
        raise LimitError(
            f"joining these {type(left).__name__}s is over the limit of {MAX_SEQUENCE} items", span
        )
    if op == "%" and isinstance(left, str):
        raise EvaluationError(
            "'%' formatting of strings is not supported",
            span,
            hint="build names with templates instead: name{i}",
        )


def _expanded_size(value: Any, limit: int) -> int:
    """How many items `value` holds, nested sequences counted in full (stops past `limit`):
    `[s] * n` is small in memory but `sum(..., [])` or `str()` would expand it."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, list | tuple | dict):
            total += len(item)
            stack.extend(item.values() if isinstance(item, dict) else item)
    return total


def call_builtin(func: Builtin, args: list, kwargs: dict, span: Span) -> Any:
    try:
        return func.fn(
            *[to_static(a, span) for a in args],
            **{k: to_static(v, span) for k, v in kwargs.items()},
        )
    except DSLError as exc:
        raise exc.with_span(span) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise EvaluationError(f"{func.name}() failed: {exc}", span) from None
