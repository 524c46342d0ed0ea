"""IR -> YAML text (see docs/yaml.md): `parse_yaml(print_yaml(spec)) == spec` holds for
every spec the parsers can produce. What has no YAML spelling of its own is written as a
`${...}` string in `.net` syntax."""

from __future__ import annotations

from typing import Any

import yaml

from dsl import ir
from dsl.errors import StructureError
from dsl.syntax.printer import print_expr


def print_yaml(spec: ir.SpecFile) -> str:
    """The YAML text of a spec (see docs/yaml.md)."""
    data: dict[str, Any] = {}
    if spec.imports:
        data["imports"] = [{"from": imp.from_, "import": list(imp.import_)} for imp in spec.imports]
    if spec.defs:
        data["defs"] = [_definition_data(d) for d in spec.defs]
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
        width=1_000_000,
    )


class _Dumper(yaml.SafeDumper):
    """PyYAML writes NEL (U+0085) raw inside single quotes, where it reads back as a space;
    double quotes escape it."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if any(char in text for char in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def _definition_data(definition: ir.Definition) -> dict:
    out: dict[str, Any] = {definition.kind: definition.name}
    if definition.doc is not None:
        out["doc"] = definition.doc
    if definition.params:
        out["params"] = [_param_data(p) for p in definition.params]
    if definition.base is not None:
        out["base"] = _expr_data(definition.base)
    if isinstance(definition.body, ir.Container):
        out["body"] = _expr_data(definition.body)
    elif definition.body:
        out["body"] = _stmts_data(definition.body)
    return out


def _param_data(param: ir.DefParam) -> Any:
    if param.default is None:
        return param.name
    if param.name == "name":  # `{name: ...}` would read as the parameter's own fields
        return {"name": "name", "default": _optional_data(param.default)}
    return {param.name: _optional_data(param.default)}


def _stmts_data(stmts: list) -> list:
    return [_stmt_data(stmt) for stmt in stmts]


def _stmt_data(stmt: Any) -> dict:
    if isinstance(stmt, ir.Input):
        return _without_none(
            {"input": stmt.input, "shape": _dims_data(stmt.shape), "dtype": stmt.dtype}
        )
    if isinstance(stmt, ir.Let):
        targets = stmt.let[0] if len(stmt.let) == 1 else list(stmt.let)
        op = {} if stmt.op is None else {"op": stmt.op}  # `x += y`
        return _define_data({"let": targets, **op, "value": _expr_data(stmt.value)}, stmt.define)
    if isinstance(stmt, ir.Layer):
        return {"layer": _expr_data(stmt.layer)}
    if isinstance(stmt, ir.Return):
        return _define_data({"return": _expr_data(stmt.return_)}, stmt.define)
    if isinstance(stmt, ir.ParamDecl | ir.BufferDecl):
        return _tensor_decl_data(stmt)
    if isinstance(stmt, ir.If):
        out = {
            "if": _expr_data(stmt.if_),
            "then": _stmts_data(stmt.then),
            "else": _stmts_data(stmt.else_),
        }
        return {key: value for key, value in out.items() if key == "if" or value}
    if isinstance(stmt, ir.For):
        out = {"for": stmt.for_, "in": _expr_data(stmt.in_), "body": _stmts_data(stmt.body)}
        return {key: value for key, value in out.items() if key != "body" or value}
    if isinstance(stmt, ir.InitBlock):
        return {"init": [_init_rule_data(rule) for rule in stmt.init]}
    if isinstance(stmt, ir.Forward):
        return {"forward": _stmts_data(stmt.forward)}
    raise StructureError(
        f"cannot print a {type(stmt).__name__} as a statement", getattr(stmt, "span", None)
    )


def _init_rule_data(rule: ir.InitRule) -> dict:
    init = {"init": _expr_data(rule.init)}
    return init if rule.match is None else {"match": rule.match, **init}


def _define_data(out: dict, define: ir.ExprNode | None) -> dict:
    return out if define is None else {**out, "define": _optional_data(define)}


def _tensor_decl_data(stmt: ir.ParamDecl | ir.BufferDecl) -> dict:
    kind = "param" if isinstance(stmt, ir.ParamDecl) else "buffer"
    out = {
        kind: stmt.name,
        "shape": _dims_data(stmt.shape),
        "dtype": stmt.dtype,
        "init": _optional_data(stmt.init),
    }
    if stmt.options:
        out["options"] = {key: _expr_data(value) for key, value in stmt.options.items()}
    return _without_none(out)


def _dims_data(shape: list | None) -> list | None:
    return None if shape is None else [_dim_data(dim) for dim in shape]


def _dim_data(dim: ir.ExprNode) -> Any:
    # A bare identifier in a shape reads back as a symbol, so a string that looks like one
    # is written as an expression.
    if isinstance(dim, ir.Name) and ir.IDENTIFIER.fullmatch(dim.id):
        return dim.id
    if (
        isinstance(dim, ir.Const)
        and isinstance(dim.value, str)
        and ir.IDENTIFIER.fullmatch(dim.value)
    ):
        return _dollar(dim)
    return _expr_data(dim)


def _optional_data(node: ir.ExprNode | None) -> Any:
    """An optional field: YAML's null would mean 'absent', so the constant none is spelled out."""
    if isinstance(node, ir.Const) and node.value is None:
        return "${none}"
    return None if node is None else _expr_data(node)


def _expr_data(node: ir.ExprNode) -> Any:
    if isinstance(node, ir.Const):
        if isinstance(node.value, str) and node.value.startswith("${"):
            return _dollar(node)
        return node.value
    if isinstance(node, ir.ListExpr) and not any(isinstance(i, ir.Starred) for i in node.items):
        return [_expr_data(item) for item in node.items]
    if isinstance(node, ir.Container):
        return _container_data(node)
    if isinstance(node, ir.Call):
        callee = ir.dotted(node.func)
        if (
            callee is not None
            and (callee[0].isupper() or "." in callee)
            and not {"args", "__span__"} & node.kwargs.keys()
            and not node.spread
            and not any(isinstance(arg, ir.Starred) for arg in node.args)
        ):
            return {callee: _call_args_data(node)}
    return _dollar(node)


def _dollar(node: ir.ExprNode) -> str:
    return "${" + print_expr(node) + "}"


def _call_args_data(call: ir.Call) -> Any:
    args = [_expr_data(arg) for arg in call.args]
    kwargs = {key: _expr_data(value) for key, value in call.kwargs.items()}
    if not kwargs:
        return args if args else {}
    return {"args": args, **kwargs} if args else kwargs


def _container_data(container: ir.Container) -> dict:
    body = _stmts_data(container.body)
    if not container.options:
        return {container.kind: body}
    if {"body", "__span__"} & container.options.keys():
        raise StructureError(
            f"a {container.kind} option cannot be named 'body' in YAML", container.span
        )
    options = {key: _expr_data(value) for key, value in container.options.items()}
    return {container.kind: {**options, "body": body}}


def _without_none(mapping: dict) -> dict:
    return {key: value for key, value in mapping.items() if value is not None}
