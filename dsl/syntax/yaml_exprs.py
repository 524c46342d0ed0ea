"""The YAML spelling of expressions -> IR nodes: scalars, lists, `{Callee: args}` mappings,
containers and `${...}` strings in `.net` syntax (see docs/yaml.md). The YAML schema's
validators (dsl/syntax/yaml_schema.py) call these through the validation context,
`SPELLING`."""

from __future__ import annotations

import functools
from typing import Any, cast

from pydantic import ValidationError

from dsl import ir
from dsl.errors import DSLError, SchemaError
from dsl.source import NO_SPAN, Span
from dsl.syntax.parse_net import parse_expression
from dsl.syntax.yaml_schema import MODELS, YAMLSpelling, to_ir
from dsl.syntax.yaml_schema_errors import schema_error
from dsl.syntax.yaml_values import describe, span_of


def expr_from_yaml(value: Any) -> ir.ExprNode:
    """The YAML spelling of an expression -> its IR node (IR nodes pass through)."""
    if isinstance(value, ir.Node):
        return cast(ir.ExprNode, value)
    if value is None or isinstance(value, bool):
        return ir.Const(value=value)
    if isinstance(value, int):
        return ir.Const(value=int(value), span=span_of(value))
    if isinstance(value, float):
        return ir.Const(value=float(value), span=span_of(value))
    if isinstance(value, str):
        return _expr_from_str(value)
    if isinstance(value, list):
        return ir.ListExpr(
            items=[_expr_within(item, span_of(value)) for item in value], span=span_of(value)
        )
    if isinstance(value, dict):
        return _expr_from_mapping(value)
    raise SchemaError(f"expected a value, found {describe(value)}", span_of(value))


def _expr_within(value: Any, span: Span) -> ir.ExprNode:
    """An item of a list or mapping; null and booleans carry no position, so they take the
    position of what holds them."""
    node = expr_from_yaml(value)
    return node if node.span else node.replace(span=span)


def dim_from_yaml(value: Any) -> ir.ExprNode:
    """A shape entry: like an expression, except that a bare identifier names a symbolic size."""
    if isinstance(value, str) and ir.IDENTIFIER.fullmatch(value):
        return ir.Name(id=str(value), span=span_of(value))
    return expr_from_yaml(value)


def stmts_from_yaml(value: Any) -> Any:
    """A list of statements; each is validated by pydantic through its key."""
    if isinstance(value, list) or not span_of(value):
        # A value without a position (null, a boolean) is left to pydantic, whose error
        # carries the location of the key that holds it.
        return value
    raise SchemaError(
        f"expected a list of statements, found {describe(value)}",
        span_of(value),
        hint="write each statement as a '- ' item",
    )


def _expr_from_str(text: str) -> ir.ExprNode:
    span = span_of(text)
    if text.startswith("${") and text.endswith("}"):
        inner = (
            Span(
                file=span.file,
                line=span.line,
                col=span.col + 2,
                end_line=span.end_line,
                end_col=span.end_col,
            )
            if span
            else NO_SPAN
        )
        return expression_at(text[2:-1], inner)
    return ir.Const(value=str(text), span=span)


_ORIGIN = Span(file="", line=1, col=1)


@functools.lru_cache(maxsize=4096)
def _expression_at_origin(text: str) -> ir.ExprNode:
    return parse_expression(text, _ORIGIN)


def expression_at(text: str, span: Span) -> ir.ExprNode:
    """`parse_expression(text, span)`, parsing each distinct text once: a spec repeats the
    same few `${...}` many times, and moving a parsed tree costs far less than parsing."""
    if not span:
        return parse_expression(text)
    try:
        tree = _expression_at_origin(text)
    except DSLError:
        return parse_expression(text, span)  # raises the error where it was written
    return _moved(tree, span)


def _moved(value: Any, origin: Span) -> Any:
    """A tree parsed at line 1, column 1, as if it had been parsed at `origin`."""
    if isinstance(value, ir.Node):
        fields = value.__dict__.items()
        return value.replace(**{name: _moved(field, origin) for name, field in fields})
    if isinstance(value, Span):
        return _moved_span(value, origin)
    if isinstance(value, list):
        return [_moved(item, origin) for item in value]
    if isinstance(value, dict):
        return {key: _moved(item, origin) for key, item in value.items()}
    return value


def _moved_span(span: Span, origin: Span) -> Span:
    if not span:  # a node the parser could not place
        return Span(file=origin.file)
    return Span(
        file=origin.file,
        line=span.line + origin.line - 1,
        # Only the first line starts at the origin's column.
        col=span.col + (origin.col - 1 if span.line == 1 else 0),
        end_line=span.end_line + origin.line - 1,
        end_col=span.end_col + (origin.col - 1 if span.end_line == 1 else 0),
    )


