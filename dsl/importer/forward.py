"""One traced graph -> the statements of a graph body: a node used once is written inside
the expression that uses it; a node used more than once, or one that draws random numbers
(its place in the order matters in training), gets a name."""

from __future__ import annotations

import builtins
import inspect
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from dsl import ir
from dsl.elaborate.builtin_functions import BUILTINS
from dsl.importer.leaves import dotted_expr, literal, same_value
from dsl.importer.report import Finding, Report, node_source
from dsl.records import field, record
from dsl.syntax.printer import KEYWORDS
from dsl.torchlib import catalog
from dsl.torchlib.registry import REGISTRY

BINARY: dict[Callable[..., Any], str] = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
    operator.floordiv: "//", operator.mod: "%", operator.matmul: "@", operator.pow: "**",
    operator.and_: "&", operator.or_: "|", operator.eq: "==", operator.ne: "!=",
    operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">=",
}  # fmt: skip
UNARY: dict[Callable[..., Any], str] = {
    operator.neg: "-", operator.pos: "+", operator.invert: "~", operator.not_: "not",
}  # fmt: skip
# Shape checks: fx records them, a spec checks shapes when it is built.
CHECKS = frozenset({torch._assert, getattr(torch.fx, "_symbolic_trace", torch)._assert_is_none})
_RANDOM = ("dropout", "rrelu", "rand", "bernoulli", "multinomial", "normal", "poisson")
_RANDOM_MODULES = (nn.modules.dropout._DropoutNd, nn.RReLU)


def draws_random(module: nn.Module) -> bool:
    """Whether calling `module` may draw random numbers (in training)."""
    return any(
        isinstance(m, _RANDOM_MODULES) or type(m).__name__ == "StochasticDepth"
        for m in module.modules()
    )


