"""`--set KEY=VALUE`: the value read as a literal, then checked against the type of the
parameter's default, so that `--set bilinear=flase` is a mistake and not the string "flase".

Every mistake here is in the command line: a `CommandLineError` (exit 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dsl import ir
from dsl.errors import CommandLineError, DSLError, did_you_mean
from dsl.source import Span
from dsl.syntax.loader import load
from dsl.syntax.parse_net import parse_expression
from dsl.torchlib.registry import REGISTRY


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`--set k=v`: v is a literal (number, string, true/false, list); a bare word is a string."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CommandLineError(f"argument --set: takes KEY=VALUE, not '{item}'")
        out[key.strip()] = _literal(text.strip(), item)
    return out


def _literal(text: str, item: str) -> Any:
    try:
        node = parse_expression(text, Span(file="--set", line=1, col=1))
    except DSLError:
        return text
    if isinstance(node, ir.ListExpr | ir.TupleExpr):
        values = [_literal_node(i, item) for i in node.items]
        return values if isinstance(node, ir.ListExpr) else tuple(values)
    return _literal_node(node, item)


def _literal_node(node: Any, item: str) -> Any:
    if isinstance(node, ir.Const):
        return node.value
    name = ir.dotted(node)  # a bare word, or a qualified layer: torchvision.ops.Permute
    if name is not None:
        return name
    raise CommandLineError(f"argument --set: {item}: the value must be a literal")


# ============================================================================ typed by the default

_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _fits(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return not isinstance(default, str) or isinstance(value, str)


def check_override_types(
    spec: Path, overrides: dict[str, Any], net: str | None = None, *, every_net: bool = False
) -> None:
    """Each value of `overrides` has the type of the default of the parameter it sets, in
    `net` (default: the last one) or, with `every_net`, in each net that declares it."""
    try:
        spec_file, _ = load(spec)
    except DSLError:  # the command reports the spec's own mistakes
        return
    nets = spec_file.nets()
    chosen = [n for n in nets if net is None or n.name == net]
    for node in chosen if every_net or net is not None else chosen[-1:]:
        defaults = {p.name: p.default.value for p in node.params if isinstance(p.default, ir.Const)}
        for key, value in overrides.items():
            if key in defaults and defaults[key] is not None:
                _check_one(key, value, defaults[key])
        _check_layer_types(spec_file, node, overrides)


def _check_layer_types(spec_file: ir.SpecFile, node: ir.NetDef, overrides: dict[str, Any]) -> None:
    """A parameter whose default is a layer or block (`act=GELU`) takes one's name."""
    known = [d.name for d in spec_file.defs] + [n for i in spec_file.imports for n in i.import_]
    for param in node.params:
        default = param.default
        if param.name not in overrides or not isinstance(default, ir.Name):
            continue
        if default.id not in known and REGISTRY.layer(default.id) is None:
            continue
        value = overrides[param.name]
        if isinstance(value, str) and (value in known or REGISTRY.layer(value) is not None):
            continue
        raise CommandLineError(
            f"argument --set: {param.name} takes a layer (its default is {default.id}), not {_text(value)}",
            hint=did_you_mean(str(value), [*REGISTRY.layer_names(), *known])
            or f"e.g. --set {param.name}={default.id}",
        )


def _check_one(key: str, value: Any, default: Any) -> None:
    if _fits(value, default):
        return
    kind = _KINDS.get(type(default), type(default).__name__)
    shown = _text(default)
    hint = did_you_mean(str(value), ["true", "false"]) if isinstance(default, bool) else None
    raise CommandLineError(
        f"argument --set: {key} takes {kind} (its default is {shown}), not {_text(value)}",
        hint=hint or f"e.g. --set {key}={shown}",
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"'{value}'" if isinstance(value, str) else repr(value)
