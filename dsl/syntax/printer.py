"""IR -> canonical `.net` text (the YAML printer, dsl/syntax/yaml_printer.py, writes
expressions with `print_expr` inside `${...}`).

`parse_net(print_net(spec)) == spec` holds for every spec the parsers can produce. Comments
that ride on statement spans are printed above their statements, so `dsl fmt` keeps them.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from dsl import ir
from dsl.errors import StructureError
from dsl.source import Span

INDENT = "    "
KEYWORDS = frozenset(
    {
        "net",
        "block",
        "from",
        "import",
        "input",
        "return",
        "pass",
        "param",
        "buffer",
        "if",
        "elif",
        "else",
        "for",
        "in",
        "is",
        "init",
        "forward",
        "def",
    }
    | {"not", "and", "or", "true", "false", "none", "True", "False", "None", *ir.CONTAINER_KINDS}
)

# Precedence levels, loosest first; a context accepts a node whose level is at least its own.
TEST, OR, AND, NOT, COMPARISON, BIT_OR, BIT_AND, ARITH, TERM, FACTOR, POWER, POSTFIX, ATOM = range(
    13
)
_BINARY_LEVELS = {
    "or": OR,
    "and": AND,
    **dict.fromkeys(("==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"), COMPARISON),
    "|": BIT_OR,
    "&": BIT_AND,
    "+": ARITH,
    "-": ARITH,
    **dict.fromkeys(("*", "/", "//", "%", "@"), TERM),
    "**": POWER,
}
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


# ----------------------------------------------------------------------------- .net


def print_net(spec: ir.SpecFile) -> str:
    """The canonical `.net` text of a spec."""
    sections = []
    if spec.imports:
        sections.append(
            [line for imp in spec.imports for line in (*_comments(imp.span, 0), _import(imp))]
        )
    sections.extend(_definition(d) for d in spec.defs)
    if spec.span.comments:
        sections.append(_comments(spec.span, 0))
    return "".join("\n".join(lines) + "\n" for lines in _join_sections(sections))


def _join_sections(sections: list[list[str]]) -> list[list[str]]:
    return [lines if i == 0 else ["", *lines] for i, lines in enumerate(sections)]


def _import(imp: ir.Import) -> str:
    if not imp.import_:
        raise StructureError(f"an import from '{imp.from_}' names nothing to import", imp.span)
    source = imp.from_ if _is_dotted_name(imp.from_) else _string(imp.from_)
    return f"from {source} import {', '.join(imp.import_)}"


def _definition(definition: ir.Definition) -> list[str]:
    lines = []
    if definition.span.comments:
        # A blank line keeps these apart from the doc comment that sits right above the head.
        lines += [*_comments(definition.span, 0), ""]
    if definition.doc is not None:
        lines += [_comment_line(line, 0) for line in definition.doc.split("\n")]
    head = f"{definition.kind} {definition.name}"
    if definition.params or isinstance(definition, ir.FuncDef):
        head += "(" + ", ".join(_param(p) for p in definition.params) + ")"
    body = definition.body
    if definition.base is not None:
        head += f" = {print_expr(definition.base)}"
        if not body:
            return [*lines, head]
    if isinstance(body, ir.Container):
        head += f" = {_container_head(body)}"
        body = body.body
    return [*lines, head + ":", *_suite(body, 1)]


def _param(param: ir.DefParam) -> str:
    return param.name if param.default is None else f"{param.name}={print_expr(param.default)}"


def _suite(stmts: list, depth: int) -> list[str]:
    if not stmts:
        return [INDENT * depth + "pass"]
    lines: list[str] = []
    for index, stmt in enumerate(stmts):
        if _continues_inputs(stmts, index):
            lines[-1] += ", " + _input_decl(stmt)
        else:
            lines += _stmt(stmt, depth)
    return lines


def _continues_inputs(stmts: list, index: int) -> bool:
    """Consecutive inputs share one line, `input x1, x2`, unless a comment sits between them."""
    stmt = stmts[index]
    return (
        index > 0
        and isinstance(stmt, ir.Input)
        and isinstance(stmts[index - 1], ir.Input)
        and not stmt.span.comments
    )


def _stmt(stmt: Any, depth: int) -> list[str]:
    pad = INDENT * depth
    lines = _comments(stmt.span, depth)
    if isinstance(stmt, ir.Input):
        return [*lines, f"{pad}input {_input_decl(stmt)}"]
    if isinstance(stmt, ir.Let):
        return [*lines, *_let(stmt, depth)]
    if isinstance(stmt, ir.Layer):
        if isinstance(stmt.layer, ir.Container):
            return [*lines, *_container_lines("", stmt.layer, depth)]
        return [*lines, pad + print_expr(stmt.layer)]
    if isinstance(stmt, ir.Return):
        return [*lines, *_with_define("return " + _return_value(stmt.return_), stmt.define, depth)]
    if isinstance(stmt, ir.ParamDecl | ir.BufferDecl):
        return [*lines, pad + _tensor_decl(stmt)]
    if isinstance(stmt, ir.If):
        return [*lines, *_if(stmt, depth)]
    if isinstance(stmt, ir.For):
        return [
            *lines,
            f"{pad}for {print_target(stmt.for_, stmt.span)} in {print_expr(stmt.in_)}:",
            *_suite(stmt.body, depth + 1),
        ]
    if isinstance(stmt, ir.InitBlock):
        return [*lines, *_init_block(stmt, depth)]
    if isinstance(stmt, ir.Forward):
        return [*lines, f"{pad}forward:", *_suite(stmt.forward, depth + 1)]
    raise StructureError(
        f"cannot print a {type(stmt).__name__} as a statement", getattr(stmt, "span", None)
    )


def print_target(target: ir.Target, span: Span | None = None, top: bool = True) -> str:
    """A loop's target: `i`, `i, (c, n)`; a list of one is written `(a,)`."""
    if isinstance(target, str):
        return target
    if not target:
        raise StructureError("a loop's target list names nothing", span)
    if len(target) == 1:
        return f"({print_target(target[0], span, False)},)"
    text = ", ".join(print_target(item, span, False) for item in target)
    return text if top else f"({text})"