@record
class GraphWriter:
    """Writes one module's graph; `functions` collects the Python functions the spec
    needs registered (fx leaves such as torchvision's `shifted_window_attention`)."""

    module: nn.Module
    name: str
    report: Report
    reserved: set[str]
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    failed: bool = False
    _values: dict[fx.Node, ir.ExprNode] = field(default_factory=dict)
    _used: set[str] = field(default_factory=set)
    _uses: dict[fx.Node, int] = field(default_factory=dict)

    def body(self, graph: fx.Graph) -> tuple[list[str], list[Any]]:
        """The inputs' names and the statements that compute and return the output."""
        inputs: list[str] = []
        stmts: list[Any] = []
        self._values, self._used = {}, set(self.reserved)
        self._uses = self._live_uses(graph)
        for node in graph.nodes:
            if node.op not in ("placeholder", "output") and node not in self._uses:
                continue  # dead: a shape check's operands, an unused size
            if node.op == "placeholder":
                inputs.append(self._fresh(node.name))
                self._values[node] = ir.Name(id=inputs[-1])
            elif node.op == "output":
                stmts.append(ir.Return(return_=self._arg(node.args[0], node)))
            else:
                self._node(node, stmts)
        return inputs, stmts

    def _node(self, node: fx.Node, stmts: list[Any]) -> None:
        expr = self._expression(node)
        if node.op == "get_attr" or (self._uses[node] == 1 and not self._random(node)):
            self._values[node] = expr
            return
        name = self._fresh(node.name)
        stmts.append(ir.Let(let=[name], value=expr))
        self._values[node] = ir.Name(id=name)

    def _live_uses(self, graph: fx.Graph) -> dict[fx.Node, int]:
        """How often each node that the output or a random draw needs is read (a node
        read three times by one call counts three)."""
        uses: dict[fx.Node, int] = {}
        pending = [
            n
            for n in graph.nodes
            if n.op == "output" or (n.op != "placeholder" and self._random(n))
        ]
        pending = [n for n in pending if not (n.op == "call_function" and n.target in CHECKS)]
        seen: set[fx.Node] = set()
        while pending:
            node = pending.pop()
            if node in seen:
                continue
            seen.add(node)
            uses.setdefault(node, 0)
            read: list[fx.Node] = []
            fx.node.map_arg((node.args, node.kwargs), read.append)
            for arg in read:
                uses[arg] = uses.get(arg, 0) + 1
                pending.append(arg)
        return uses

    def _random(self, node: fx.Node) -> bool:
        if node.op == "call_module":
            return draws_random(self.module.get_submodule(str(node.target)))
        label = getattr(node.target, "__name__", str(node.target))
        return any(word in label for word in _RANDOM)

    def _fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self._used or name in KEYWORDS or name in BUILTINS or catalog.function(name):
            name, n = f"{base}_{n}", n + 1
        self._used.add(name)
        return name

    def _expression(self, node: fx.Node) -> ir.ExprNode:
        args = [self._arg(a, node) for a in node.args]
        kwargs = {k: self._arg(v, node) for k, v in node.kwargs.items()}
        if node.op == "get_attr" or node.op == "call_module":
            path = member_path(self.module, str(node.target))
            if node.op == "get_attr":
                return path
            return _whole_list(self.module, ir.Call(func=path, args=args, kwargs=kwargs))
        if node.op == "call_method":
            method = ir.Attr(value=args[0], attr=str(node.target))
            return ir.Call(func=method, args=args[1:], kwargs=kwargs)
        return self._function(node, args, kwargs)

    def _function(
        self, node: fx.Node, args: list[ir.ExprNode], kwargs: dict[str, ir.ExprNode]
    ) -> ir.ExprNode:
        fn = node.target
        if fn in BINARY and len(args) == 2 and not kwargs:
            return ir.BinOp(op=BINARY[fn], left=args[0], right=args[1])  # type: ignore[arg-type]
        if fn in UNARY and len(args) == 1:
            return ir.UnaryOp(op=UNARY[fn], operand=args[0])  # type: ignore[arg-type]
        if fn is operator.getitem:
            return ir.Index(value=args[0], index=args[1])
        if fn is builtins.getattr and len(args) == 2 and isinstance(args[1], ir.Const):
            return ir.Attr(value=args[0], attr=str(args[1].value))
        if isinstance(fn, type) and issubclass(fn, tuple):
            self.report.add(Finding("approximated", fn.__qualname__, self.name,
                node_source(node.meta.get("stack_trace")),
                "a named tuple is returned as a plain tuple (same values, in order)"))  # fmt: skip
            return ir.TupleExpr(items=[*args, *kwargs.values()])
        kwargs = _without_defaults(fn, self._out_of_place(node, kwargs))
        return ir.Call(func=self._callee(fn, node), args=args, kwargs=kwargs)

    def _out_of_place(
        self, node: fx.Node, kwargs: dict[str, ir.ExprNode]
    ) -> dict[str, ir.ExprNode]:
        """`relu(x, inplace=True)` is `relu(x)` where nothing else reads x afterwards."""
        flag = kwargs.get("inplace")
        if not (isinstance(flag, ir.Const) and flag.value is True):
            return kwargs
        first = node.args[0] if node.args else None
        if isinstance(first, fx.Node) and len(first.users) > 1:
            self.failed = True
            self.report.add(Finding("unsupported", f"{node.target}(..., inplace=True)", self.name,
                node_source(node.meta.get("stack_trace")),
                "writes in place into a value that is read again"))  # fmt: skip
        return {k: v for k, v in kwargs.items() if k != "inplace"}

    def _callee(self, fn: Any, node: fx.Node) -> ir.ExprNode:
        name = getattr(fn, "__name__", "")
        if getattr(builtins, name, None) is fn and name in BUILTINS:
            return ir.Name(id=name)
        for spelling in (name, f"F.{name}", f"torch.{name}", f"torch.linalg.{name}"):
            if name and catalog.function(spelling) is fn:
                return dotted_expr(spelling)
        if name and getattr(torch, name, None) is fn and catalog.function(name) is not None:
            return ir.Name(id=name)  # an undocumented twin (`torch.relu` of `F.relu`)
        known = next((k for k, f in REGISTRY.functions.items() if f.fn is fn), None)
        known = known or self._fresh(name or "function")
        self.report.add(
            Finding(
                "registered",
                f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', name)}",
                self.name,
                node_source(node.meta.get("stack_trace")),
                f"a function torch.fx keeps whole; the spec calls it as '{known}': "
                f"dsl.register(fn, name='{known}') before building it",
            )
        )
        self.functions[known] = fn
        return ir.Name(id=known)

    def _arg(self, value: Any, node: fx.Node) -> ir.ExprNode:
        if isinstance(value, fx.Node):
            return self._values[value]
        if isinstance(value, tuple | list):
            items = [self._arg(v, node) for v in value]
            return (
                ir.TupleExpr(items=items) if isinstance(value, tuple) else ir.ListExpr(items=items)
            )
        if isinstance(value, dict):
            return ir.DictExpr(
                keys=[ir.Const(value=k) for k in value],
                values=[self._arg(v, node) for v in value.values()],
            )
        if isinstance(value, slice):
            parts = [
                None if p is None else self._arg(p, node)
                for p in (value.start, value.stop, value.step)
            ]
            return ir.Slice(start=parts[0], stop=parts[1], step=parts[2])
        found = literal(value)
        if found is not None:
            return found
        self.failed = True
        self.report.add(
            Finding(
                "unsupported",
                repr(value),
                self.name,
                node_source(node.meta.get("stack_trace")),
                f"a value of type {type(value).__name__} (argument of {node.format_node()}) "
                "has no spelling in the language",
            )
        )
        return ir.Name(id="UNSUPPORTED")


