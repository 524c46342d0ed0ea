"""IR -> resolved module tree.

Parameters are bound, expressions evaluated by our own evaluator (never `eval`), `if`/`for`
and blocks expanded, and every graph value carries a meta tensor, so that input sizes can
be inferred and `x.shape[1]` read while the network is being elaborated (the way Keras'
functional API builds a layer on its first call). Shapes come from `dsl.torchlib.shapes`; this pass
decides every module's constructor arguments and writes each graph body as a `torch.fx`
graph. The compiler only instantiates what this pass decided, in declaration order.
The values it computes with and the modules it is building live in `dsl.elaborate.values`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dsl import ir
from dsl.elaborate.evaluate import Frame
from dsl.elaborate.values import (
    BUILTINS,
    MAX_LOOP,
    BlockRef,
    Builtin,
    Dim,
    FunctionRef,
    GraphBuilder,
    Handle,
    LayerRef,
    MethodRef,
    Parts,
    ShapeView,
    Val,
    frozen_key,
    kind_of,
    meta_arg,
    meta_signature,
    node_arg,
    shared_meta_module,
    to_static,
    vals_in,
)
from dsl.errors import (
    ArgumentError,
    ArityError,
    DSLError,
    DuplicateNameError,
    EvaluationError,
    InitError,
    LimitError,
    Note,
    RecursionError_,
    ShapeError,
    StructureError,
    UndefinedValueError,
    UnknownKeywordError,
    did_you_mean,
    keyword_span,
)
from dsl.pauses import gc_paused
from dsl.plan import (
    AliasSpec,
    LeafSpec,
    ModuleSpec,
    Resolved,
    SourceSpec,
    TensorSpec,
    WeightsSpec,
)
from dsl.source import Span
from dsl.syntax.loader import Definition, Library, Unit, load
from dsl.syntax.parse_net import parse_expression
from dsl.torchlib import init, shapes
from dsl.torchlib.init import InitCall
from dsl.torchlib.registry import REGISTRY, TENSOR_METHODS, Layer, refusal_hint

MAX_BLOCK_DEPTH = 48
MAX_STEPS = 2_000_000

# ============================================================================ the elaborator


class Elaborator:
    def __init__(self, library: Library, symbols: shapes.Symbols) -> None:
        self.library = library
        self.symbols = symbols
        self.stack: list[tuple[str, Span]] = []
        self.steps = 0
        self._sources = 0
        self._blocks: dict[tuple, tuple[ModuleSpec, Any]] = {}
        self._meta_modules: dict[tuple, tuple[torch.nn.Module, tuple[int, int]]] = {}
        self.outputs: dict[tuple, Any] = {}  # (meta module, input signatures) -> output meta
        self.weights: list[WeightsSpec] = []
        self._templates: dict[str, list[tuple[str, ir.ExprNode]]] = {}
        self._names: dict[tuple[int, str], Any] = {}  # (unit, name) -> what lookup found
        self._arg_spans: dict[int, dict[int | str, Span]] = {}  # by call

    def meta_module(
        self, layer: Layer, bound: dict[str, Any], span: Span
    ) -> tuple[torch.nn.Module, tuple[int, int]]:
        """One meta instance per distinct layer and arguments, with its parameter and
        buffer element counts: shapes and limits need no more."""
        key = (layer.name, frozen_key(bound))
        found = self._meta_modules.get(key)
        if found is None:
            found = self._meta_modules[key] = shared_meta_module(layer, key[1], bound, span)
        return found

    # -- names
    def lookup(self, name: str, unit: Unit) -> Any:
        """What a name not in scope refers to in `unit` (None if nothing); a block body
        looks up the same few names each time it is elaborated."""
        key = (id(unit), name)
        if key in self._names:
            return self._names[key]
        found = self._names[key] = self._find(name, unit)
        return found

    def _find(self, name: str, unit: Unit) -> Any:
        if name in unit.names:
            return BlockRef(unit.names[name])
        layer = REGISTRY.layer(name)
        if layer is not None:
            return LayerRef(layer)
        if name in BUILTINS:
            return Builtin(name, BUILTINS[name])
        function = REGISTRY.function(name)
        if function is not None:
            return FunctionRef(function)
        return None

    def expand_name(self, text: str, frame: Frame, span: Span) -> str:
        """Fill a templated name's `{expr}` parts: `down{i + 1}` -> `down2`."""
        if "{" not in text:
            return text
        if text not in self._templates:
            parts = _split_template(text)
            self._templates[text] = [
                (lit, parse_expression(src, span) if src else None) for lit, src in parts
            ]
        out = []
        for literal, expr in self._templates[text]:
            out.append(literal)
            if expr is not None:
                out.append(str(frame.static(expr)))
        return "".join(out)

    def arg_spans(self, call: ir.Call) -> dict[int | str, Span]:
        """Where each argument of a call is written (positional index or keyword)."""
        found = self._arg_spans.get(id(call))
        if found is None:
            found = {i: a.span for i, a in enumerate(call.args)}
            found.update({k: v.span for k, v in call.kwargs.items()})
            self._arg_spans[id(call)] = found
        return found

    # -- steps
    def step(self, span: Span) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise LimitError(
                f"elaboration took more than {MAX_STEPS} steps",
                span,
                hint="a loop or a recursive block is far too large",
            )

    # -- graph operations
    def graph_call(
        self,
        builder: GraphBuilder | None,
        fn: Callable[..., Any],
        args: tuple,
        kwargs: dict,
        what: str,
        span: Span,
    ) -> Any:
        if builder is None:
            raise StructureError(
                f"{what} computes on tensors, which only a graph body can do", span
            )
        metas = meta_arg(args), meta_arg(kwargs)
        inputs = [(v.meta, v.span) for v in vals_in((args, kwargs))]
        out = shapes.run(fn, metas[0], metas[1], what, span, inputs, self.symbols)
        node = builder.node("call_function", fn, node_arg(args), node_arg(kwargs))
        return Val(node, out, span)

    def method_call(
        self, builder: GraphBuilder, ref: MethodRef, args: list, kwargs: dict, span: Span
    ) -> Any:
        if ref.name == "size" and not kwargs and len(args) == 1:
            return builder.dim(ref.val, to_static(args[0], span))
        meta_fn = getattr(ref.val.meta, ref.name)
        inputs = [(ref.val.meta, ref.val.span)] + [
            (v.meta, v.span) for v in vals_in((args, kwargs))
        ]
        out = shapes.run(
            meta_fn,
            meta_arg(tuple(args)),
            meta_arg(kwargs),
            f".{ref.name}()",
            span,
            inputs,
            self.symbols,
        )
        node = builder.node(
            "call_method", ref.name, (ref.val.node, *node_arg(tuple(args))), node_arg(kwargs)
        )
        return Val(node, out, span)

    def attribute(self, value: Any, attr: str, builder: GraphBuilder | None, span: Span) -> Any:
        if attr.startswith("_"):
            raise EvaluationError(
                f"'{attr}' cannot be read: names starting with '_' are private", span
            )
        if isinstance(value, Val):
            if attr == "shape":
                return ShapeView(value, builder)
            if attr in ("ndim", "dtype"):
                return getattr(value.meta, attr)
            if attr in ("T", "mT", "device"):
                node = builder.node("call_function", getattr, (value.node, attr))
                return Val(node, getattr(value.meta, attr), span)
            if attr in TENSOR_METHODS:
                return MethodRef(value, attr)
            raise EvaluationError(
                f"tensors have no attribute '{attr}' here",
                span,
                hint=refusal_hint(attr)
                or did_you_mean(attr, sorted(TENSOR_METHODS | {"shape", "T"})),
            )
        if isinstance(value, Parts):
            return value.part(attr, span)
        if (
            isinstance(value, Handle)
            and value.kind == "part"
            and isinstance(
                getattr(value.source.meta.get_submodule(value.path), attr, None), torch.nn.Module
            )
        ):
            return value.source.part(f"{value.path}.{attr}", span)
        if isinstance(value, Handle):
            return self._module_tensor(value, attr, builder, span)
        if isinstance(value, ShapeView):
            raise EvaluationError(
                f"a shape has no attribute '{attr}'", span, hint="index it: x.shape[1]"
            )
        raise EvaluationError(f"{kind_of(value)} has no attribute '{attr}'", span)

    def _module_tensor(self, handle: Handle, attr: str, builder: GraphBuilder, span: Span) -> Val:
        """`wte.weight`: a parameter of a child module, read in forward (tied weights)."""
        if handle.kind == "container" and any(n == attr for n, _ in handle.children):
            raise EvaluationError(f'index containers with brackets: {handle.name}["{attr}"]', span)
        if handle.spec is None and handle.kind == "layer":
            handle.finish(self)
        spec = handle.spec
        if not isinstance(spec, LeafSpec):
            raise EvaluationError(
                f"only a layer's own tensors can be read ({handle.name} is a {handle.title})", span
            )
        module = shapes.construct_on_meta(spec.layer, spec.kwargs, span)
        tensor = getattr(module, attr, None)
        if not isinstance(tensor, torch.Tensor):
            names = [n for n, _ in module.named_parameters(recurse=False)] + [
                n for n, _ in module.named_buffers(recurse=False)
            ]
            raise EvaluationError(
                f"{handle.name} ({spec.layer.name}) has no tensor '{attr}'",
                span,
                hint=did_you_mean(attr, names) or f"it has: {', '.join(names)}",
            )
        node = builder.node("get_attr", f"{handle.name}.{attr}", ())
        return Val(node, torch.empty(tensor.shape, dtype=tensor.dtype, device="meta"), span)

    def apply(
        self, builder: GraphBuilder | None, handle: Handle, args: list, kwargs: dict, span: Span
    ) -> Any:
        if builder is None:
            raise StructureError("modules are applied to values only in graph bodies", span)
        if handle.name is None:
            raise StructureError(
                f"this {handle.title} must be named before it is applied",
                span,
                hint="write 'y = name(x): Layer(...)', or 'name = Layer(...)' then 'name(x)'",
            )
        if kwargs:
            raise ArgumentError("modules are applied to positional inputs only", span)
        for arg in args:
            if not isinstance(arg, Val):
                raise ArgumentError(
                    f"{handle.name} is applied to {kind_of(arg)}; modules take tensors", span
                )
        if handle.kind == "container" and handle.container.kind != "Sequential":
            return self._apply_collection(builder, handle, args, span)
        out = handle.call_meta([a.meta for a in args], [a.span for a in args], span, self)
        node = builder.node("call_module", handle.name, tuple(a.node for a in args))
        return Val(node, out, span)

    def _apply_collection(
        self, builder: GraphBuilder, handle: Handle, args: list[Val], span: Span
    ) -> Any:
        """ModuleList/ModuleDict: unrolled in the generated forward, as their run option says."""
        run = handle.options.get(
            "run", "chain" if handle.container.kind == "ModuleList" else "parallel"
        )
        if run == "chain":
            out = args
            for _, child in handle.children:
                out = [self.apply(builder, child, out, {}, span)]
            return out[0]
        outs = {name: self.apply(builder, child, args, {}, span) for name, child in handle.children}
        merge = handle.options.get("merge")
        if merge is None:
            return outs if handle.container.kind == "ModuleDict" else tuple(outs.values())
        values = list(outs.values())
        if merge == "add":
            result = values[0]
            for value in values[1:]:
                result = self.graph_call(builder, operator.add, (result, value), {}, "add", span)
            return result
        fn = {"cat": torch.cat, "stack": torch.stack}[merge]
        return self.graph_call(
            builder, fn, (values,), {"dim": handle.options.get("dim", 1)}, merge, span
        )

    def add_weights(self, call: ir.Call, frame: Frame) -> None:
        """`weights("file.pt", prefix=..., rename=..., strict=..., allow_missing=[...])`."""
        if self.stack:
            raise StructureError(
                "weights() belongs to the net being built, not to a block", call.span
            )
        args = [frame.static(a) for a in call.args]
        options = {k: frame.static(v) for k, v in call.kwargs.items()}
        allowed = {"prefix", "rename", "strict", "allow_missing"}
        for key in options:
            if key not in allowed:
                raise UnknownKeywordError(
                    f"weights() has no option '{key}'",
                    keyword_span(key, call.kwargs[key].span),
                    hint=did_you_mean(key, allowed) or f"options: {', '.join(sorted(allowed))}",
                )
        if len(args) != 1 or not isinstance(args[0], str):
            raise ArgumentError(
                'weights() takes a file path first, e.g. weights("resnet18.pth")', call.span
            )
        base = frame.unit.path.parent if frame.unit.path else self.library.root
        path = (base / args[0]).resolve()
        if not path.is_relative_to(self.library.root):
            raise ArgumentError(
                f"'{args[0]}' lies outside the spec's directory",
                call.args[0].span,
                hint="weights files are read from under the spec's own directory",
            )
        self.weights.append(WeightsSpec(path, options, call.span))

    def parts(self, args: list, kwargs: dict, span: Span) -> Parts:
        if (
            kwargs
            or len(args) != 1
            or not isinstance(args[0], Handle)
            or args[0].kind != "layer"
            or args[0].name is not None
        ):
            raise ArgumentError(
                "parts() takes one new layer, e.g. parts(torchvision.models.resnet18())", span
            )
        spec = args[0].finish(self)
        meta = shapes.construct_on_meta(spec.layer, spec.kwargs, span)
        self._sources += 1
        return Parts(f"source{self._sources}", spec, meta, span)

    # -- containers
    def container_handle(self, node: ir.Container, frame: Frame) -> Handle:
        handle = Handle("container", node.span, container=node)
        handle.options = {k: frame.static(v) for k, v in node.options.items()}
        _check_container_options(node, handle.options)
        ContainerBody(self, handle, frame).run(node.body)
        return handle

    # -- blocks
    def instantiate_block(
        self, handle: Handle, inputs: list[Any], sources: list[Span | None], span: Span
    ) -> tuple[ModuleSpec, Any]:
        definition = handle.block
        node = definition.node
        if len(self.stack) >= MAX_BLOCK_DEPTH or (
            any(name == node.name for name, _ in self.stack[-MAX_BLOCK_DEPTH:])
            and len(self.stack) > MAX_BLOCK_DEPTH // 2
        ):
            chain = " -> ".join(name for name, _ in self.stack[-6:])
            raise RecursionError_(
                f"block '{node.name}' nests without end ({chain} -> {node.name})",
                handle.span,
                hint=f"a block may contain itself only under an 'if' that stops it; blocks nest at most {MAX_BLOCK_DEPTH} deep",
            )
        self.stack.append((node.name, handle.span))
        try:
            scope = self.bind_params(node, handle.call, handle.frame, definition.unit)
            # A block's elaboration depends only on its parameters and input shapes, so
            # identical instances (a ResNet stage's blocks, a GPT's layers) share one result.
            key = (id(node), frozen_key(scope), tuple(meta_signature(m) for m in inputs))
            if key not in self._blocks:
                self._blocks[key] = self._elaborate_block(
                    definition, handle, scope, inputs, sources, span
                )
            return self._blocks[key]
        finally:
            self.stack.pop()

    def _elaborate_block(
        self,
        definition: Definition,
        handle: Handle,
        scope: dict[str, Any],
        inputs: list[Any],
        sources: list[Span | None],
        span: Span,
    ) -> tuple[ModuleSpec, Any]:
        node = definition.node
        frame = Frame(self, definition.unit, None, scope)
        if isinstance(node.body, ir.Container):
            inner = self.container_handle(node.body, frame)
            inner.attach(handle.name)
            out = inner.call_meta(inputs, sources, span, self)
            return inner.finish(self), out
        builder = GraphBuilder(node.name, node.span)
        frame.builder = builder
        GraphBody(self, builder, frame).run_block(node, inputs, sources, span)
        return builder.finish(self), meta_arg(builder.returned)

    def bind_params(
        self,
        node: ir.NetDef | ir.BlockDef,
        call: ir.Call | None,
        caller: Frame | None,
        unit: Unit,
        overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Block/net parameters from a call (or overrides), with defaults evaluated in order."""
        params = node.params
        names = [p.name for p in params]
        given: dict[str, Any] = {}
        if call is not None:
            if len(call.args) > len(params):
                raise ArityError(
                    f"{node.name} takes {len(params)} argument{'s' if len(params) != 1 else ''}, {len(call.args)} were given",
                    call.args[len(params)].span or call.span,
                    notes=[Note(f"{node.name} is defined here", node.span)],
                )
            for param, arg in zip(params, call.args):
                given[param.name] = caller.static(arg)
            for key, value in call.kwargs.items():
                if key not in names:
                    raise UnknownKeywordError(
                        f"{node.name} has no parameter '{key}'",
                        keyword_span(key, value.span),
                        hint=did_you_mean(key, names)
                        or f"its parameters are: {', '.join(names) or 'none'}",
                    )
                if key in given:
                    raise ArgumentError(f"{node.name} gets '{key}' twice", value.span)
                given[key] = caller.static(value)
        for key, value in (overrides or {}).items():
            if key not in names:
                raise UnknownKeywordError(
                    f"{node.name} has no parameter '{key}'",
                    node.span,
                    hint=did_you_mean(key, names)
                    or f"its parameters are: {', '.join(names) or 'none'}",
                )
            given[key] = value
        scope: dict[str, Any] = {}
        frame = Frame(self, unit, None, scope)
        for param in params:
            if param.name in given:
                scope[param.name] = given[param.name]
            elif param.default is not None:
                scope[param.name] = frame.static(param.default)
            else:
                raise ArityError(
                    f"{node.name} needs a value for '{param.name}'",
                    call.span if call else node.span,
                    notes=[Note(f"{node.name} is defined here", node.span)],
                )
        return scope


def is_weights_call(expr: Any) -> bool:
    return (
        isinstance(expr, ir.Call) and isinstance(expr.func, ir.Name) and expr.func.id == "weights"
    )


def _split_template(text: str) -> list[tuple[str, str]]:
    """`down{i + 1}x` -> [("down", "i + 1"), ("x", "")]."""
    parts = []
    rest = text
    while "{" in rest:
        literal, _, tail = rest.partition("{")
        source, _, rest = tail.partition("}")
        parts.append((literal, source))
    parts.append((rest, ""))
    return parts


_RUN_MODES = {"ModuleList": ("chain", "parallel"), "ModuleDict": ("parallel", "chain")}
_MERGES = ("cat", "stack", "add")


def _check_container_options(node: ir.Container, options: dict[str, Any]) -> None:
    allowed = {
        "Sequential": set(),
        "ModuleList": {"run", "merge", "dim"},
        "ModuleDict": {"run", "merge", "dim"},
    }[node.kind]
    for key, value in options.items():
        if key not in allowed:
            raise UnknownKeywordError(
                f"{node.kind} has no option '{key}'",
                node.options[key].span,
                hint=f"its options are: {', '.join(sorted(allowed)) or 'none'}",
            )
        if key == "run" and value not in _RUN_MODES[node.kind]:
            raise ArgumentError(
                f"run must be one of {', '.join(map(repr, _RUN_MODES[node.kind]))}, not {value!r}",
                node.options[key].span,
            )
        if key == "merge" and value not in _MERGES:
            raise ArgumentError(
                f"merge must be one of {', '.join(map(repr, _MERGES))}, not {value!r}",
                node.options[key].span,
                hint=did_you_mean(str(value), _MERGES),
            )


# ============================================================================ statements


class _Body:
    """Statements common to every body: build-time `if` and `for`."""

    def __init__(self, elab: Elaborator, frame: Frame) -> None:
        self.elab = elab
        self.frame = frame

    def run(self, stmts: list) -> None:
        for stmt in stmts:
            self.elab.step(stmt.span)
            try:
                self.statement(stmt)
            except DSLError as exc:
                raise exc.with_span(stmt.span) from None

    def statement(self, stmt: Any) -> None:
        if isinstance(stmt, ir.If):
            self.run(stmt.then if self.frame.condition(stmt.if_) else stmt.else_)
        elif isinstance(stmt, ir.For):
            items = self.frame.static(stmt.in_)
            try:
                iterator = list(items)
            except TypeError:
                count = stmt.in_.id if isinstance(stmt.in_, ir.Name) else items
                hint = (
                    f"to repeat {items} times, write 'for {stmt.for_} in range({count}):'"
                    if isinstance(items, int) and not isinstance(items, bool)
                    else None
                )
                raise EvaluationError(
                    f"cannot loop over {kind_of(items)}", stmt.in_.span, hint=hint
                ) from None
            if len(iterator) > MAX_LOOP:
                raise LimitError(
                    f"the loop runs {len(iterator)} times; the limit is {MAX_LOOP}", stmt.in_.span
                )
            for item in iterator:
                self.elab.step(stmt.span)  # an empty body still costs its iterations
                self.frame.scope[stmt.for_] = item
                self.run(stmt.body)
        else:
            self.other(stmt)

    def other(self, stmt: Any) -> None:
        raise NotImplementedError


class ContainerBody(_Body):
    """A Sequential/ModuleList/ModuleDict body: each statement adds a child."""

    def __init__(self, elab: Elaborator, handle: Handle, frame: Frame) -> None:
        super().__init__(elab, frame)
        self.handle = handle
        self.named: bool | None = None
        self.keys: set[str] = set()

    def other(self, stmt: Any) -> None:
        kind = self.handle.container.kind
        if isinstance(stmt, ir.Layer):
            self._add(None, self.frame.eval(stmt.layer), stmt)
        elif isinstance(stmt, ir.Let) and stmt.define is None:
            if len(stmt.let) != 1:
                raise StructureError(f"a {kind} child has one name", stmt.span)
            self._add(
                self.elab.expand_name(stmt.let[0], self.frame, stmt.span),
                self.frame.eval(stmt.value),
                stmt,
            )
        elif isinstance(stmt, ir.Input):
            raise StructureError(
                f"'input' declares a net's inputs; it cannot sit inside a {kind}",
                stmt.span,
                hint="declare inputs first in the net's body",
            )
        else:
            what = type(stmt).__name__.lower().replace("decl", "")
            raise StructureError(
                f"a {what} statement cannot sit inside a {kind}; its body lists modules", stmt.span
            )

    def _add(self, name: str | None, value: Any, stmt: Any) -> None:
        kind = self.handle.container.kind
        if not isinstance(value, Handle):
            raise StructureError(f"a {kind} holds modules, not {kind_of(value)}", stmt.span)
        if value.name is not None:
            raise StructureError(
                f"'{value.name}' is already a member elsewhere; a module has one place in a {kind}",
                stmt.span,
            )
        named = name is not None
        if kind == "ModuleList" and named:
            raise StructureError(
                "ModuleList children are numbered; they take no names",
                stmt.span,
                hint="use a ModuleDict for named children",
            )
        if kind == "ModuleDict" and not named:
            raise StructureError(
                "ModuleDict children need names", stmt.span, hint="write 'name = Layer(...)'"
            )
        if self.named is not None and self.named != named:
            raise StructureError(
                "name every child of a Sequential, or none",
                stmt.span,
                hint="torch numbers unnamed children 0, 1, 2...; mixing both is ambiguous",
            )
        self.named = named
        key = name if named else str(len(self.handle.children))
        if key in self.keys:
            raise DuplicateNameError(f"'{key}' is already a child of this {kind}", stmt.span)
        self.keys.add(key)
        self.handle.children.append((key, value))


class GraphBody(_Body):
    """A net or block body with named values: statements become members and graph nodes."""

    def __init__(self, elab: Elaborator, builder: GraphBuilder, frame: Frame) -> None:
        super().__init__(elab, frame)
        self.builder = builder
        self.inputs: list[tuple[str, Val]] = []
        self._given: list[Any] | None = None
        self._sources: list[Span | None] = []
        self._applied: Span | None = None  # where a block is applied

    def run_block(
        self,
        node: ir.BlockDef | ir.NetDef,
        inputs: list[Any] | None,
        sources: list[Span | None],
        span: Span,
    ) -> None:
        """`inputs` are the metas a caller applies the block to (None for a top-level net)."""
        declared = [s for s in node.body if isinstance(s, ir.Input)]
        if inputs is not None and len(declared) != len(inputs):
            raise ArityError(
                f"{node.name} declares {len(declared)} input{'s' if len(declared) != 1 else ''} "
                f"({', '.join(d.input for d in declared) or 'none'}) and is applied to {len(inputs)}",
                span,
                notes=[Note(f"{node.name} is defined here", node.span)],
            )
        self._given = inputs
        self._sources = sources
        self._applied = span if inputs is not None else None
        self.run(node.body)
        if not self.builder.has_return:
            raise StructureError(
                f"{node.name} has no return", node.span, hint="end the body with 'return <value>'"
            )

    def other(self, stmt: Any) -> None:
        if self.builder.has_return:
            raise StructureError("nothing may follow 'return'", stmt.span)
        handler = _HANDLERS.get(type(stmt)) or _handler(type(stmt))
        handler(self, stmt)

    def _Input(self, stmt: ir.Input) -> None:
        index = len(self.inputs)
        if self._given is not None:
            meta = self._given[index]
            if stmt.shape is not None and isinstance(meta, torch.Tensor):
                self._check_declared_shape(
                    stmt, meta, self._sources[index] if index < len(self._sources) else None
                )
        else:
            meta = self._declared_meta(stmt)
        node = self.builder.graph.placeholder(stmt.input)
        source = self._sources[index] if index < len(self._sources) else stmt.span
        val = Val(node, meta, source or stmt.span)
        self.inputs.append((stmt.input, val))
        self._bind(stmt.input, val, stmt.span)

    def _declared_meta(self, stmt: ir.Input) -> torch.Tensor:
        if stmt.shape is None:
            raise StructureError(
                f"the net's input '{stmt.input}' needs a shape",
                stmt.span,
                hint=f"write e.g. 'input {stmt.input}: [B, 3, H, W]' (names are symbolic sizes)",
            )
        dims = [self._dim(d, i) for i, d in enumerate(stmt.shape)]
        dtype = self._dtype(stmt.dtype, stmt.span)
        return shapes.meta_tensor(dims, dtype)

    def _dim(self, expr: ir.ExprNode, position: int) -> int:
        if (
            isinstance(expr, ir.Name)
            and expr.id not in self.frame.scope
            and self.elab.lookup(expr.id, self.frame.unit) is None
        ):
            return self.elab.symbols.size(expr.id, position)
        value = self.frame.static(expr)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ArgumentError(f"a size must be a non-negative integer, not {value!r}", expr.span)
        return value

    def _check_declared_shape(
        self, stmt: ir.Input, meta: torch.Tensor, source: Span | None
    ) -> None:
        notes = [Note("the block is applied here", self._applied)] if self._applied else []
        notes += [Note("the value it receives was produced here", source)] if source else []
        if len(stmt.shape) != meta.dim():
            raise ShapeError(
                f"input '{stmt.input}' is declared with {len(stmt.shape)} dimensions but receives {shapes.describe(meta, self.elab.symbols)}",
                stmt.span,
                notes=notes,
            )
        for position, (expr, actual) in enumerate(zip(stmt.shape, meta.shape)):
            if isinstance(expr, ir.Name) and expr.id not in self.frame.scope:
                continue
            expected = self._dim(expr, position)
            if expected != actual:
                raise ShapeError(
                    f"input '{stmt.input}' expects size {expected} in dimension {position}, but receives {shapes.describe(meta, self.elab.symbols)}",
                    stmt.span,
                    notes=notes,
                )

    def _dtype(self, name: str | None, span: Span) -> torch.dtype:
        if name is None:
            return torch.float32
        if name not in shapes.DTYPES:
            raise ArgumentError(
                f"unknown dtype '{name}'",
                span,
                hint=did_you_mean(name, shapes.DTYPES) or f"dtypes: {', '.join(shapes.DTYPES)}",
            )
        return shapes.DTYPES[name]

    def _Let(self, stmt: ir.Let) -> None:
        if stmt.define is not None:
            self._define(stmt.value, stmt.define, stmt.span)
        value = self.frame.eval(stmt.value)
        if len(stmt.let) == 1:
            self._bind(self.elab.expand_name(stmt.let[0], self.frame, stmt.span), value, stmt.span)
            return
        items = self._unpack(value, len(stmt.let), stmt.span)
        for target, item in zip(stmt.let, items):
            self._bind(self.elab.expand_name(target, self.frame, stmt.span), item, stmt.span)

    def _define(self, value: ir.ExprNode, define: ir.ExprNode, span: Span) -> None:
        """`x1 = inc(x): DoubleConv(64)` defines member `inc` before applying it."""
        if not (isinstance(value, ir.Call) and isinstance(value.func, ir.Name)):
            raise StructureError(
                "'value: Layer(...)' needs the value to be a call of the new member's name, as in 'y = name(x): Layer(...)'",
                value.span,
            )
        name = self.elab.expand_name(value.func.id, self.frame, value.func.span)
        module = self.frame.eval(define)
        if not isinstance(module, Handle):
            raise StructureError(
                f"after ':' comes the layer that '{name}' is, not {kind_of(module)}", define.span
            )
        # The member is named where it is applied: `y = name(x): ...` (point there, not at `y`).
        self._bind(name, module, value.func.span or span)

    def _unpack(self, value: Any, count: int, span: Span) -> list[Any]:
        if isinstance(value, ShapeView):
            value = value.dims()
        if isinstance(value, Val):
            meta = value.meta
            length = (
                len(meta)
                if isinstance(meta, tuple | list)
                else (meta.shape[0] if meta.dim() else 0)
            )
            if length != count:
                raise ShapeError(f"cannot unpack {length} values into {count} names", span)
            return [
                self.elab.graph_call(
                    self.builder, operator.getitem, (value, i), {}, "unpacking", span
                )
                for i in range(count)
            ]
        if not isinstance(value, list | tuple) or len(value) != count:
            raise EvaluationError(f"cannot unpack {kind_of(value)} into {count} names", span)
        return list(value)

    def _bind(self, name: str, value: Any, span: Span) -> None:
        if isinstance(value, Parts):
            self.builder.add_member(name, SourceSpec(value.key, value.spec, span), span)
        elif isinstance(value, Handle):
            if value.name is None:
                self.builder.add_member(name, value, span)
            elif name != value.name:
                if "." in value.name:
                    raise StructureError(
                        f"'{value.name}' belongs to a container; give it a second name through the container",
                        span,
                    )
                self.builder.add_member(name, AliasSpec(value.name, span), span)
        elif (
            isinstance(value, Val)
            and value.node.op not in ("placeholder", "get_attr")
            and value.node.graph is self.builder.graph
            and self.frame.scope.get(value.node.name) is not value
        ):
            value.node._rename(name)  # `y = conv(x)` names the node y; `y = x5` leaves x5 alone
        elif isinstance(value, Dim) and value.name is None:
            value.name = name
            if value._node is not None:
                value._node._rename(name)
        self.frame.scope[name] = value

    def _Layer(self, stmt: ir.Layer) -> None:
        if is_weights_call(stmt.layer):
            self.elab.add_weights(stmt.layer, self.frame)
            return
        raise StructureError(
            "a bare layer in a graph body needs a name",
            stmt.span,
            hint="write 'name = Layer(...)', or 'y = name(x): Layer(...)'",
        )

    def _Return(self, stmt: ir.Return) -> None:
        if stmt.define is not None:
            self._define(stmt.return_, stmt.define, stmt.span)
        value = self.frame.eval(stmt.return_)
        if not vals_in(value):
            raise StructureError("a net returns tensors computed from its inputs", stmt.span)
        self.builder.graph.output(node_arg(value))
        self.builder.returned = value
        self.builder.has_return = True

    def _ParamDecl(self, stmt: ir.ParamDecl) -> None:
        self._tensor(stmt, "param", stmt.param)

    def _BufferDecl(self, stmt: ir.BufferDecl) -> None:
        self._tensor(stmt, "buffer", stmt.buffer)

    def _tensor(self, stmt: ir.TensorDecl, kind: str, name: str) -> None:
        shape = tuple(self._dim_static(d) for d in stmt.shape)
        dtype = self._dtype(stmt.dtype, stmt.span)
        options = {k: self.frame.static(v) for k, v in stmt.options.items()}
        allowed = {"param": {"requires_grad"}, "buffer": {"persistent"}}[kind]
        for key in options:
            if key not in allowed:
                raise UnknownKeywordError(
                    f"a {kind} has no option '{key}'",
                    stmt.options[key].span,
                    hint=f"its options are: {', '.join(sorted(allowed))}",
                )
        initialiser = self._tensor_init(stmt.init) if stmt.init is not None else None
        if initialiser is None and kind == "param":
            raise InitError(
                f"param '{name}' needs an initialiser",
                stmt.span,
                hint="write e.g. '= normal(0, 0.01)', '= zeros()' or '= kaiming_uniform(a=5 ** 0.5)'",
            )
        spec = TensorSpec(
            kind,
            shape,
            dtype,
            initialiser,
            bool(options.get("persistent", True)),
            bool(options.get("requires_grad", True)),
            stmt.span,
        )
        self.builder.add_member(name, spec, stmt.span)
        node = self.builder.node("get_attr", name, ())
        self.frame.scope[name] = Val(node, shapes.meta_tensor(shape, dtype), stmt.span)

    def _dim_static(self, expr: ir.ExprNode) -> int:
        value = self.frame.static(expr)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ArgumentError(f"a size must be a non-negative integer, not {value!r}", expr.span)
        return value

    def _init_call(self, expr: ir.ExprNode) -> tuple[str, tuple, dict]:
        if not (isinstance(expr, ir.Call) and isinstance(expr.func, ir.Name)):
            raise InitError("an initialiser is a call such as normal(0, 0.01)", expr.span)
        args = tuple(self.frame.static(a) for a in expr.args)
        kwargs = {k: self.frame.static(v) for k, v in expr.kwargs.items()}
        return expr.func.id, args, kwargs

    def _tensor_init(self, expr: ir.ExprNode) -> InitCall:
        name, args, kwargs = self._init_call(expr)
        init.check_initialiser(name, expr.span)
        return InitCall(name, args, kwargs, expr.span)

    def _InitBlock(self, stmt: ir.InitBlock) -> None:
        for rule in stmt.init:
            name, args, kwargs = self._init_call(rule.init)
            self.builder.init_rules.extend(
                init.rule_from(rule.match, name, args, kwargs, rule.span)
            )


# GraphBody's `_<Statement>` methods by statement type, filled as types are met.
_HANDLERS: dict[type, Callable[[GraphBody, Any], None]] = {}


def _handler(stmt_type: type) -> Callable[[GraphBody, Any], None]:
    handler = _HANDLERS[stmt_type] = getattr(GraphBody, "_" + stmt_type.__name__)
    return handler


# ============================================================================ entry point


@gc_paused()
def resolve(
    spec: str | Path | ir.SpecFile,
    *,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
    root: Path | None = None,
) -> Resolved:
    """Elaborate one net of a spec into a resolved module tree with shapes."""
    spec_file, path = load(spec)
    library = Library(root or (path.parent if path else Path.cwd()))
    unit = library.unit(spec_file, path)
    node = pick_net(spec_file, net)
    elab = Elaborator(library, shapes.Symbols(sizes))
    try:
        resolved = _resolve_net(elab, unit, node, params or {})
        resolved.weights = elab.weights
        return resolved
    except RecursionError:
        raise LimitError("the spec nests too deeply to elaborate", node.span) from None


def pick_net(spec_file: ir.SpecFile, name: str | None) -> ir.NetDef:
    nets = spec_file.nets()
    if name is not None:
        found = next((n for n in nets if n.name == name), None)
        if found is None:
            raise UndefinedValueError(
                f"no net named '{name}'",
                spec_file.span,
                hint=did_you_mean(name, [n.name for n in nets])
                or f"nets here: {', '.join(n.name for n in nets) or 'none'}",
            )
        return found
    if not nets:
        raise StructureError(
            "this spec defines no net to build",
            spec_file.span,
            hint="a file of blocks is imported by other specs; 'net Name(...):' defines something to build",
        )
    return nets[-1]


def _resolve_net(elab: Elaborator, unit: Unit, node: ir.NetDef, params: dict[str, Any]) -> Resolved:
    return resolve_net_in(elab, unit, node, elab.bind_params(node, None, None, unit, params))


def resolve_net_in(
    elab: Elaborator, unit: Unit, node: ir.NetDef, scope: dict[str, Any]
) -> Resolved:
    """Elaborate a net whose parameters are bound in `scope`."""
    if node.base is not None:
        from dsl.elaborate.surgery import resolve_derived

        return resolve_derived(elab, unit, node, scope)
    frame = Frame(elab, unit, None, scope)
    if isinstance(node.body, ir.Container):
        return _resolve_container_net(elab, frame, node)
    builder = GraphBuilder(node.name, node.span)
    frame.builder = builder
    body = GraphBody(elab, builder, frame)
    body.run_block(node, None, [], node.span)
    spec = builder.finish(elab)
    return Resolved(
        node.name,
        spec,
        [(n, v.meta) for n, v in body.inputs],
        meta_arg(builder.returned),
        elab.symbols,
    )


def _resolve_container_net(elab: Elaborator, frame: Frame, node: ir.NetDef) -> Resolved:
    """`net MLP = Sequential:` — inputs are declared first in the body, then the children."""
    container: ir.Container = node.body
    inputs = [s for s in container.body if isinstance(s, ir.Input)]
    if len(inputs) != 1:
        raise StructureError(
            f"a {container.kind} net declares one input first in its body",
            node.span,
            hint="write e.g. 'input x: [N, 784]' as its first line",
        )
    builder = GraphBuilder(node.name, node.span)
    meta = GraphBody(elab, builder, frame)._declared_meta(inputs[0])
    body = container.model_copy(
        update={"body": [s for s in container.body if not isinstance(s, ir.Input)]}
    )
    handle = elab.container_handle(body, frame)
    handle.attach(node.name)
    out = handle.call_meta([meta], [inputs[0].span], node.span, elab)
    return Resolved(node.name, handle.finish(elab), [(inputs[0].input, meta)], out, elab.symbols)


__all__ = ["resolve"]