def _input_decl(stmt: ir.Input) -> str:
    if stmt.shape is None:
        if stmt.dtype is not None:
            raise StructureError(
                f"input '{stmt.input}' has a dtype but no shape; .net writes the dtype before the shape",
                stmt.span,
            )
        return stmt.input
    return f"{stmt.input}: {stmt.dtype or ''}{_dims(stmt.shape)}"


def _let(stmt: ir.Let, depth: int) -> list[str]:
    if stmt.op is not None:
        if len(stmt.let) != 1 or stmt.define is not None or isinstance(stmt.value, ir.Container):
            raise StructureError(f"'{stmt.op}=' updates one name with a value", stmt.span)
        return [f"{INDENT * depth}{_target(stmt.let[0])} {stmt.op}= {print_expr(stmt.value)}"]
    targets = ", ".join(map(_target, stmt.let)) + " = "
    if not isinstance(stmt.value, ir.Container):
        return _with_define(targets + print_expr(stmt.value), stmt.define, depth)
    if stmt.define is not None:
        raise StructureError("a container value cannot also define a layer", stmt.span)
    return _container_lines(targets, stmt.value, depth)


def _target(name: str) -> str:
    """A member's name: bare, or quoted where it is no identifier (RegNet's "block1-0")."""
    return name if ir.TEMPLATE_NAME.fullmatch(name) and name not in KEYWORDS else _string(name)


def _with_define(head: str, define: ir.ExprNode | None, depth: int) -> list[str]:
    """`head`, or `head: define` where define names a layer, or a container and its body."""
    if define is None:
        return [INDENT * depth + head]
    if isinstance(define, ir.Container):
        return _container_lines(head + ": ", define, depth)
    return [f"{INDENT * depth}{head}: {print_expr(define)}"]


def _container_lines(prefix: str, container: ir.Container, depth: int) -> list[str]:
    return [
        f"{INDENT * depth}{prefix}{_container_head(container)}:",
        *_suite(container.body, depth + 1),
    ]


def _return_value(value: ir.ExprNode) -> str:
    if isinstance(value, ir.TupleExpr) and len(value.items) >= 2 and not _has_starred(value):
        return ", ".join(print_expr(item) for item in value.items)
    return print_expr(value)


