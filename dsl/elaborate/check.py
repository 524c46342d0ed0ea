"""Checks that need no shapes, over every definition of a file: names that are never
defined, layers that do not exist, keyword arguments a layer does not take.

Elaboration finds these too, but only on the paths a net takes with its parameters; this
pass also covers blocks no net uses yet and branches not taken, which is what `dsl validate`
promises for a library of blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dsl import ir
from dsl.elaborate.builtin_functions import BUILTINS, MATH, MATH_CONSTANTS
from dsl.elaborate.functions import def_body_errors
from dsl.errors import (
    DSLError,
    DuplicateNameError,
    InitError,
    Note,
    UndefinedValueError,
    UnknownKeywordError,
    UnknownLayerError,
    did_you_mean,
)
from dsl.source import Span
from dsl.syntax.loader import Unit
from dsl.torchlib.init import INITIALISERS
from dsl.torchlib.registry import REGISTRY, refusal_hint, unknown_function

_RECIPES = ("resnet", "vgg", "transformer", "zero_init_residual", "torch_default")


def check_unit(unit: Unit) -> list[DSLError]:
    errors: list[DSLError] = []
    for definition in unit.spec.defs:
        errors.extend(_check_definition(definition, unit))
    return errors


def _check_definition(definition: ir.Definition, unit: Unit) -> list[DSLError]:
    body = definition.body.body if isinstance(definition.body, ir.Container) else definition.body
    defined = {p.name for p in definition.params} | set(_defined_names(body))
    if not isinstance(definition.body, ir.Container) and definition.kind != "def":
        defined.add("training")  # the module's mode, in graph bodies (dsl.elaborate.training)
        defined.add("set")  # set("member.layer", k=v) before forward (dsl.elaborate.net_settings)
    errors: list[DSLError] = []
    if isinstance(definition, ir.FuncDef):
        errors.extend(def_body_errors(definition))
    if definition.base is not None:
        defined |= {"freeze", "unfreeze", "set"}  # a derived net's body changes its base
        errors.extend(_check_expr(definition.base, defined, unit))
    for param in definition.params:
        if param.default is not None:
            errors.extend(_check_expr(param.default, defined, unit))
    for stmt in _walk(body):
        errors.extend(_check_stmt(stmt, defined, unit))
    errors.extend(_hidden_parameters(definition.params, body, unit))
    if isinstance(definition.body, ir.Container):
        for value in definition.body.options.values():
            errors.extend(_check_expr(value, defined, unit))
    return errors


def _walk(stmts: list) -> Iterator[Any]:
    for stmt in stmts:
        yield stmt
        for field in ("then", "else_", "body", "forward"):
            inner = getattr(stmt, field, None)
            if isinstance(inner, list):
                yield from _walk(inner)
        for field in ("value", "define", "layer", "return_"):
            inner = getattr(stmt, field, None)
            if isinstance(inner, ir.Container):
                yield from _walk(inner.body)


def _defined_names(stmts: list) -> Iterator[str]:
    for stmt in _walk(stmts):
        if isinstance(stmt, ir.Input):
            yield stmt.input
        elif isinstance(stmt, ir.Let):
            yield from stmt.let
            if (
                stmt.define is not None
                and isinstance(stmt.value, ir.Call)
                and isinstance(stmt.value.func, ir.Name)
            ):
                yield stmt.value.func.id
        elif isinstance(stmt, ir.Return) and stmt.define is not None:
            if isinstance(stmt.return_, ir.Call) and isinstance(stmt.return_.func, ir.Name):
                yield stmt.return_.func.id
        elif isinstance(stmt, ir.TensorDecl):
            yield stmt.name
        elif isinstance(stmt, ir.For):
            yield from ir.target_names(stmt.for_)
        elif isinstance(stmt, ir.Forward):  # the container and its mode, in its own forward
            yield from ("self", "training")


def _check_stmt(stmt: Any, defined: set[str], unit: Unit) -> list[DSLError]:
    exprs: list[ir.ExprNode] = []
    shape = getattr(stmt, "shape", None) if isinstance(stmt, ir.Input | ir.TensorDecl) else None
    clashes = _dimension_clashes(shape or [], defined, unit)
    if clashes:
        return clashes
    if isinstance(stmt, ir.Let):
        exprs = [stmt.value] + ([stmt.define] if stmt.define is not None else [])
    elif isinstance(stmt, ir.Layer):
        exprs = [stmt.layer]
    elif isinstance(stmt, ir.Return):
        exprs = [stmt.return_] + ([stmt.define] if stmt.define is not None else [])
    elif isinstance(stmt, ir.If):
        exprs = [stmt.if_]
    elif isinstance(stmt, ir.For):
        exprs = [stmt.in_]
    elif isinstance(stmt, ir.TensorDecl) and stmt.shape is None:  # a computed buffer
        exprs = [*([stmt.init] if stmt.init is not None else []), *stmt.options.values()]
    elif isinstance(stmt, ir.TensorDecl) and stmt.shape is not None:
        exprs = [*stmt.shape, *stmt.options.values()]
        if stmt.init is not None:
            exprs.extend(_initialiser_args(stmt.init))
            return [
                *_check_initialiser(stmt.init),
                *[e for x in exprs for e in _check_expr(x, defined, unit)],
            ]
    errors: list[DSLError] = []
    for expr in exprs:
        errors.extend(_check_expr(expr, defined, unit))
    return errors


def _hidden_parameters(params: list[ir.DefParam], body: list, unit: Unit) -> list[DSLError]:
    """`dropout = Dropout(dropout)`: a member named like a parameter hides the parameter
    for the rest of the body, where `dropout` then names the layer."""
    by_name = {param.name: param for param in params}
    return [
        DuplicateNameError(
            f"the member '{name}' hides the parameter '{name}'",
            span,
            notes=[Note("the parameter is declared here", by_name[name].span)],
            hint=f"give the member another name (e.g. '{name}_layer'), or the parameter "
            f"(e.g. '{name}_p')",
        )
        for stmt in _walk(body)
        for name, span in _members(stmt, unit)
        if name in by_name
    ]


def _members(stmt: Any, unit: Unit) -> Iterator[tuple[str, Span]]:
    """The members a statement defines, each with where its name is written."""
    applied = isinstance(stmt, ir.Let | ir.Return) and stmt.define is not None
    value = (stmt.return_ if isinstance(stmt, ir.Return) else stmt.value) if applied else None
    if isinstance(value, ir.Call) and isinstance(value.func, ir.Name):
        yield value.func.id, value.func.span
    elif isinstance(stmt, ir.Let) and stmt.define is None and len(stmt.let) == 1:
        built = stmt.value
        if isinstance(built, ir.Container) or (
            isinstance(built, ir.Call)
            and isinstance(built.func, ir.Name)
            and (_is_module_maker(built.func.id, unit) or REGISTRY.layer(built.func.id) is not None)
        ):
            name, at = stmt.let[0], stmt.span
            yield name, Span(at.file, at.line, at.col, at.line, at.col + len(name))


def _is_module_maker(name: str, unit: Unit) -> bool:
    """A net or block (a def computes a value)."""
    return name in unit.names and unit.names[name].node.kind != "def"


def _dimension_clashes(shape: list[Any], defined: set[str], unit: Unit) -> list[DSLError]:
    """`block B:` with `input x: [B, 8]`: a symbolic size named like a definition reads the
    definition, not a size."""
    errors: list[DSLError] = []
    for dim in shape:
        if isinstance(dim, ir.Name) and dim.id not in defined and dim.id in unit.names:
            node = unit.names[dim.id].node
            kind = node.kind
            errors.append(
                DuplicateNameError(
                    f"'{dim.id}' is a {kind}'s name, so it cannot also stand for a size",
                    dim.span,
                    notes=[Note(f"the {kind} '{dim.id}' is defined here", node.span)],
                    hint=f"rename the {kind} or the size: sizes are read as names defined nowhere else",
                )
            )
    return errors


def _initialiser_args(expr: ir.ExprNode) -> list[ir.ExprNode]:
    if isinstance(expr, ir.Call):
        return [*expr.args, *expr.kwargs.values()]
    return []


def _check_initialiser(expr: ir.ExprNode) -> list[DSLError]:
    if (
        isinstance(expr, ir.Call)
        and isinstance(expr.func, ir.Name)
        and expr.func.id not in INITIALISERS
    ):
        hint = (
            did_you_mean(expr.func.id, INITIALISERS) or f"initialisers: {', '.join(INITIALISERS)}"
        )
        return [InitError(f"unknown initialiser '{expr.func.id}'", expr.func.span, hint=hint)]
    return []


def _check_expr(expr: Any, defined: set[str], unit: Unit) -> list[DSLError]:
    if isinstance(expr, ir.Comprehension):  # its loop names are its own
        defined = defined | {n for c in expr.clauses for n in ir.target_names(c.for_)}
    if isinstance(expr, ir.Container):
        return [e for v in expr.options.values() for e in _check_expr(v, defined, unit)]
    if isinstance(expr, ir.Name):
        return _check_name(expr, defined, unit)
    if isinstance(expr, ir.Attr):
        dotted = ir.dotted(expr)
        if dotted and dotted.split(".")[0] not in defined:
            if REGISTRY.function(dotted) is not None:
                return []
            if (unknown := unknown_function(dotted, expr.span)) is not None:
                return [unknown]
        if dotted and (torch_layer := _torch_nn_layer(dotted, expr, defined)) is not None:
            return [torch_layer]
        if dotted and dotted.split(".")[0] == "torchvision":
            if REGISTRY.layer(dotted) is None:
                return [UnknownLayerError(f"unknown layer '{dotted}'", expr.span)]
            return []
        return _check_expr(expr.value, defined, unit)
    errors: list[DSLError] = []
    children = list(_children(expr))
    own: set[str] = set()
    if isinstance(expr, ir.Call):
        errors.extend(_check_keywords(expr, defined, unit))
        if isinstance(expr.func, ir.Name):
            errors.extend(_check_name(expr.func, defined, unit, called=True))
            children = [c for c in children if c is not expr.func]
            own = _own_input_sizes(expr.func.id, defined, unit) - defined
    # the layer's own input sizes are defined in its arguments only: added for them and
    # taken out again (a copy of `defined` per call made a body of n layers cost n^2)
    defined |= own
    try:
        for child in children:
            errors.extend(_check_expr(child, defined, unit))
    finally:
        defined -= own
    return errors


def _torch_nn_layer(dotted: str, expr: ir.Attr, defined: set[str]) -> DSLError | None:
    """`nn.Conv2d` (or `torch.nn.Conv2d`): layers are named by their class name alone."""
    prefix, _, leaf = dotted.rpartition(".")
    if prefix not in ("nn", "torch.nn") or "nn" in defined or REGISTRY.layer(leaf) is None:
        return None
    return UnknownLayerError(
        f"unknown layer '{dotted}'",
        expr.span,
        hint=f"write '{leaf}': torch.nn layers are named by their class name alone",
    )


def _own_input_sizes(name: str, defined: set[str], unit: Unit) -> set[str]:
    """A layer's arguments may name its own inferred input size: `Conv2d(in_channels,
    kernel_size=3, groups=in_channels)` is a depthwise convolution."""
    layer = None if name in defined or name in unit.names else REGISTRY.layer(name)
    return set(layer.input_size_params) if layer is not None else set()


def _check_name(
    expr: ir.Name, defined: set[str], unit: Unit, called: bool = False
) -> list[DSLError]:
    name = expr.id
    if (
        "{" in name
        or name in defined
        or name in unit.names
        or _known(name)
        or _made_by_template(name, defined)
    ):
        return []
    if name[:1].isupper():
        candidates = [*REGISTRY.layer_names(), *unit.names]
        return [
            UnknownLayerError(
                f"unknown layer '{name}'",
                expr.span,
                hint=_KERAS_LAYERS.get(name)
                or did_you_mean(name, candidates)
                or "layers are torch.nn classes, blocks, or names registered with @dsl.register",
            )
        ]
    if called:
        candidates = [*REGISTRY.functions, *BUILTINS, *defined]
        return [
            UndefinedValueError(
                f"unknown function '{name}'",
                expr.span,
                hint=refusal_hint(name)
                or did_you_mean(name, candidates)
                or "functions are torch ops such as cat, relu, softmax, or names registered with @dsl.register",
            )
        ]
    candidates = [*defined, *REGISTRY.functions, *BUILTINS, *unit.names]
    return [
        UndefinedValueError(
            f"'{name}' is not defined here", expr.span, hint=did_you_mean(name, candidates)
        )
    ]


# Keras's names for torch's layers, said where a spec uses one.
_KERAS_LAYERS = {
    keras: f"Keras's '{keras}' is '{torch}' here{note}"
    for keras, torch, note in (
        ("Dense", "Linear", " (in_features is read from the input: Linear(10))"),
        ("BatchNormalization", "BatchNorm2d", " (or BatchNorm1d for [N, C] and [N, C, L])"),
        ("MaxPooling2D", "MaxPool2d", ""),
        ("AveragePooling2D", "AvgPool2d", ""),
        ("GlobalAveragePooling2D", "AdaptiveAvgPool2d", ": AdaptiveAvgPool2d(1), then Flatten()"),
        ("Conv2DTranspose", "ConvTranspose2d", ""),
        ("Activation", "the activation's own class", ": ReLU(), GELU(), Sigmoid(), ..."),
        ("Reshape", "Unflatten", ", or x.view(...) in a graph body"),
        ("Concatenate", "cat", ": cat([a, b], dim=1) in a graph body"),
    )
}


def _made_by_template(name: str, defined: set[str]) -> bool:
    """`layer1` may come from `layer{stage + 1} = ...` in a loop."""
    for template in defined:
        if "{" in template:
            pattern = ".+".join(re.escape(part) for part in re.split(r"\{[^{}]*\}", template))
            if re.fullmatch(pattern, name):
                return True
    return False


def _known(name: str) -> bool:
    return (
        REGISTRY.layer(name) is not None
        or REGISTRY.function(name) is not None
        or name in BUILTINS
        or name in MATH_CONSTANTS
        or name == MATH
    )


def _check_keywords(call: ir.Call, defined: set[str], unit: Unit) -> list[DSLError]:
    if not isinstance(call.func, ir.Name) or call.func.id in defined or call.func.id in unit.names:
        return []
    layer = REGISTRY.layer(call.func.id)
    if layer is None or layer.accepts_var_kwargs:
        return []
    names = layer.keyword_names
    return [
        UnknownKeywordError(
            f"{layer.name} has no argument '{key}'",
            call.keyword_spans()[key],
            hint=did_you_mean(key, names) or f"its arguments are: {', '.join(names)}",
        )
        for key, value in call.kwargs.items()
        if key not in names
    ]


def _children(expr: Any) -> Iterator[Any]:
    for name in type(expr).fields:
        if name == "span":
            continue
        value = getattr(expr, name)
        if isinstance(value, ir.Node):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, ir.Node))
        elif isinstance(value, dict):
            yield from (v for v in value.values() if isinstance(v, ir.Node))