def _without_defaults(fn: Any, kwargs: dict[str, ir.ExprNode]) -> dict[str, ir.ExprNode]:
    """Keywords fx recorded at their default value (`interpolate(..., antialias=False)`)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return kwargs
    return {
        key: value
        for key, value in kwargs.items()
        if key == "training"  # the mode: kept, so that both modes' graphs align
        or not (
            key in params
            and isinstance(value, ir.Const)
            and same_value(value.value, params[key].default)
        )
    }


def _whole_list(module: nn.Module, call: ir.Call) -> ir.Call:
    """`h[1](h[0](x))` over all of a ModuleList `h` is `h(x)`: a ModuleList runs as a chain."""
    func = call.func
    if not (isinstance(func, ir.Index) and isinstance(func.value, ir.Name)):
        return call
    container = getattr(module, func.value.id, None)
    if not isinstance(container, nn.ModuleList) or type(container) is not nn.ModuleList:
        return call
    inner: ir.ExprNode = call
    for k in reversed(range(len(container))):
        if not (
            isinstance(inner, ir.Call)
            and len(inner.args) == 1
            and not inner.kwargs
            and inner.func == ir.Index(value=func.value, index=ir.Const(value=k))
        ):
            return call
        inner = inner.args[0]
    return ir.Call(func=func.value, args=[inner])


def member_path(module: nn.Module, target: str) -> ir.ExprNode:
    """`layer1.0.conv1` as `layer1[0].conv1`: a container's children by brackets, a
    ModuleDict's and named ones' as strings."""
    parts = target.split(".")
    node: ir.ExprNode = ir.Name(id=parts[0])
    current = getattr(module, parts[0], None)
    for part in parts[1:]:
        if isinstance(current, nn.Sequential | nn.ModuleList | nn.ModuleDict):
            key = int(part) if part.isdigit() and not isinstance(current, nn.ModuleDict) else part
            node = ir.Index(value=node, index=ir.Const(value=key))
        else:
            node = ir.Attr(value=node, attr=part)
        current = getattr(current, part, None)
    return node