def _expr_from_mapping(mapping: dict) -> ir.ExprNode:
    span = mapping.get("__span__", NO_SPAN)
    keys = [key for key in mapping if key != "__span__"]
    if len(keys) != 1:
        raise SchemaError(
            f"a value written as a mapping has exactly one key, its callee; this one has {len(keys)}",
            span,
            hint="write a call as {Conv2d: [64]} or {Conv2d: {args: [64], kernel_size: 3}}",
        )
    key = keys[0]
    if key in ir.CONTAINER_KINDS:
        return _container(str(key), mapping[key], span)
    return _call(key, mapping[key], span)


def _container(kind: str, value: Any, span: Span) -> ir.Container:
    if value is None or isinstance(value, list):
        body, options = value or [], {}
    elif isinstance(value, dict):
        body = value.get("body", [])
        options = _keywords({k: v for k, v in value.items() if k != "body"}, span)
    else:
        raise SchemaError(
            f"a {kind} holds a list of statements, or a mapping of options with 'body'",
            span_of(value) or span,
            hint=f"write {{{kind}: [...]}} or {{{kind}: {{run: parallel, body: [...]}}}}",
        )
    return validate(
        ir.Container, {"kind": kind, "options": options, "body": body, "__span__": span}
    )


def container_schema(generated: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a container as `_container` reads it, `{Sequential: [...]}` or
    `{ModuleList: {run: parallel, body: [...]}}`, from the schema model's (its fields)."""
    body = generated["properties"]["body"]
    options = {"type": "object", "properties": {"body": body}}
    return {
        "description": generated.get("description", ""),
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "propertyNames": {"enum": list(ir.CONTAINER_KINDS)},
        "additionalProperties": {"anyOf": [body, options, {"type": "null"}]},
    }


def _call(callee: Any, value: Any, span: Span) -> ir.Call:
    func = _callee(callee, span)
    args: list
    kwargs: dict
    if value is None:
        args, kwargs = [], {}
    elif isinstance(value, list):
        args, kwargs = value, {}
    elif isinstance(value, dict):
        args = value.get("args", [])
        if not isinstance(args, list):
            raise SchemaError(
                "'args' holds a list of positional arguments",
                span_of(args) or span,
                hint="write args: [64, 3]",
            )
        kwargs = {k: v for k, v in value.items() if k != "args"}
    else:
        raise SchemaError(
            f"the arguments of '{callee}' are a list, a mapping of keywords, or null; found {describe(value)}",
            span_of(value) or span,
            hint=f"write {{{callee}: [{value!r}]}}",
        )
    return ir.Call(
        func=func,
        args=[_expr_within(a, span) for a in args],
        kwargs=_keywords(kwargs, span),
        span=span,
        kwarg_spans={str(key): span_of(key) or span for key in kwargs if key != "__span__"},
    )


def _callee(key: Any, span: Span) -> ir.ExprNode:
    """A callee is written as a (dotted) name: `Conv2d`, `torchvision.models.resnet50`, `down{i}`."""
    problem = SchemaError(
        f"'{key}' is not a callee",
        span_of(key) or span,
        hint="a value written as a mapping is a call such as {Conv2d: [64]} or a container such as {Sequential: [...]}",
    )
    if not isinstance(key, str):
        raise problem
    try:
        func = expression_at(str(key), span_of(key))
    except DSLError:
        raise problem from None
    if ir.dotted(func) is None:
        raise problem
    return func


def _keywords(mapping: dict, span: Span) -> dict[str, ir.ExprNode]:
    out = {}
    for key, value in mapping.items():
        if key == "__span__":
            continue
        if not isinstance(key, str) or not ir.IDENTIFIER.fullmatch(key):
            raise SchemaError(f"'{key}' is not a keyword name", span_of(key) or span)
        out[str(key)] = _expr_within(value, span_of(key) or span)
    return out


def params_from_yaml(value: Any) -> Any:
    """YAML writes parameters as `[out, {mid: "${out}"}]`: a bare name has no default."""
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        if isinstance(item, str):
            out.append({"name": item, "__span__": getattr(item, "span", NO_SPAN)})
        elif (
            isinstance(item, dict)
            and "name" not in item
            and len([k for k in item if k != "__span__"]) == 1
        ):
            key = next(k for k in item if k != "__span__")
            out.append(
                {"name": key, "default": item[key], "__span__": item.get("__span__", NO_SPAN)}
            )
        else:
            out.append(item)
    return out


class _Spelling:
    """The YAML spellings that the schema's validators read values through."""

    expr = staticmethod(expr_from_yaml)
    dim = staticmethod(dim_from_yaml)
    stmts = staticmethod(stmts_from_yaml)
    params = staticmethod(params_from_yaml)


SPELLING: YAMLSpelling = _Spelling()


def validate(node: type[ir.Node], data: dict) -> Any:
    """A `node` from YAML data through its schema, expressions read through `SPELLING`; a
    mistake is one located SchemaError."""
    try:
        return to_ir(MODELS[node.__name__].model_validate(data, context=SPELLING))
    except ValidationError as exc:
        raise schema_error(exc, data) from None
