"""A net or block body with named values: its statements become members and graph nodes."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch

from dsl import ir
from dsl.elaborate import net_settings, training, watch
from dsl.elaborate.bodies import Body
from dsl.elaborate.build_time import let_value
from dsl.elaborate.declarations import (
    add_weights,
    declared_meta,
    init_rules_of,
    is_weights_call,
    size_of,
    tensor_member,
)
from dsl.elaborate.evaluate import Frame
from dsl.elaborate.graph import INPUT_DTYPE, GraphBuilder
from dsl.elaborate.graph_ops import graph_call, refuse_references
from dsl.elaborate.net_settings import Inbox
from dsl.elaborate.values import (
    TRAINING,
    Dim,
    Handle,
    Parts,
    ShapeView,
    Val,
    kind_of,
    node_arg,
    vals_in,
)
from dsl.errors import (
    ArityError,
    DuplicateNameError,
    EvaluationError,
    Note,
    ShapeError,
    StructureError,
)
from dsl.plan import AliasSpec, SourceSpec
from dsl.source import Span
from dsl.torchlib import fx_private, shapes


class GraphBody(Body):
    """A net or block body with named values: statements become members and graph nodes."""

    def __init__(self, builder: GraphBuilder, frame: Frame, inbox: Inbox | None = None) -> None:
        super().__init__(frame)
        self.builder = builder
        self.inbox = inbox or Inbox([])  # settings from a `set()` outside the block
        self.inputs: list[tuple[str, Val]] = []
        self._given: list[Any] | None = None
        self._sources: list[Span | None] = []
        self._applied: Span | None = None  # where a block is applied
        self._declared: set[int] = set()  # the body's own `input` statements

    def run_block(
        self,
        node: ir.Definition,
        inputs: list[Any] | None,
        sources: list[Span | None],
        span: Span,
    ) -> None:
        """`inputs` are the metas a caller applies the block to (None for a top-level net)."""
        assert not isinstance(node.body, ir.Container)  # a container body is no graph body
        self.run_body(node.name, node.body, node.span, inputs, sources, span)

    def run_body(
        self,
        name: str,
        stmts: list,
        at: Span,
        inputs: list[Any] | None,
        sources: list[Span | None],
        span: Span,
    ) -> None:
        """The statements of `name`'s body, written at `at`, for these inputs."""
        forward = next((s for s in stmts if isinstance(s, ir.Forward)), None)
        if forward is not None:  # before its inputs are counted: they may sit in it
            self._Forward(forward)
        declared = [s for s in stmts if isinstance(s, ir.Input)]
        if inputs is not None and len(declared) != len(inputs):
            raise ArityError(
                f"{name} declares {len(declared)} input{'s' if len(declared) != 1 else ''} "
                f"({', '.join(d.input for d in declared) or 'none'}) and is applied to {len(inputs)}",
                span,
                notes=[Note(f"{name} is defined here", at)],
            )
        self._declared = {id(s) for s in declared}
        self._given = inputs
        self._sources = sources
        self._applied = span if inputs is not None else None
        self.frame.scope.setdefault("training", TRAINING)
        self.run(stmts)
        members = [n for n, v in self.frame.scope.items() if isinstance(v, Handle)]
        self.inbox.check(members, name)
        if not self.builder.has_return:
            raise StructureError(
                f"{name} has no return", at, hint="end the body with 'return <value>'"
            )

    def done(self) -> bool:
        return self.builder.has_return

    def other(self, stmt: Any) -> None:
        handler = _HANDLERS.get(type(stmt)) or _handler(type(stmt))
        handler(self, stmt)

    # -- `if training:`
    def takes_rest(self, stmt: Any, stmts: list, index: int) -> bool:
        """`if training:` runs here; when one arm returns, the statements after the `if`
        are the other arm's continuation (`if training: return x, aux` then `return x`)."""
        mode = training.mode_test(stmt.if_, self.frame.eval) if isinstance(stmt, ir.If) else None
        if mode is None:
            return False
        then, orelse = (stmt.then, stmt.else_) if mode else (stmt.else_, stmt.then)
        rest = stmts[index + 1 :]
        ends = (_returns(then), _returns(orelse))
        if ends[0] != ends[1] and rest:
            then, orelse = (then, [*orelse, *rest]) if ends[0] else ([*then, *rest], orelse)
        else:
            rest = []
        self._mode_branch(then, orelse, stmt.span)
        if not rest and index + 1 < len(stmts):
            self.run(stmts, index + 1)  # the statements after, as Body.run would have
        return True

    def _mode_branch(self, then: list, orelse: list, span: Span) -> None:
        arms = [
            training.elaborate_arm(self.builder, self.frame.scope, self._arm(stmts), mode)
            for stmts, mode in ((then, True), (orelse, False))
        ]
        returns = [arm.builder.has_return for arm in arms]
        symbols = self.context.symbols
        if all(returns):
            value = training.returned(self.builder, arms, self._given is not None, span, symbols)
            self.builder.graph.output(value.node)
            self.builder.returned, self.builder.has_return = value, True
            return
        if any(returns):
            raise training.not_returning(arms, span)
        result = training.merge(self.frame.scope, arms, span, symbols)
        for name, value in training.merged_values(self.builder, arms, result, span).items():
            if isinstance(value, Val) and not name.startswith(training.MODE_ONLY):
                self._bind(name, value, span)  # names the branch's output node
            else:
                self.frame.scope[name] = value
        for name, error in result.conflicts.items():
            self.frame.scope.pop(name, None)
            self.frame.scope[training.CONFLICT + name] = error

    def _arm(self, stmts: list) -> Callable[[GraphBuilder, dict], Any]:
        def run(builder: GraphBuilder, scope: dict[str, Any]) -> Any:
            body = type(self)(builder, Frame(self.frame.elab, self.frame.unit, builder, scope))
            body._given, body._applied = self._given, self._applied  # a block's, or a net's
            body.run(stmts)
            return builder.returned

        return run

    # -- inputs
    def _Input(self, stmt: ir.Input) -> None:
        self._check_input_statement(stmt)
        index = len(self.inputs)
        source = self._sources[index] if index < len(self._sources) else None
        if self._given is not None:
            meta = self._given[index]
            if stmt.shape is not None and isinstance(meta, torch.Tensor):
                self._check_declared_shape(stmt, meta, source)
        else:
            meta = declared_meta(self.frame, stmt)
        node = self.builder.graph.placeholder(stmt.input)
        node.meta[INPUT_DTYPE] = getattr(meta, "dtype", None)
        val = Val(node, meta, source or stmt.span)
        self.inputs.append((stmt.input, val))
        self._bind(stmt.input, val, stmt.span)

    def _check_input_statement(self, stmt: ir.Input) -> None:
        if id(stmt) not in self._declared:
            raise StructureError(
                f"'input {stmt.input}' sits inside an 'if' or 'for'; a body's inputs are declared unconditionally",
                stmt.span,
                hint="declare every input at the top level of the body",
            )
        first = next((val for name, val in self.inputs if name == stmt.input), None)
        if first is not None:
            raise DuplicateNameError(
                f"input '{stmt.input}' is declared twice",
                stmt.span,
                notes=[Note("first declared here", first.span)],
                hint="give each input its own name",
            )

    def _check_declared_shape(
        self, stmt: ir.Input, meta: torch.Tensor, source: Span | None
    ) -> None:
        assert stmt.shape is not None
        notes = [Note("the block is applied here", self._applied)] if self._applied else []
        notes += [Note("the value it receives was produced here", source)] if source else []
        described = shapes.describe(meta, self.context.symbols)
        if len(stmt.shape) != meta.dim():
            raise ShapeError(
                f"input '{stmt.input}' is declared with {len(stmt.shape)} dimensions but receives {described}",
                stmt.span,
                notes=notes,
            )
        for position, (expr, actual) in enumerate(zip(stmt.shape, meta.shape)):
            if isinstance(expr, ir.Name) and expr.id not in self.frame.scope:
                continue
            expected = size_of(self.frame, expr, position)
            if expected != actual:
                raise ShapeError(
                    f"input '{stmt.input}' expects size {expected} in dimension {position}, but receives {described}",
                    stmt.span,
                    notes=notes,
                )

    # -- values and members
    def _Let(self, stmt: ir.Let) -> None:
        if stmt.define is not None:
            self._define(stmt.value, stmt.define, stmt.span)
        value = self.frame.eval(let_value(stmt, self.frame.scope))
        expand = self.context.expand_name
        if len(stmt.let) == 1:
            self._bind(expand(stmt.let[0], self.frame, stmt.span), value, stmt.span)
            return
        items = self._unpack(value, len(stmt.let), stmt.span)
        for target, item in zip(stmt.let, items):
            self._bind(expand(target, self.frame, stmt.span), item, stmt.span)

    def _define(self, value: ir.ExprNode, define: ir.ExprNode, span: Span) -> None:
        """`x1 = inc(x): DoubleConv(64)` defines member `inc` before applying it."""
        if not (isinstance(value, ir.Call) and isinstance(value.func, ir.Name)):
            raise StructureError(
                "'value: Layer(...)' needs the value to be a call of the new member's name, as in 'y = name(x): Layer(...)'",
                value.span,
            )
        name = self.context.expand_name(value.func.id, self.frame, value.func.span)
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
            symbols = self.context.symbols
            return [
                graph_call(
                    symbols, self.builder, operator.getitem, (value, i), {}, "unpacking", span
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
            value = self._bind_module(name, value, span)
        elif (
            isinstance(value, Val)
            and value.node.op not in ("placeholder", "get_attr")
            and value.node.graph is self.builder.graph
            and self.frame.scope.get(value.node.name) is not value
        ):
            fx_private.rename(
                value.node, name
            )  # `y = conv(x)` names the node y; `y = x5` leaves x5 alone
        elif isinstance(value, Dim):
            value.bind_name(name)
        if isinstance(value, Val):
            watch.note(span, name, value.meta)
        self.frame.scope[name] = value

    def _bind_module(self, name: str, handle: Handle, span: Span) -> Handle:
        """The member bound: `handle`, or the layer a `set()` from outside put in its place."""
        if handle.name is None:
            handle = self.inbox.deliver(name, handle)
            self.builder.add_member(name, handle, span)
        elif name != handle.name:
            if "." in handle.name:
                raise StructureError(
                    f"'{handle.name}' belongs to a container; give it a second name through the container",
                    span,
                )
            self.builder.add_member(name, AliasSpec(handle.name, span), span)
        return handle

    def _Layer(self, stmt: ir.Layer) -> None:
        if is_weights_call(stmt.layer):
            add_weights(self.frame, stmt.layer)
            return
        if net_settings.is_set_call(stmt, self.frame):
            assert isinstance(stmt.layer, ir.Call)  # is_set_call checked it
            net_settings.record(self.frame, stmt.layer)
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
        # a module, layer, function or parts(...) source among the tensors (`return y, fc`) is
        # no value forward can return: the generated forward would not even compile
        refuse_references(value, "return", stmt.span)
        self.builder.graph.output(node_arg(value))
        self.builder.returned = value
        self.builder.has_return = True

    # -- tensors and init rules
    def _ParamDecl(self, stmt: ir.ParamDecl) -> None:
        self._tensor(stmt, "param", stmt.param)

    def _BufferDecl(self, stmt: ir.BufferDecl) -> None:
        self._tensor(stmt, "buffer", stmt.buffer)

    def _tensor(self, stmt: ir.TensorDecl, kind: str, name: str) -> None:
        spec = tensor_member(self.frame, stmt, kind, name)
        self.builder.add_member(name, spec, stmt.span)
        node = self.builder.node("get_attr", name, ())
        meta = shapes.meta_tensor(spec.shape, spec.dtype)
        self.frame.scope[name] = Val(node, meta, stmt.span)

    def _InitBlock(self, stmt: ir.InitBlock) -> None:
        self.builder.init_rules.extend(init_rules_of(self.frame, stmt))

    def _Forward(self, stmt: ir.Forward) -> None:
        raise StructureError(
            "'forward:' belongs to a container block, after its children; "
            "a graph body is a forward already",
            stmt.span,
            hint="write its statements in the body itself, or define "
            "'block Name = ModuleDict:' with the children and then 'forward:'",
        )


def _returns(stmts: list) -> bool:
    return bool(stmts) and isinstance(stmts[-1], ir.Return)


# GraphBody's `_<Statement>` methods by statement type, filled as types are met.
_HANDLERS: dict[type, Callable[[GraphBody, Any], None]] = {}


def _handler(stmt_type: type) -> Callable[[GraphBody, Any], None]:
    handler = _HANDLERS[stmt_type] = getattr(GraphBody, "_" + stmt_type.__name__)
    return handler
