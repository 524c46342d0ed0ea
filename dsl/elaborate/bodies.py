"""Bodies of statements: build-time `if` and `for`, common to every body, and the body of
a Sequential/ModuleList/ModuleDict, each of whose statements adds a child (or binds a value
for the statements after it)."""

from __future__ import annotations

from typing import Any

import torch

from dsl import ir
from dsl.elaborate.build_time import bind_target, iterate, let_value
from dsl.elaborate.declarations import init_rules_of
from dsl.elaborate.evaluate import Frame
from dsl.elaborate.graph import check_member_name
from dsl.elaborate.values import (
    Builtin,
    FunctionRef,
    Handle,
    MethodRef,
    Parts,
    Val,
    kind_of,
    to_static,
)
from dsl.errors import (
    ArgumentError,
    DSLError,
    DuplicateNameError,
    StructureError,
    UnknownKeywordError,
    did_you_mean,
)


class Body:
    """Statements common to every body: build-time `if` and `for`."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.context = frame.context

    def run(self, stmts: list, start: int = 0) -> None:
        """Run `stmts` from `start`; a `return` that ran (early, in an `if` or a `for`)
        ends the body, but no statement may follow one that always returns."""
        for index in range(start, len(stmts)):
            stmt = stmts[index]
            if self.done():
                if index and always_returns(stmts[index - 1]):
                    raise StructureError("nothing may follow 'return'", stmt.span)
                return
            self.context.step(stmt.span)
            try:
                if self.takes_rest(stmt, stmts, index):
                    return
                self.statement(stmt)
            except DSLError as exc:
                raise exc.with_span(stmt.span) from None

    def done(self) -> bool:
        """Whether the body has returned (no statement after runs)."""
        return False

    def takes_rest(self, stmt: Any, stmts: list, index: int) -> bool:
        """Whether this body ran `stmt` and the statements after it itself (`if training:`)."""
        return False

    def statement(self, stmt: Any) -> None:
        if isinstance(stmt, ir.If):
            self.run(stmt.then if self.frame.condition(stmt.if_) else stmt.else_)
        elif isinstance(stmt, ir.For):
            self._loop(stmt)
        else:
            self.other(stmt)

    def _loop(self, stmt: ir.For) -> None:
        items = to_static(self.frame.eval(stmt.in_), stmt.in_.span, modules=True)
        for item in iterate(items, stmt.in_, stmt.for_):
            self.context.step(stmt.span)  # an empty body still costs its iterations
            bind_target(self.frame.scope, stmt.for_, item, stmt.span)
            self.run(stmt.body)
            if self.done():
                return

    def other(self, stmt: Any) -> None:
        raise NotImplementedError


def always_returns(stmt: Any) -> bool:
    """Whether a statement returns on every path (`return`, or an `if` whose arms all do)."""
    if isinstance(stmt, ir.Return):
        return True
    arms = (stmt.then, stmt.else_) if isinstance(stmt, ir.If) else ()
    return bool(arms) and all(arm and always_returns(arm[-1]) for arm in arms)


def _is_value(value: Any) -> bool:
    """Whether a Sequential's `name = ...` binds a build-time value rather than adding a
    child; what is neither (a function, a tensor) is refused as a child would be."""
    return not isinstance(value, Handle | Parts | Val | FunctionRef | MethodRef | Builtin)


def container_handle(node: ir.Container, frame: Frame) -> Handle:
    """A Sequential/ModuleList/ModuleDict with its children, not yet applied."""
    handle = Handle("container", node.span, container=node)
    handle.options = {k: frame.static(v) for k, v in node.options.items()}
    _check_container_options(node, handle.options)
    # Names bound in the body (values, loop variables) are the body's own.
    ContainerBody(handle, frame.child_scope({})).run(node.body)
    return handle


_RUN_MODES = {"ModuleList": ("chain", "parallel"), "ModuleDict": ("parallel", "chain")}
_MERGES = ("cat", "stack", "add")
_OPTIONS = {"Sequential": set(), "ModuleList": {"run", "merge", "dim"}}
_OPTIONS["ModuleDict"] = _OPTIONS["ModuleList"]


def _check_container_options(node: ir.Container, options: dict[str, Any]) -> None:
    allowed = _OPTIONS[node.kind]
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


class ContainerBody(Body):
    """A Sequential/ModuleList/ModuleDict body: each statement adds a child."""

    def __init__(self, handle: Handle, frame: Frame) -> None:
        super().__init__(frame)
        self.handle = handle
        self.kind = handle.container_kind
        self.named: bool | None = None
        self.keys: set[str] = set()

    def other(self, stmt: Any) -> None:
        if isinstance(stmt, ir.Layer):
            self._add(None, self.frame.eval(stmt.layer), stmt)
        elif isinstance(stmt, ir.Let) and stmt.define is None:
            value = self.frame.eval(let_value(stmt, self.frame.scope))
            if _is_value(value) or stmt.op is not None:
                target = stmt.let[0] if len(stmt.let) == 1 else list(stmt.let)
                bind_target(self.frame.scope, target, value, stmt.span)  # `width = c * 2`
                return
            if len(stmt.let) != 1:
                raise StructureError(f"a {self.kind} child has one name", stmt.span)
            name = self.context.expand_name(stmt.let[0], self.frame, stmt.span)
            self._add(name, value, stmt)
        elif isinstance(stmt, ir.InitBlock):  # rules on the container's own tree
            self.handle.init_rules.extend(init_rules_of(self.frame, stmt))
        elif isinstance(stmt, ir.Forward):  # a block's own is taken off its body before
            raise StructureError(
                f"this {self.kind} cannot have a forward of its own: 'forward:' comes last, "
                "at the top level of a container block's body",
                stmt.span,
                hint=f"define 'block Name = {self.kind}:' with the children and then 'forward:', "
                "and use that block here",
            )
        elif isinstance(stmt, ir.Input):
            raise StructureError(
                f"'input' declares a net's inputs; it cannot sit inside a {self.kind}",
                stmt.span,
                hint="declare inputs first in the net's body",
            )
        else:
            what = type(stmt).__name__.lower().replace("decl", "")
            raise StructureError(
                f"a {what} statement cannot sit inside a {self.kind}; its body lists modules",
                stmt.span,
            )

    def _add(self, name: str | None, value: Any, stmt: Any) -> None:
        if not isinstance(value, Handle):
            raise StructureError(
                f"a {self.kind} holds modules, not {kind_of(value)}",
                stmt.span,
                hint="its body lists modules and may bind build-time values ('width = c * 2'); "
                "functions of tensors are applied in a graph body (a block with input and return)",
            )
        if value.name is not None:
            raise StructureError(
                f"'{value.name}' is already a member elsewhere; a module has one place in a {self.kind}",
                stmt.span,
            )
        named = name is not None
        self._check_naming(named, stmt)
        self.named = named
        key = name if name is not None else str(len(self.handle.children))
        if key in self.keys:
            raise DuplicateNameError(f"'{key}' is already a child of this {self.kind}", stmt.span)
        if name is not None:
            check_member_name(name, getattr(torch.nn, self.kind), stmt.span)
        self.keys.add(key)
        self.handle.children.append((key, value))

    def _check_naming(self, named: bool, stmt: Any) -> None:
        if self.kind == "ModuleList" and named:
            raise StructureError(
                "ModuleList children are numbered; they take no names",
                stmt.span,
                hint="use a ModuleDict for named children",
            )
        if self.kind == "ModuleDict" and not named:
            raise StructureError(
                "ModuleDict children need names", stmt.span, hint="write 'name = Layer(...)'"
            )
        if self.named is not None and self.named != named:
            raise StructureError(
                "name every child of a Sequential, or none",
                stmt.span,
                hint="torch numbers unnamed children 0, 1, 2...; mixing both is ambiguous",
            )