def _tensor_decl(stmt: ir.ParamDecl | ir.BufferDecl) -> str:
    kind = "param" if isinstance(stmt, ir.ParamDecl) else "buffer"
    text = f"{kind} {stmt.name}"
    if stmt.shape is not None:  # else a computed buffer: `buffer index = <expression>`
        text += f": {stmt.dtype or ''}{_dims(stmt.shape)}"
    if stmt.init is not None:
        text += f" = {print_expr(stmt.init)}"
    return text + "".join(f", {key}={print_expr(value)}" for key, value in stmt.options.items())


def _dims(shape: list) -> str:
    return "[" + ", ".join(print_expr(dim) for dim in shape) + "]"


def _if(stmt: ir.If, depth: int) -> list[str]:
    pad = INDENT * depth
    lines = [f"{pad}if {print_expr(stmt.if_)}:", *_suite(stmt.then, depth + 1)]
    while len(stmt.else_) == 1 and isinstance(stmt.else_[0], ir.If):
        stmt = stmt.else_[0]
        lines += [
            *_comments(stmt.span, depth),
            f"{pad}elif {print_expr(stmt.if_)}:",
            *_suite(stmt.then, depth + 1),
        ]
    if stmt.else_:
        lines += [f"{pad}else:", *_suite(stmt.else_, depth + 1)]
    return lines


def _init_block(stmt: ir.InitBlock, depth: int) -> list[str]:
    if not stmt.init:
        raise StructureError("an init block needs at least one rule", stmt.span)
    pad = INDENT * (depth + 1)
    return [INDENT * depth + "init:", *(pad + _init_rule(rule) for rule in stmt.init)]


def _init_rule(rule: ir.InitRule) -> str:
    if rule.match is None:
        return print_expr(rule.init)
    match = rule.match if _is_dotted_name(rule.match) else _string(rule.match)
    return f"{match}: {print_expr(rule.init)}"


def _container_head(container: ir.Container) -> str:
    if not container.options:
        return container.kind
    options = ", ".join(f"{key}={print_expr(value)}" for key, value in container.options.items())
    return f"{container.kind}({options})"


def _comments(span: Span, depth: int) -> list[str]:
    return [_comment_line(text, depth) for text in span.comments]


def _comment_line(text: str, depth: int) -> str:
    return INDENT * depth + ("# " + text if text else "#")


def _is_dotted_name(text: str) -> bool:
    parts = text.split(".")
    return all(ir.IDENTIFIER.fullmatch(part) and part not in KEYWORDS for part in parts)


# ----------------------------------------------------------------------------- expressions


def print_expr(node: ir.ExprNode) -> str:
    """One expression in `.net` syntax, with the fewest parentheses that keep its meaning."""
    return _expr(node, TEST)


def _expr(node: ir.ExprNode, level: int) -> str:
    text, own = _render(node)
    return f"({text})" if own < level else text


def _render(node: ir.ExprNode) -> tuple[str, int]:
    if isinstance(node, ir.Const):
        text = _const(node)
        # The parser reads `-1` as one number, but it binds like a unary minus.
        return text, FACTOR if text.startswith("-") else ATOM
    if isinstance(node, ir.Name):
        return node.id, ATOM
    if isinstance(node, ir.Attr):
        # `1.real` would lex as the number `1.` followed by a name.
        obj = f"({_const(node.value)})" if _is_number(node.value) else _expr(node.value, POSTFIX)
        return f"{obj}.{node.attr}", POSTFIX
    if isinstance(node, ir.Index):
        return f"{_expr(node.value, POSTFIX)}[{_subscripts(node.index)}]", POSTFIX
    if isinstance(node, ir.Call):
        arguments = [_item(arg) for arg in node.args]
        arguments += [f"{key}={_expr(value, TEST)}" for key, value in node.kwargs.items()]
        arguments += [f"**{_expr(value, TEST)}" for value in node.spread]
        return f"{_expr(node.func, POSTFIX)}({', '.join(arguments)})", POSTFIX
    if isinstance(node, ir.BinOp):
        return _binop(node)
    if isinstance(node, ir.UnaryOp):
        return _unary(node)
    if isinstance(node, ir.IfExp):
        return (
            f"{_expr(node.then, OR)} if {_expr(node.cond, OR)} else {_expr(node.orelse, TEST)}",
            TEST,
        )
    if isinstance(node, ir.ListExpr):
        return "[" + ", ".join(_item(item) for item in node.items) + "]", ATOM
    if isinstance(node, ir.Comprehension):
        return _comprehension(node), ATOM
    if isinstance(node, ir.Starred):
        raise StructureError("'*' unpacks into a call's arguments, a list or a tuple", node.span)
    if isinstance(node, ir.TupleExpr):
        return _tuple(node), ATOM
    if isinstance(node, ir.DictExpr):
        pairs = (f"{_expr(k, TEST)}: {_expr(v, TEST)}" for k, v in zip(node.keys, node.values))
        return "{" + ", ".join(pairs) + "}", ATOM
    if isinstance(node, ir.Slice):
        raise StructureError("a slice can only be written inside brackets: x[a:b]", node.span)
    if isinstance(node, ir.Container):
        raise StructureError(
            f"a {node.kind} can only be written as a statement's value, with its body below it",
            node.span,
        )
    raise StructureError(
        f"cannot print a {type(node).__name__} as an expression", getattr(node, "span", None)
    )


