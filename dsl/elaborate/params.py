"""Binding a block's or net's parameters: from a call, or from overrides (`params=`,
`--set`), with defaults evaluated in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dsl import ir
from dsl.elaborate.evaluate import Elaboration, Frame
from dsl.elaborate.layer_types import overridden
from dsl.errors import (
    ArgumentError,
    ArityError,
    Note,
    UnknownKeywordError,
    did_you_mean,
)
from dsl.syntax.loader import Unit


def bind_params(
    elab: Elaboration,
    node: ir.Definition,
    call: ir.Call | None,
    caller: Frame | None,
    unit: Unit,
    overrides: dict[str, Any] | None = None,
    read: Callable[[ir.ExprNode], Any] | None = None,
) -> dict[str, Any]:
    """Block/net parameters from a call (or overrides), with defaults evaluated in order;
    `read` evaluates the call's arguments (default: the caller's build-time values)."""
    given = {}
    if call is not None and caller is not None:
        given = _given_by_call(node, call, read or caller.static)
    names = [p.name for p in node.params]
    for key, value in (overrides or {}).items():
        if key not in names:
            raise _no_parameter(node, key, node.span)
        given[key] = value
    scope: dict[str, Any] = {}
    frame = Frame(elab, unit, None, scope)
    for param in node.params:
        if param.name in (overrides or {}):
            default = frame.static(param.default) if param.default is not None else None
            value = given[param.name]
            scope[param.name] = overridden(
                param.name, value, default, elab.context, unit, param.span
            )
        elif param.name in given:
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


def _given_by_call(
    node: ir.Definition, call: ir.Call, read: Callable[[ir.ExprNode], Any]
) -> dict[str, Any]:
    params = node.params
    if len(call.args) > len(params):
        raise ArityError(
            f"{node.name} takes {len(params)} argument{'s' if len(params) != 1 else ''}, {len(call.args)} were given",
            call.args[len(params)].span or call.span,
            notes=[Note(f"{node.name} is defined here", node.span)],
        )
    given = {param.name: read(arg) for param, arg in zip(params, call.args)}
    names = [p.name for p in params]
    for key, value in call.kwargs.items():
        if key not in names:
            raise _no_parameter(node, key, call.keyword_spans()[key])
        if key in given:
            raise ArgumentError(f"{node.name} gets '{key}' twice", value.span)
        given[key] = read(value)
    return given


def _no_parameter(node: ir.Definition, key: str, span: Any) -> UnknownKeywordError:
    names = [p.name for p in node.params]
    return UnknownKeywordError(
        f"{node.name} has no parameter '{key}'",
        span,
        hint=did_you_mean(key, names) or f"its parameters are: {', '.join(names) or 'none'}",
    )
