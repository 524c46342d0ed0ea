"""`Context`: the state of one elaboration (budgets, caches, the weights statements met)
and the lookups that need nothing but it. It calls nothing back: what recurses (blocks,
containers) is `dsl.elaborate.elaborator.Elaborator`'s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dsl import ir
from dsl.elaborate import limits
from dsl.elaborate.builtin_functions import BUILTINS, MATH_CONSTANTS
from dsl.elaborate.values import (
    BlockRef,
    Builtin,
    FunctionRef,
    LayerRef,
    StaticScope,
    frozen_key,
    shared_meta_module,
)
from dsl.plan import ModuleSpec, WeightsSpec
from dsl.source import Span
from dsl.syntax.loader import Library, Unit
from dsl.syntax.parse_net import parse_expression
from dsl.torchlib import shapes
from dsl.torchlib.registry import REGISTRY, Layer

# Builds a resolved module on the meta device, as the compiler will build it for real
# (dsl.build.compile.build_on_meta): derived nets follow shapes through it. The build
# layer passes it in; elaborate never imports build.
MetaBuild = Callable[[ModuleSpec], torch.nn.Module]
_MISSING = object()


class Context:
    def __init__(
        self, library: Library, symbols: shapes.Symbols, meta_build: MetaBuild | None = None
    ) -> None:
        self.library = library
        self.symbols = symbols
        self.meta_build = meta_build
        self.stack: list[tuple[str, Span]] = []  # the blocks being elaborated, outermost first
        self.budget = limits.WorkBudget()
        self.sources = 0  # parts(...) sources met so far
        self.outputs: dict[tuple, Any] = {}  # (meta module, input signatures) -> output meta
        self.weights: list[WeightsSpec] = []
        self._meta_modules: dict[tuple, tuple[torch.nn.Module, tuple[int, int]]] = {}
        self._meta_models: dict[int, tuple[ModuleSpec, torch.nn.Module]] = {}  # by spec
        self._templates: dict[str, list[tuple[str, ir.ExprNode | None]]] = {}
        self._names: dict[tuple[int, str], Any] = {}  # (unit, name) -> what lookup found
        self._arg_spans: dict[int, dict[int | str, Span]] = {}  # by call
        self._names_read: dict[int, tuple[str, ...] | None] = {}  # by call
        # Every lookup (file, name, what it found), while kept elaborations are recorded
        # (dsl.elaborate.reuse).
        self.reads: list[tuple[Unit, str, Any]] | None = None

    def meta_module(
        self, layer: Layer, bound: dict[str, Any], span: Span
    ) -> tuple[torch.nn.Module, tuple[int, int]]:
        """One meta instance per distinct layer and arguments, with its parameter and
        buffer element counts: shapes and limits need no more."""
        self.budget.spend(limits.LAYER_COST, span, f"a {layer.name}")
        key = (layer.name, frozen_key(bound))
        found = self._meta_modules.get(key)
        if found is None:
            found = self._meta_modules[key] = shared_meta_module(layer, key[1], bound, span)
        return found

    def meta_model(self, spec: ModuleSpec) -> torch.nn.Module:
        """A meta copy of a resolved module, built once: `parts(Net())` and a derived net
        applied as a layer follow shapes through the copy its surgery already made."""
        found = self._meta_models.get(id(spec))
        if found is None:
            assert self.meta_build is not None  # a net spec is resolved with it
            found = self._meta_models[id(spec)] = (spec, self.meta_build(spec))
        return found[1]

    def keep_meta_model(self, spec: ModuleSpec, model: torch.nn.Module) -> None:
        """`model` is `spec` built on meta (the spec is kept with it, so its id stays its own)."""
        self._meta_models[id(spec)] = (spec, model)

    def lookup(self, name: str, unit: Unit) -> Any:
        """What a name not in scope refers to in `unit` (None if nothing); a block body
        looks up the same few names each time it is elaborated."""
        key = (id(unit), name)
        found = self._names.get(key, _MISSING)
        if found is _MISSING:
            found = self._names[key] = _find(name, unit)
        if self.reads is not None:
            self.reads.append((unit, name, found))
        return found

    def expand_name(self, text: str, scope: StaticScope, span: Span) -> str:
        """Fill a templated name's `{expr}` parts: `down{i + 1}` -> `down2`."""
        if "{" not in text:
            return text
        if text not in self._templates:
            self._templates[text] = [
                (lit, parse_expression(src, span) if src else None)
                for lit, src in _split_template(text)
            ]
        out = []
        for literal, expr in self._templates[text]:
            out.append(literal)
            if expr is not None:
                out.append(str(scope.static(expr)))
        return "".join(out)

    def arg_spans(self, call: ir.Call) -> dict[int | str, Span]:
        """Where each argument of a call is written (positional index or keyword)."""
        found = self._arg_spans.get(id(call))
        if found is None:
            found = {i: a.span for i, a in enumerate(call.args)}
            found.update({k: v.span for k, v in call.kwargs.items()})
            self._arg_spans[id(call)] = found
        return found

    def names_read(self, call: ir.Call) -> tuple[str, ...] | None:
        """The names a call's arguments read; None where one is templated (`down{i}`) or
        an argument holds a container, whose body may read any name."""
        key = id(call)
        if key not in self._names_read:
            self._names_read[key] = _names_read([*call.args, *call.kwargs.values()])
        return self._names_read[key]

    def step(self, span: Span) -> None:
        self.budget.spend(limits.STATEMENT_COST, span, "a statement")


def _find(name: str, unit: Unit) -> Any:
    if name in unit.names:
        return BlockRef(unit.names[name])
    layer = REGISTRY.layer(name)
    if layer is not None:
        return LayerRef(layer)
    if name in BUILTINS:
        return Builtin(name, BUILTINS[name])
    if name in MATH_CONSTANTS:
        return MATH_CONSTANTS[name]
    function = REGISTRY.function(name)
    if function is not None:
        return FunctionRef(function)
    return None


def _names_read(exprs: list[ir.Node]) -> tuple[str, ...] | None:
    names: dict[str, None] = {}
    stack = list(exprs)
    while stack:
        node = stack.pop()
        if isinstance(node, ir.Container) or (isinstance(node, ir.Name) and "{" in node.id):
            return None
        if isinstance(node, ir.Name):
            names[node.id] = None
        stack.extend(node.children())
    return tuple(names)


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
