"""pydantic's validation errors -> one `SchemaError` at the place in the YAML that caused
it, worded for the writer of the spec."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from dsl import ir
from dsl.errors import SchemaError, did_you_mean
from dsl.source import Span
from dsl.syntax.yaml_schema import yaml_key
from dsl.syntax.yaml_values import describe, span_of

_STATEMENT_MODELS: dict[str, type[ir.Node]] = {
    "input": ir.Input,
    "let": ir.Let,
    "layer": ir.Layer,
    "return": ir.Return,
    "param": ir.ParamDecl,
    "buffer": ir.BufferDecl,
    "if": ir.If,
    "for": ir.For,
    "init": ir.InitBlock,
    "forward": ir.Forward,
}
_DEFINITION_MODELS: dict[str, type[ir.Node]] = {"net": ir.NetDef, "block": ir.BlockDef}
_LIST_ITEM_MODELS: dict[str, type[ir.Node]] = {
    "imports": ir.Import,
    "params": ir.DefParam,
    "init": ir.InitRule,
}


def schema_error(exc: ValidationError, data: dict) -> SchemaError:
    # A union reports one error per branch; the one that got furthest into the data is
    # the one the writer meant.
    located = [(_walk(data, error["loc"]), error) for error in exc.errors(include_url=False)]
    steps, error = max(located, key=lambda item: len(item[0]))
    value = steps[-1][1]
    # The mapping that holds the offending key: the value itself when the key is missing.
    holder = (
        len(steps) - 1 if error["type"] == "missing" and isinstance(value, dict) else _holder(steps)
    )
    mapping = steps[holder][1]
    span = span_of(value) or span_of(mapping)
    field = next((seg for seg in reversed(error["loc"]) if isinstance(seg, str)), None)
    kind = error["type"]
    if _list_key(steps, holder) == "params" and kind in ("missing", "extra_forbidden"):
        return SchemaError(
            "a parameter is written as a name, or as {name: default}",
            span_of(mapping),
            hint="write params: [out, {mid: 64}]",
        )
    if kind == "missing":
        return SchemaError(f"missing key '{field}'", span_of(mapping))
    if kind == "extra_forbidden":
        key_span = next((span_of(k) for k in mapping if k == field), span)
        return SchemaError(
            f"unknown key '{field}'",
            key_span,
            hint=did_you_mean(str(field), _allowed_keys(steps, holder)),
        )
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return _tag_error(value, _list_key(steps, len(steps) - 1), span)
    where = f"'{field}': " if field else ""
    return SchemaError(f"{where}{_plain_message(error)}", span)


def _walk(data: Any, loc: tuple) -> list[tuple[Any, Any]]:
    """Follow an error's location through the raw data, as (key, value) steps. Segments that
    name no place in it (union tags such as 'let', branch names such as 'Container') are
    skipped."""
    steps: list[tuple[Any, Any]] = [(None, data)]
    after_index = False
    for segment in loc:
        current = steps[-1][1]
        if (
            isinstance(current, dict)
            and segment in current
            and not (after_index and segment == _tag(current))
        ):
            steps.append((segment, current[segment]))
        elif isinstance(current, list) and isinstance(segment, int) and 0 <= segment < len(current):
            steps.append((segment, current[segment]))
            after_index = True
            continue
        after_index = False
    return steps


def _holder(steps: list[tuple[Any, Any]]) -> int:
    """The index of the innermost mapping that holds the last step."""
    return next((i for i in range(len(steps) - 2, -1, -1) if isinstance(steps[i][1], dict)), 0)


def _list_key(steps: list[tuple[Any, Any]], index: int) -> Any:
    """The key of the list that holds step `index` ('defs', 'params', ...), if it is in one."""
    return steps[index - 1][0] if index >= 2 and isinstance(steps[index][0], int) else None


def _tag(mapping: dict) -> str | None:
    return next(
        (key for key in mapping if key in _STATEMENT_MODELS or key in _DEFINITION_MODELS), None
    )


def _allowed_keys(steps: list[tuple[Any, Any]], holder: int) -> list[str]:
    mapping = steps[holder][1]
    tag = _tag(mapping)
    if holder == 0:
        model: type[ir.Node] | None = ir.SpecFile
    elif tag is not None:
        model = _STATEMENT_MODELS.get(tag) or _DEFINITION_MODELS[tag]
    else:
        model = _LIST_ITEM_MODELS.get(str(_list_key(steps, holder)))
    if model is None:
        return []
    return [yaml_key(name) for name in model.fields if name not in ir.POSITION_FIELDS]


def _tag_error(value: Any, list_key: Any, span: Span) -> SchemaError:
    given = [k for k in value if k != "__span__"] if isinstance(value, dict) else []
    if list_key == "defs":
        expected, what = list(_DEFINITION_MODELS), "a definition"
    else:
        expected, what = list(_STATEMENT_MODELS), "a statement"
    # Point at the misspelt key where one looks like a statement's key.
    hint, key_span = None, span
    for key in given:
        hint = did_you_mean(str(key), expected)
        if hint:
            key_span = span_of(key) or span
            break
    return SchemaError(
        f"{what} is a mapping with one of the keys {', '.join(expected)}; found {describe(value)}",
        key_span,
        hint=hint,
    )


def _plain_message(error: ErrorDetails) -> str:
    if error["type"] == "list_type":
        return f"expected a list, found {describe(error['input'])}"
    if error["type"] == "string_type":
        return f"expected a string, found {describe(error['input'])}"
    return str(error["msg"])
