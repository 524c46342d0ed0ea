"""`def` functions: pure build-time code (torchvision's `_make_divisible`). A call binds the
parameters as a block's are bound, runs the body (value bindings, `if`, `for`, `return`,
early returns included) and gives the value returned. Calls nest at most MAX_CALL_DEPTH
deep and spend the spec's work budget like any other statement (dsl.elaborate.limits)."""

from __future__ import annotations

from typing import Any

from dsl import ir
from dsl.elaborate import limits, size_decisions
from dsl.elaborate.bodies import Body
from dsl.elaborate.build_time import bind_target, let_value
from dsl.elaborate.evaluate import Elaboration, Frame
from dsl.elaborate.params import bind_params
from dsl.elaborate.values import to_static
from dsl.errors import LimitError, StructureError
from dsl.source import Span
from dsl.syntax.loader import Definition

_ALLOWED = "value bindings ('x = ...', 'x += ...'), 'if', 'for' and 'return'"


def call_function(elab: Elaboration, definition: Definition, call: ir.Call, caller: Frame) -> Any:
    """The value `call` of the function `definition` returns."""
    node = definition.node
    context = elab.context
    context.budget.spend(limits.CALL_COST, call.span, f"a call of {node.name}()")
    stack = context.stack
    if len(stack) >= limits.MAX_CALL_DEPTH and _calls(stack) >= limits.MAX_CALL_DEPTH:
        chain = " -> ".join(entry for entry, _ in context.stack[-4:])
        raise LimitError(
            f"function '{node.name}' calls nest more than {limits.MAX_CALL_DEPTH} deep "
            f"({chain} -> {node.name}())",
            call.span,
            hint="a function may call itself only under an 'if' that stops it "
            "(dsl.elaborate.limits.MAX_CALL_DEPTH is the limit)",
        )
    seen: list[Any] = []

    def read(expr: ir.ExprNode) -> Any:
        seen.append(caller.eval(expr))
        return to_static(seen[-1], expr.span)

    context.stack.append((f"{node.name}()", call.span))
    try:
        scope = bind_params(elab, node, call, caller, definition.unit, read=read)
        result = _run(Frame(elab, definition.unit, None, scope), node)
    finally:
        context.stack.pop()
    if size_decisions.reads_size(seen):  # what it computed from a size decides a build
        size_decisions.note(call.span, (to_static(seen, call.span), result))
    return result


def _calls(stack: list[tuple[str, Span]]) -> int:
    """How many function calls the elaboration is inside (blocks are on the stack too)."""
    return sum(1 for entry, _ in stack if entry.endswith("()"))


def _run(frame: Frame, node: Any) -> Any:
    body = FunctionBody(frame)
    body.run(node.body)
    if not body.returned:
        raise StructureError(
            f"function '{node.name}' ends without 'return'",
            node.span,
            hint="a def computes a value: end each of its paths with 'return <value>'",
        )
    return body.result


class FunctionBody(Body):
    """A def's statements: they bind build-time values and return one."""

    def __init__(self, frame: Frame) -> None:
        super().__init__(frame)
        self.returned = False
        self.result: Any = None

    def done(self) -> bool:
        return self.returned

    def other(self, stmt: Any) -> None:
        if isinstance(stmt, ir.Let) and stmt.define is None:
            value = self.frame.static(let_value(stmt, self.frame.scope))
            target = stmt.let[0] if len(stmt.let) == 1 else list(stmt.let)
            bind_target(self.frame.scope, target, value, stmt.span)
        elif isinstance(stmt, ir.Return) and stmt.define is None:
            self.result = self.frame.static(stmt.return_)
            self.returned = True
        else:
            raise statement_error(stmt)


def statement_error(stmt: Any) -> StructureError:
    """A statement a def's body cannot hold: it computes values, it builds no module."""
    kinds: dict[type, str] = {
        ir.Input: "an input",
        ir.Layer: "a layer",
        ir.InitBlock: "init rules",
        ir.Forward: "a forward",
    }
    what = kinds.get(type(stmt), "a member")
    return StructureError(
        f"a def computes build-time values; {what} cannot sit in its body",
        stmt.span,
        hint=f"a def's body holds {_ALLOWED}; define modules with 'block Name(...):'",
    )


def def_body_errors(node: ir.FuncDef) -> list[StructureError]:
    """The statements of a def's body (in `if` and `for` too) that no def may hold."""
    errors: list[StructureError] = []
    stack = list(reversed(node.body))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, ir.If):
            stack.extend(reversed([*stmt.then, *stmt.else_]))
        elif isinstance(stmt, ir.For):
            stack.extend(reversed(stmt.body))
        elif not (isinstance(stmt, ir.Let | ir.Return) and stmt.define is None):
            errors.append(statement_error(stmt))
    return errors