def _binop(node: ir.BinOp) -> tuple[str, int]:
    level = _BINARY_LEVELS[node.op]
    if node.op == "**":  # right-associative, and its base is a postfix expression
        left, right = POSTFIX, FACTOR
    elif level == COMPARISON:  # comparisons do not chain
        left, right = BIT_OR, BIT_OR
    else:
        left, right = level, level + 1
    return f"{_expr(node.left, left)} {node.op} {_expr(node.right, right)}", level


def _unary(node: ir.UnaryOp) -> tuple[str, int]:
    if node.op == "not":
        return f"not {_expr(node.operand, NOT)}", NOT
    if node.op == "-" and _is_number(node.operand):
        # `-1` would read back as the number -1, not as an operation on 1.
        return f"-({_const(node.operand)})", FACTOR
    return f"{node.op}{_expr(node.operand, FACTOR)}", FACTOR


def _tuple(node: ir.TupleExpr) -> str:
    if len(node.items) == 1:
        return f"({_item(node.items[0])},)"
    return "(" + ", ".join(_item(item) for item in node.items) + ")"


def _item(node: ir.ExprNode) -> str:
    """An argument or an item of a list or tuple, where `*xs` may stand."""
    return "*" + _expr(node.value, TEST) if isinstance(node, ir.Starred) else _expr(node, TEST)


def _comprehension(node: ir.Comprehension) -> str:
    if not node.clauses:
        raise StructureError("a comprehension needs a 'for' clause", node.span)
    clauses = "".join(
        f" for {print_target(c.for_, c.span)} in {_expr(c.in_, OR)}"
        + "".join(f" if {_expr(cond, OR)}" for cond in c.if_)
        for c in node.clauses
    )
    if node.key is None:
        return f"[{_expr(node.element, TEST)}{clauses}]"
    return f"{{{_expr(node.key, TEST)}: {_expr(node.element, TEST)}{clauses}}}"


def _has_starred(node: ir.TupleExpr) -> bool:
    return any(isinstance(item, ir.Starred) for item in node.items)


def _subscripts(index: ir.ExprNode) -> str:
    if not isinstance(index, ir.TupleExpr) or not index.items or _has_starred(index):
        return _subscript(index)
    if len(index.items) == 1:
        return _subscript(index.items[0]) + ","
    return ", ".join(_subscript(item) for item in index.items)


def _subscript(node: ir.ExprNode) -> str:
    if not isinstance(node, ir.Slice):
        return _expr(node, TEST)
    parts = ["" if part is None else _expr(part, TEST) for part in (node.start, node.stop)]
    if node.step is not None:
        parts.append(_expr(node.step, TEST))
    return ":".join(parts)


def _const(node: ir.Const) -> str:
    value = node.value
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StructureError(f"the number {value} cannot be written in a spec", node.span)
        return repr(value)
    return _string(value)


def _string(text: str) -> str:
    return '"' + "".join(_STRING_ESCAPES.get(char, char) for char in text) + '"'


def _is_number(node: Any) -> TypeGuard[ir.Const]:
    return (
        isinstance(node, ir.Const)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )
