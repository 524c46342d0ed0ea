"""The expression evaluator: a spec's expressions, computed by walking the IR (never
`eval`). A `Frame` is one scope; names resolve through it, then the file's definitions,
the registry and the builtins. On graph values it records fx nodes; on build-time values
it computes plain Python under the limits of `dsl.elaborate.arithmetic`. Conditions are
decided in `dsl.elaborate.conditions`. What recurses into bodies (containers, blocks) it
calls back through `Elaboration`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Protocol

import torch.fx as fx

from dsl import ir
from dsl.elaborate import build_time, graph_ops, size_decisions, training
from dsl.elaborate.arithmetic import IDENTITY_OPERATORS, identity, python_op
from dsl.elaborate.builtin_functions import BUILTINS, call_builtin, math_member
from dsl.elaborate.children import Children
from dsl.elaborate.conditions import decide
from dsl.elaborate.context import Context
from dsl.elaborate.graph import GraphBuilder
from dsl.elaborate.handles import BlockMaker, part_of
from dsl.elaborate.limits import TENSOR_ARGUMENT_COST
from dsl.elaborate.values import (
    STATIC_TYPES,
    TRAINING,
    BlockRef,
    Builtin,
    Dim,
    FunctionRef,
    Handle,
    LayerRef,
    MethodRef,
    ShapeView,
    Val,
    as_hashable,
    kind_of,
    node_arg,
    qualified_hint,
    to_static,
    vals_in,
)
from dsl.errors import (
    DSLError,
    EvaluationError,
    LimitError,
    StructureError,
    UndefinedValueError,
    UnknownLayerError,
    did_you_mean,
)
from dsl.plan import ModuleSpec
from dsl.source import Span
from dsl.syntax.loader import Definition, Unit
from dsl.torchlib.registry import (
    OPERATORS,
    REGISTRY,
    TENSOR_OPERATORS,
    UNARY_OPERATORS,
    check_keywords,
    refusal_hint,
    unknown_function,
)


class Elaboration(BlockMaker, Protocol):
    """What the evaluator calls back: a container's body and a block's body are statements,
    elaborated a level above it."""

    def container_handle(self, node: ir.Container, frame: Frame) -> Handle: ...

    def call_function(self, definition: Definition, call: ir.Call, frame: Frame) -> Any:
        """The value a call of a `def` function returns."""

    def net_parts(self, handle: Handle) -> ModuleSpec: ...


class Frame:
    """A scope: names to values, evaluated in the unit (file) where the code was written."""

    __slots__ = ("builder", "context", "elab", "scope", "unit")

    def __init__(
        self,
        elab: Elaboration,
        unit: Unit,
        builder: GraphBuilder | None,
        scope: dict[str, Any],
    ) -> None:
        self.elab = elab
        self.context: Context = elab.context
        self.unit = unit
        self.builder = builder
        self.scope = scope

    def child_scope(self, extra: dict[str, Any]) -> Frame:
        return Frame(self.elab, self.unit, self.builder, {**self.scope, **extra})

    def snapshot(self, call: ir.Call) -> Frame:
        """The scope a layer's or block's arguments are evaluated in when it is first
        applied: the names they read, not a copy of the whole scope (which made a body of
        n named layers cost n^2). Every name, where one is templated or not defined
        (its error lists the names in scope)."""
        names = self.context.names_read(call)
        scope = self.scope
        if names is None or any(
            n not in scope and self.context.lookup(n, self.unit) is None for n in names
        ):
            return Frame(self.elab, self.unit, self.builder, dict(scope))
        return Frame(self.elab, self.unit, self.builder, {n: scope[n] for n in names if n in scope})

    # -- entry points
    def static(self, expr: ir.ExprNode) -> Any:
        """A build-time value: sizes become ints, and tensors computed in forward are refused."""
        return to_static(self.eval(expr), expr.span)

    def condition(self, expr: ir.ExprNode) -> bool:
        """Whether a build-time condition holds (see dsl.elaborate.conditions)."""
        return decide(self.eval(expr), expr.span)

    def eval(self, expr: ir.ExprNode) -> Any:
        kind = type(expr)
        if kind is ir.Const:  # the commonest leaves, which cannot fail, without a call
            return expr.value  # type: ignore[union-attr]
        if kind is ir.Name and expr.id in self.scope:  # type: ignore[union-attr]
            return self.scope[expr.id]  # type: ignore[union-attr]
        method = _EVALUATORS.get(kind) or _evaluator(kind)
        try:
            return method(self, expr)
        except DSLError as exc:
            raise exc.with_span(expr.span) from None
        except RecursionError:
            raise LimitError("the expression nests too deeply", expr.span) from None

    # -- leaves
    def _eval_Const(self, expr: ir.Const) -> Any:
        return expr.value

    def _eval_Name(self, expr: ir.Name) -> Any:
        name = self.context.expand_name(expr.id, self, expr.span)
        if name in self.scope:
            return self.scope[name]
        found = self.context.lookup(name, self.unit)
        if found is not None:
            return found
        raise self._undefined(name, expr.span)

    def _undefined(self, name: str, span: Span) -> DSLError:
        conflict = training.conflict_error(self.scope, name, span)
        if conflict is not None:
            return conflict
        local = [k for k in self.scope if not k.startswith("_")]
        if name[:1].isupper():
            candidates = [*REGISTRY.layer_names(), *self.unit.names, *local]
            return UnknownLayerError(
                f"unknown layer '{name}'",
                span,
                hint=did_you_mean(name, candidates)
                or "layers are torch.nn classes, blocks, or names registered with @dsl.register",
            )
        candidates = [*local, *REGISTRY.functions, *BUILTINS, *self.unit.names]
        return UndefinedValueError(
            f"'{name}' is not defined here",
            span,
            hint=refusal_hint(name) or did_you_mean(name, candidates),
        )

    # -- compound values
    def _eval_ListExpr(self, expr: ir.ListExpr) -> list:
        return build_time.unpacked_items(self, expr.items)

    def _eval_TupleExpr(self, expr: ir.TupleExpr) -> tuple:
        return tuple(build_time.unpacked_items(self, expr.items))

    def _eval_Comprehension(self, expr: ir.Comprehension) -> list | dict:
        return build_time.comprehension(self, expr)

    def _eval_Starred(self, expr: ir.Starred) -> Any:
        raise StructureError(
            "'*' unpacks into a call's arguments, a list or a tuple only", expr.span
        )

    def _eval_DictExpr(self, expr: ir.DictExpr) -> dict:
        return {
            as_hashable(self.static(k), k.span): self.eval(v)
            for k, v in zip(expr.keys, expr.values)
        }

    def _eval_Slice(self, expr: ir.Slice) -> slice:
        part = lambda e: None if e is None else self.eval(e)  # noqa: E731
        return slice(part(expr.start), part(expr.stop), part(expr.step))

    def _eval_Container(self, expr: ir.Container) -> Handle:
        return self.elab.container_handle(expr, self)

    def _eval_IfExp(self, expr: ir.IfExp) -> Any:
        mode = training.mode_test(expr.cond, self.eval)
        if mode is not None and self.builder is not None:
            return self._mode_choice(expr.then, expr.orelse, mode, expr.span)
        return self.eval(expr.then) if self.condition(expr.cond) else self.eval(expr.orelse)

    def _mode_choice(self, then: ir.ExprNode, orelse: ir.ExprNode, mode: bool, span: Span) -> Any:
        """`a if training else b`: both elaborated, the mode picks one when forward runs."""
        builder = self.builder
        assert builder is not None

        def arm(expr: ir.ExprNode) -> Callable[[GraphBuilder, dict], Any]:
            return lambda arm, scope: Frame(self.elab, self.unit, arm, scope).eval(expr)

        exprs = (then, orelse) if mode else (orelse, then)
        arms = [
            training.elaborate_arm(builder, self.scope, arm(e), in_training)
            for e, in_training in zip(exprs, (True, False))
        ]
        return training.choose(builder, arms, span, self.context.symbols)

    # -- operators
    def _eval_UnaryOp(self, expr: ir.UnaryOp) -> Any:
        if expr.op == "not":
            return not self.condition(expr.operand)
        value = self.eval(expr.operand)
        fn = UNARY_OPERATORS[expr.op]
        if isinstance(value, Val | Dim):
            return self._graph_call(fn, (value,), {}, f"'{expr.op}'", expr.span)
        try:
            return fn(value)
        except TypeError:
            raise EvaluationError(
                f"cannot apply '{expr.op}' to {kind_of(value)}", expr.span
            ) from None

    def _eval_BinOp(self, expr: ir.BinOp) -> Any:
        if expr.op == "and":
            return self.condition(expr.left) and self.condition(expr.right)
        if expr.op == "or":
            return self.condition(expr.left) or self.condition(expr.right)
        left, right = self.eval(expr.left), self.eval(expr.right)
        if expr.op in IDENTITY_OPERATORS:
            return identity(expr.op, left, right, expr.span)
        if type(left) in STATIC_TYPES and type(right) in STATIC_TYPES:
            result = python_op(expr.op, left, right, expr.span)
            self.context.budget.spend_on_value(result, expr.span, f"'{expr.op}'")
            return result
        if expr.op in TENSOR_OPERATORS and (isinstance(left, Val) or isinstance(right, Val)):
            fn = TENSOR_OPERATORS[expr.op]
            return self._graph_call(fn, (left, right), {}, f"'{expr.op}'", expr.span)
        if expr.op in OPERATORS and (isinstance(left, Dim) or isinstance(right, Dim)):
            return self._dim_op(expr.op, left, right, expr.span)
        if expr.op == "+" and _joins_values(left, right):  # `features + [layer(x)]`
            self.context.budget.spend_on_value(left + right, expr.span, "'+'")
            return left + right
        if isinstance(left, Val) or isinstance(right, Val):
            raise EvaluationError(
                f"'{expr.op}' compares tensors computed in forward; build-time code cannot",
                expr.span,
            )
        sized = size_decisions.reads_size(left, right)
        left, right = to_static(left, expr.span), to_static(right, expr.span)
        if sized:  # a comparison of sizes decides something while the model is built
            size_decisions.note(expr.span, (left, right))
        return python_op(expr.op, left, right, expr.span)

    def _dim_op(self, op: str, left: Any, right: Any, span: Span) -> Dim:
        fn = OPERATORS[op]
        value = python_op(op, to_static(left, span), to_static(right, span), span)
        builder = self.builder
        assert builder is not None  # a Dim is read from a graph value

        def emit() -> fx.Node:
            return builder.node("call_function", fn, (node_arg(left), node_arg(right)))

        return Dim(value, emit)

    def _graph_call(
        self, fn: Callable[..., Any], args: tuple, kwargs: dict, what: str, span: Span
    ) -> Val:
        # each tensor argument is walked, shaped and put in a node: `cat(features, 1)` over a
        # list that grows in a loop costs as much as the list is long, each time
        tensors = len(vals_in((args, kwargs)))
        self.context.budget.spend(TENSOR_ARGUMENT_COST * tensors, span, what)
        symbols = self.context.symbols
        return graph_ops.graph_call(symbols, self.builder, fn, args, kwargs, what, span)

    # -- access
    def _eval_Attr(self, expr: ir.Attr) -> Any:
        dotted = ir.dotted(expr)
        if dotted is not None and dotted.split(".")[0] not in self.scope:
            if (member := math_member(dotted, expr.span)) is not None:
                return member
            layer = REGISTRY.layer(dotted)
            if layer is not None:
                return LayerRef(layer)
            function = REGISTRY.function(dotted)
            if function is not None:
                return FunctionRef(function)
            if (error := unknown_function(dotted, expr.span)) is not None:
                raise error
            if dotted.split(".")[0] in ("torchvision", "torch", "nn"):
                raise UnknownLayerError(
                    f"unknown layer '{dotted}'", expr.span, hint=qualified_hint(dotted)
                )
        value = self.eval(expr.value)
        return graph_ops.attribute(self.context, value, expr.attr, self.builder, expr.span)

    def _eval_Index(self, expr: ir.Index) -> Any:
        value = self.eval(expr.value)
        index = self.eval(expr.index)
        if isinstance(value, Handle) and value.kind == "part":
            assert value.source is not None
            path = f"{value.path}.{to_static(index, expr.index.span)}"
            return part_of(value.source, path, expr.span)
        if isinstance(value, Handle | Children):
            handle = value if isinstance(value, Handle) else value.handle
            return handle.child(to_static(index, expr.index.span), expr.span)
        if isinstance(value, ShapeView):
            key = to_static(index, expr.index.span)
            return graph_ops.shape_dim(self.context.symbols, value, key, expr.span)
        if isinstance(value, Val):
            return self._graph_call(operator.getitem, (value, index), {}, "indexing", expr.span)
        if size_decisions.reads_size(index):
            size_decisions.note(expr.index.span, to_static(index, expr.index.span))
        try:
            return value[to_static(index, expr.index.span)]
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise EvaluationError(
                f"cannot index {kind_of(value)} with {index!r}: {exc}", expr.span
            ) from None

    # -- calls
    def _eval_Call(self, expr: ir.Call) -> Any:
        if build_time.has_unpacking(expr):  # `f(*xs, **kw)`: the plain call of the items
            plain, frame = build_time.spread_call(self, expr)
            return frame.eval(plain)
        func = self.eval(expr.func)
        if isinstance(func, LayerRef):
            return Handle(
                "layer", expr.span, layer=func.layer, call=expr, frame=self.snapshot(expr)
            )
        if isinstance(func, BlockRef) and func.definition.node.kind == "def":
            return self.elab.call_function(func.definition, expr, self)
        if isinstance(func, BlockRef):
            return Handle(
                "block", expr.span, block=func.definition, call=expr, frame=self.snapshot(expr)
            )
        args = [self.eval(a) for a in expr.args]
        kwargs = {k: self.eval(v) for k, v in expr.kwargs.items()}
        if isinstance(func, Handle):
            return graph_ops.apply(self.elab, self.builder, func, args, kwargs, expr.span)
        if isinstance(func, Builtin):
            return self._call_builtin(func, args, kwargs, expr)
        if isinstance(func, FunctionRef | MethodRef):
            function = func.function if isinstance(func, FunctionRef) else None
            check_keywords(kwargs, expr.keyword_spans(), function, _value_spans(expr))
            args, kwargs = self._mode_passed(args, kwargs)
        if isinstance(func, FunctionRef):
            return self._call_function(func, args, kwargs, expr.span)
        if isinstance(func, MethodRef):
            if self.builder is None:
                raise StructureError("tensor methods are called in graph bodies only", expr.span)
            symbols = self.context.symbols
            return graph_ops.method_call(symbols, self.builder, func, args, kwargs, expr.span)
        raise EvaluationError(f"{kind_of(func)} cannot be called", expr.span)

    def _mode_passed(self, args: list, kwargs: dict) -> tuple[list, dict]:
        """`training` passed to an op (`dropout(x, p, training=training)`) is `self.training`
        in forward; ops are shape-checked as in training mode."""
        builder = self.builder
        if builder is None:
            return args, kwargs

        def mode(value: Any) -> Any:
            if value is not TRAINING:
                return value
            return Dim(True, lambda: builder.node("get_attr", "training", ()))

        return [mode(a) for a in args], {k: mode(v) for k, v in kwargs.items()}

    def _call_builtin(self, func: Builtin, args: list, kwargs: dict, call: ir.Call) -> Any:
        span = call.span
        if func.name == "parts":
            return graph_ops.parts(self.context, args, kwargs, span, self.elab.net_parts)
        if func.name == "weights":
            raise StructureError("weights(...) is a statement of its own in a net's body", span)
        if not vals_in((args, kwargs)):
            if func.name == "bool" and len(args) == 1 and not kwargs:
                return decide(args[0], span)  # a condition, decided in one place
            self.context.budget.spend_on_arguments(func.name, args, span)
            result = call_builtin(func, args, kwargs, span)
            self.context.budget.spend_on_value(result, span, f"{func.name}()")
            if size_decisions.reads_size(args, kwargs):
                rank_only = func.name in size_decisions.RANK_ONLY_BUILTINS
                seen = result if rank_only else (to_static((args, kwargs), span), result)
                size_decisions.note(span, seen)
            return result
        if func.name in REGISTRY.functions:
            function = REGISTRY.functions[func.name]
            check_keywords(kwargs, call.keyword_spans(), function, _value_spans(call))
            return self._call_function(
                FunctionRef(REGISTRY.functions[func.name]), args, kwargs, span
            )
        raise EvaluationError(
            f"{func.name}() works on build-time values, not tensors computed in forward", span
        )

    def _call_function(self, func: FunctionRef, args: list, kwargs: dict, span: Span) -> Val:
        function = func.function
        return self._graph_call(function.fn, tuple(args), kwargs, function.name, span)


# Frame's `_eval_<Node>` methods by node type, filled as types are met: eval dispatches
# on every expression, and a dict lookup is cheaper than building the name each time.
_EVALUATORS: dict[type, Callable[[Frame, Any], Any]] = {}


def _evaluator(node_type: type) -> Callable[[Frame, Any], Any]:
    method = getattr(Frame, "_eval_" + node_type.__name__)
    _EVALUATORS[node_type] = method
    return method


def _joins_values(left: Any, right: Any) -> bool:
    """Whether `left + right` joins two lists (or tuples) that hold values computed in
    forward: the joined list is build-time structure, as Python's would be."""
    return (
        type(left) is type(right) and type(left) in (list, tuple) and bool(vals_in((left, right)))
    )


def _value_spans(call: ir.Call) -> dict[str, Span]:
    """Where each keyword argument's value is written."""
    return {key: value.span for key, value in call.kwargs.items()}
