"""`.net` text -> IR, through Lark (LALR, contextual lexer) and one Transformer.

Lark's own exceptions never leave this module: each becomes a `DSLSyntaxError` that says
what was expected, what was found, and where.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.indenter import Indenter

from dsl import ir
from dsl.errors import DSLError, DSLSyntaxError, IndentationError_, LimitError, Note
from dsl.source import Span, register_source

MAX_SOURCE_BYTES = 20_000_000
MAX_SOURCE_LINES = 100_000  # far beyond any real spec (loops write repetition), and parsed in seconds
MAX_NESTING = 200


class _Indenter(Indenter):
    NL_type = "_NEWLINE"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def __init__(self) -> None:
        super().__init__()
        self.file = "<string>"

    def handle_NL(self, token: Token) -> Iterator[Token]:
        if self.paren_level > 0:
            return
        yield token
        indent_str = token.rsplit("\n", 1)[1]
        if "\t" in indent_str and " " in indent_str:
            end = _token_end_span(self.file, token)
            raise IndentationError_(
                "indentation mixes tabs and spaces",
                Span(file=self.file, line=end.line, col=1, end_line=end.line, end_col=end.col),
                hint="indent with spaces only (4 per level is the convention)",
            )
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        if indent > self.indent_level[-1]:
            if len(self.indent_level) > MAX_NESTING:
                raise LimitError(f"blocks nest more than {MAX_NESTING} levels deep", _token_end_span(self.file, token))
            self.indent_level.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
            return
        levels = ", ".join(str(level) for level in self.indent_level)
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
        if indent != self.indent_level[-1]:
            raise IndentationError_(
                f"this line is indented by {indent} columns, which matches no enclosing block",
                _token_end_span(self.file, token),
                hint=f"indent it to one of the enclosing levels ({levels} columns)",
            )

    def _process(self, stream: Iterator[Token]) -> Iterator[Token]:
        token = None
        for token in stream:
            if token.type == self.NL_type:
                yield from self.handle_NL(token)
            else:
                yield token
            if token.type in self.OPEN_PAREN_types:
                self.paren_level += 1
            elif token.type in self.CLOSE_PAREN_types and self.paren_level > 0:
                self.paren_level -= 1
        while len(self.indent_level) > 1:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, "", token) if token else Token(self.DEDENT_type, "")


def _token_end_span(file: str, token: Token) -> Span:
    """The position right after a newline token: where the next line's text begins."""
    line = (token.end_line or token.line or 1)
    col = (token.end_column or 1)
    return Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files("dsl.grammar").joinpath("net.lark").read_text()
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        postlex=_Indenter(),
        propagate_positions=True,
        maybe_placeholders=True,
        cache=False,
    )


@functools.lru_cache(maxsize=1)
def _expr_parser() -> Lark:
    grammar = resources.files("dsl.grammar").joinpath("net.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="contextual", start="test", propagate_positions=True, maybe_placeholders=True)


# ----------------------------------------------------------------------------- public API


def check_source_size(text: str, file: str) -> None:
    """Refuse, before parsing, a file too large to read in bounded time and memory."""
    if len(text) > MAX_SOURCE_BYTES:
        raise LimitError(f"the file is {len(text)} characters long; the limit is {MAX_SOURCE_BYTES}", Span(file=file, line=1, col=1))
    lines = text.count("\n") + 1
    if lines > MAX_SOURCE_LINES:
        raise LimitError(f"the file has {lines} lines; the limit is {MAX_SOURCE_LINES}", Span(file=file, line=1, col=1), hint="write repeated parts with a build-time 'for' loop or a block")


def parse_net(text: str, file: str = "<string>") -> ir.SpecFile:
    """Parse a whole `.net` file."""
    check_source_size(text, file)
    text = text.replace("\r\n", "\n")
    register_source(file, text)
    if not text.endswith("\n"):
        text += "\n"
    parser = _parser()
    _set_indenter_file(parser, file)
    try:
        tree = parser.parse(text)
        spec = _ToIR(file).transform(tree)
    except DSLError:
        raise
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, file) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, DSLError):
            raise exc.orig_exc from None
        raise DSLSyntaxError(f"could not read this spec: {exc.orig_exc}", Span(file=file, line=1, col=1)) from None
    except LarkError as exc:
        raise DSLSyntaxError(f"could not read this spec: {exc}", Span(file=file, line=1, col=1)) from None
    except RecursionError:
        raise LimitError("the spec nests too deeply to read", Span(file=file, line=1, col=1)) from None
    return _attach_comments(spec, _comments(text))


def parse_expression(text: str, span: Span | None = None) -> ir.ExprNode:
    """Parse one expression (used for YAML's `${...}` values and `{...}` name templates).

    `span` is where the expression's first character sits in its file.
    """
    origin = span or Span()
    try:
        tree = _expr_parser().parse(text)
        return _ToIR(origin.file, origin).transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, origin.file, origin) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, DSLError):
            raise exc.orig_exc from None
        raise DSLSyntaxError(f"could not read this expression: {exc.orig_exc}", origin) from None
    except LarkError as exc:
        raise DSLSyntaxError(f"could not read this expression: {exc}", origin) from None
    except RecursionError:
        raise LimitError("the expression nests too deeply to read", origin) from None


def _set_indenter_file(parser: Lark, file: str) -> None:
    postlex = parser.options.postlex
    if isinstance(postlex, _Indenter):
        postlex.file = file


# ----------------------------------------------------------------------------- syntax errors

_TOKEN_WORDS = {
    "_NEWLINE": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "end of the indented block",
    "$END": "end of file",
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COLON": "':'",
    "COMMA": "','",
    "EQUAL": "'='",
    "DOT": "'.'",
    "COMP_OP": "a comparison",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "an operator",
    "POW_OP": "'**'",
}


# Said first when expected: what most often is missing.
_FIRST = ("RPAR", "RSQB", "RBRACE", "COLON", "COMMA")


def _describe_expected(expected: set[str]) -> str:
    words = []
    for name in sorted(expected):
        if name in _TOKEN_WORDS:
            words.append(_TOKEN_WORDS[name])
        elif name.isupper():
            words.append(f"'{name.lower()}'")
    first = [_TOKEN_WORDS[name] for name in _FIRST if name in expected]
    words = first + sorted(set(words) - set(first))
    if len(words) > 6:
        words = [*words[:6], "..."]
    return ", ".join(words) if words else "something else"


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    if token.type == "_NEWLINE":
        return "end of line"
    if token.type == "_INDENT":
        return "an indented block"
    if token.type == "_DEDENT":
        return "the end of an indented block"
    return f"'{token}'"


def _syntax_error(exc: UnexpectedInput, text: str, file: str, origin: Span | None = None) -> DSLSyntaxError:
    line, col = _error_position(exc, text)
    if origin is not None and origin:
        col = col + origin.col - 1 if line == 1 else col
        line = line + origin.line - 1
    span = Span(file=file, line=line, col=col, end_line=line, end_col=col + _token_width(exc))
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        if char == "\t":
            return IndentationError_("a tab where the line's content was expected", span, hint="indent with spaces")
        hint = _hint_for_char(char)
        return DSLSyntaxError(f"unexpected character '{char}'", span, hint=hint)
    what = "the expression" if origin is not None else "the file"
    if isinstance(exc, UnexpectedEOF):
        return DSLSyntaxError(
            f"{what} ends too early: expected {_describe_expected(set(exc.expected))}",
            span,
            hint="an opening bracket or an indented block may be left unclosed",
            notes=_bracket_note(text, len(text), file, origin),
        )
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    expected = set(exc.accepts or exc.expected)
    found = _describe_token(token)
    if token.type == "_INDENT":
        return IndentationError_("unexpected indentation", span, hint="this line is indented more than the statement before it, which does not open a block with ':'")
    if token.type == "$END" or (token.type == "_DEDENT" and token == ""):
        notes = _bracket_note(text, len(text), file, origin)
        bracket = _unclosed_bracket(text, len(text))
        hint = "an opening bracket may be left unclosed" if _open_brackets(text) else None
        if bracket is not None:
            hint = f"close the '{bracket[0]}' with '{_CLOSERS[bracket[0]]}'"
        return DSLSyntaxError(f"{what} ends too early: expected {_describe_expected(expected)}", span, hint=hint, notes=notes)
    hint = None
    open_bracket = _unclosed_bracket(text, token.start_pos) if token.start_pos is not None else None
    if open_bracket is not None and open_bracket[1] < (token.line or 0):
        # Inside brackets line breaks do not end a statement, so the next line reads on.
        char, bracket_line, _ = open_bracket
        hint = f"the '{char}' opened on line {bracket_line + (origin.line - 1 if origin else 0)} is not closed"
        notes = _bracket_note(text, token.start_pos, file, origin)
        return DSLSyntaxError(f"expected {_describe_expected(expected)}, found {found}", span, hint=hint, notes=notes)
    if token.type == "_NEWLINE" and "COLON" in expected:
        hint = "a line that opens a block ends with ':'"
    elif token.type == "_NEWLINE" and ("RPAR" in expected or "RSQB" in expected or "RBRACE" in expected):
        hint = "a bracket opened on this line is not closed"
    elif token.type == "NAME" and str(token) in _PYTHON_WORDS:
        hint = _PYTHON_WORDS[str(token)]
    elif token.type == "EQUAL" and "COLON" in expected:
        hint = "compare with '==', or bind a name on its own line"
    return DSLSyntaxError(f"expected {_describe_expected(expected)}, found {found}", span, hint=hint)


_PYTHON_WORDS = {
    "def": "define networks with 'net Name(...):' and reusable parts with 'block Name(...):'",
    "class": "define networks with 'net Name(...):' and reusable parts with 'block Name(...):'",
    "lambda": "the language has no lambdas; register a function with @dsl.register instead",
    "while": "only build-time 'for NAME in range(n):' loops exist",
    "import": "imports read 'from module import Name'",
}


def _hint_for_char(char: str) -> str | None:
    return {
        ";": "put each statement on its own line",
        "$": "in a .net file write expressions directly; '${...}' is for YAML",
        "`": "strings use double or single quotes",
        "!": "negate with 'not', compare with '!='",
        "&": "use 'and'",
        "|": "use 'or'",
    }.get(char)


def _error_position(exc: UnexpectedInput, text: str) -> tuple[int, int]:
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedToken) and token is not None:
        if token.type in ("_NEWLINE",):
            # Point at the end of the line that is missing something, not at the next line.
            start = token.start_pos or 0
            line = text.count("\n", 0, start) + 1
            col = start - (text.rfind("\n", 0, start) + 1) + 1
            return line, col
        if token.type in ("$END", "_DEDENT") or token.line is None:
            return _last_position(text)
        if token.type == "_INDENT":
            # The token borrows the newline's position; the indented text starts at its end.
            return token.end_line or token.line, token.end_column or token.column
        return token.line, token.column
    line = getattr(exc, "line", None)
    col = getattr(exc, "column", None)
    if line is None or line < 1:
        return _last_position(text)
    return line, col or 1


def _last_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip("\n")
    line = stripped.count("\n") + 1
    col = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, col


def _token_width(exc: UnexpectedInput) -> int:
    token = getattr(exc, "token", None)
    if token is None or token.type in ("_NEWLINE", "_INDENT", "_DEDENT", "$END"):
        return 1
    return max(1, len(str(token)))


def _unclosed_bracket(text: str, upto: int) -> tuple[str, int, int] | None:
    """The innermost bracket still open at offset `upto`: (char, line, column)."""
    stack: list[int] = []
    for match in re.finditer(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|#[^\n]*|[()\[\]{}]", text[:upto]):
        char = match.group()
        if char in "([{":
            stack.append(match.start())
        elif char in ")]}" and stack:
            stack.pop()
    if not stack:
        return None
    pos = stack[-1]
    line = text.count("\n", 0, pos) + 1
    return text[pos], line, pos - (text.rfind("\n", 0, pos) + 1) + 1


_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def _bracket_note(text: str, upto: int, file: str, origin: Span | None) -> list[Note]:
    found = _unclosed_bracket(text, upto)
    if found is None:
        return []
    char, line, col = found
    if origin is not None and origin:
        col = col + origin.col - 1 if line == 1 else col
        line = line + origin.line - 1
    return [Note(f"this '{char}' is not closed", Span(file=file, line=line, col=col, end_line=line, end_col=col + 1))]


def _open_brackets(text: str) -> bool:
    depth = 0
    for char in re.sub(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|#[^\n]*", "", text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
    return depth > 0


# ----------------------------------------------------------------------------- tree -> IR

_NAME_TEMPLATE_PART = re.compile(r"\{([^{}\n]*)\}")


def _unescape(body: str) -> str:
    out = []
    chars = iter(body)
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(escapes.get(nxt, "\\" + nxt))
        else:
            out.append(char)
    return "".join(out)


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    if re.fullmatch(r"\d+", clean):
        return int(clean)
    return float(clean)


class _ToIR(Transformer):
    """Builds IR nodes bottom-up. Nodes are made with `model_construct`: the grammar has
    already checked their form, and validation would cost more than parsing."""

    def __init__(self, file: str, origin: Span | None = None) -> None:
        super().__init__(visit_tokens=False)
        self.file = file
        self.line_offset = origin.line - 1 if origin else 0
        self.col_offset = origin.col - 1 if origin else 0

    # -- helpers
    def _span(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return Span(file=self.file)
        return self._at(meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, token: Token) -> Span:
        return self._at(token.line, token.column, token.end_line, token.end_column)

    def _at(self, line: int, col: int, end_line: int | None, end_col: int | None) -> Span:
        col_shift = self.col_offset if line == 1 else 0
        end_shift = self.col_offset if end_line == 1 else 0
        return Span.model_construct(  # one per node: skip pydantic's validation
            file=self.file,
            line=line + self.line_offset,
            col=col + col_shift,
            end_line=(end_line or line) + self.line_offset,
            end_col=(end_col or col) + end_shift,
        )

    def _name(self, token: Token) -> str:
        """Validate the `{expr}` parts of a templated name where it is written."""
        text = str(token)
        if "{" in text:
            for match in _NAME_TEMPLATE_PART.finditer(text):
                span = self._tok(token)
                part_span = Span(file=span.file, line=span.line, col=span.col + match.start(1), end_line=span.line, end_col=span.col + match.end(1))
                parse_expression(match.group(1), part_span)
        return text

    # -- top level
    @v_args(meta=True)
    def start(self, meta: Any, items: list) -> ir.SpecFile:
        imports = [i for i in items if isinstance(i, ir.Import)]
        defs = [d for d in items if isinstance(d, ir.NetDef | ir.BlockDef)]
        seen_def = False
        for item in items:
            if isinstance(item, ir.NetDef | ir.BlockDef):
                seen_def = True
            elif isinstance(item, ir.Import) and seen_def:
                raise DSLSyntaxError("imports must come before the first net or block", item.span, hint="move this import to the top of the file")
        return ir.SpecFile.model_construct(imports=imports, defs=defs, span=Span(file=self.file, line=1, col=1))

    @v_args(meta=True)
    def import_stmt(self, meta: Any, items: list) -> ir.Import:
        source, *names = items
        return ir.Import.model_construct(from_=source, import_=[str(n) for n in names], span=self._span(meta))

    def import_source(self, items: list) -> str:
        (item,) = items
        if isinstance(item, Token):  # a quoted path
            return _unescape(str(item)[1:-1])
        return item

    def dotted_name(self, items: list) -> str:
        return ".".join(str(t) for t in items)

    @v_args(meta=True)
    def definition(self, meta: Any, items: list) -> ir.NetDef | ir.BlockDef:
        kind, name, params, head, body = items
        params = params or []
        if head is not None:
            container_kind, options = head
            body = ir.Container.model_construct(kind=container_kind, options=options, body=body, span=self._span(meta))
        span = self._span(meta)
        if kind == "net":
            return ir.NetDef.model_construct(net=str(name), params=params, body=body, doc=None, span=span)
        return ir.BlockDef.model_construct(block=str(name), params=params, body=body, doc=None, span=span)

    @v_args(meta=True)
    def derived_definition(self, meta: Any, items: list) -> ir.NetDef | ir.BlockDef:
        kind, name, params, base, *rest = items
        body = rest[0] if rest else []
        span = self._span(meta)
        fields = dict(params=params or [], base=base, body=body, doc=None, span=span)
        if kind == "net":
            return ir.NetDef.model_construct(net=str(name), **fields)
        return ir.BlockDef.model_construct(block=str(name), **fields)

    def def_kind(self, items: list) -> str:
        return str(items[0])

    def def_params(self, items: list) -> list[ir.DefParam]:
        params = [p for p in items if p is not None]
        _check_unique([(p.name, p.span) for p in params], "parameter")
        return params

    @v_args(meta=True)
    def def_param(self, meta: Any, items: list) -> ir.DefParam:
        name, default = items
        return ir.DefParam.model_construct(name=str(name), default=default, span=self._span(meta))

    def container_head(self, items: list) -> tuple[str, dict]:
        kind, options = items
        return kind, options or {}

    def container(self, items: list) -> str:
        return str(items[0])

    def suite(self, items: list) -> list:
        stmts: list = []
        for item in items:
            if isinstance(item, list):  # `input x1, x2` declares two inputs
                stmts.extend(item)
            elif item is not None:
                stmts.append(item)
        return stmts

    # -- statements
    def input_stmt(self, items: list) -> list[ir.Input]:
        return items

    @v_args(meta=True)
    def input_decl(self, meta: Any, items: list) -> ir.Input:
        name, dtype, dims = items
        return ir.Input.model_construct(input=str(name), shape=dims, dtype=str(dtype) if dtype is not None else None, span=self._span(meta))

    def dims(self, items: list) -> list:
        return [d for d in items if d is not None]

    @v_args(meta=True)
    def let_stmt(self, meta: Any, items: list) -> ir.Let:
        targets, value, define = items
        return ir.Let.model_construct(let=targets, value=value, define=define, span=self._span(meta))

    def targets(self, items: list) -> list[str]:
        return [self._name(t) for t in items]

    @v_args(meta=True)
    def layer_stmt(self, meta: Any, items: list) -> ir.Layer:
        return ir.Layer.model_construct(layer=items[0], span=self._span(meta))

    @v_args(meta=True)
    def return_stmt(self, meta: Any, items: list) -> ir.Return:
        value, define = items
        return ir.Return.model_construct(return_=value, define=define, span=self._span(meta))

    def pass_stmt(self, items: list) -> None:
        return None

    @v_args(meta=True)
    def tensor_decl(self, meta: Any, items: list) -> ir.ParamDecl | ir.BufferDecl:
        kind, name, dtype, dims, init, *options = items
        opts = dict(options)
        _check_unique([(k, self._span(meta)) for k, _ in options], "option")
        fields = dict(shape=dims, dtype=str(dtype) if dtype is not None else None, init=init, options=opts, span=self._span(meta))
        if kind == "param":
            return ir.ParamDecl.model_construct(param=str(name), **fields)
        return ir.BufferDecl.model_construct(buffer=str(name), **fields)

    def decl_kind(self, items: list) -> str:
        return str(items[0])

    def decl_option(self, items: list) -> tuple[str, Any]:
        return str(items[0]), items[1]

    @v_args(meta=True)
    def container_let(self, meta: Any, items: list) -> ir.Let:
        targets, kind, options, body = items
        container = ir.Container.model_construct(kind=kind, options=options or {}, body=body, span=self._span(meta))
        return ir.Let.model_construct(let=targets, value=container, define=None, span=self._span(meta))

    @v_args(meta=True)
    def container_apply(self, meta: Any, items: list) -> ir.Let:
        targets, value, kind, options, body = items
        container = ir.Container.model_construct(kind=kind, options=options or {}, body=body, span=self._span(meta))
        return ir.Let.model_construct(let=targets, value=value, define=container, span=self._span(meta))

    @v_args(meta=True)
    def container_return(self, meta: Any, items: list) -> ir.Return:
        value, kind, options, body = items
        container = ir.Container.model_construct(kind=kind, options=options or {}, body=body, span=self._span(meta))
        return ir.Return.model_construct(return_=value, define=container, span=self._span(meta))

    @v_args(meta=True)
    def container_anon(self, meta: Any, items: list) -> ir.Layer:
        kind, options, body = items
        container = ir.Container.model_construct(kind=kind, options=options or {}, body=body, span=self._span(meta))
        return ir.Layer.model_construct(layer=container, span=self._span(meta))

    def call_parens(self, items: list) -> dict:
        (arguments,) = items
        args, kwargs = arguments if arguments is not None else ([], {})
        if args:
            raise DSLSyntaxError("container options are keywords", args[0].span, hint='write e.g. ModuleList(run="parallel", merge="cat")')
        return kwargs

    @v_args(meta=True)
    def if_stmt(self, meta: Any, items: list) -> ir.If:
        cond, then, *rest = items
        else_clause = rest.pop() if rest else None
        orelse = else_clause or []
        for elif_cond, elif_body, elif_span in reversed(rest):
            orelse = [ir.If.model_construct(if_=elif_cond, then=elif_body, else_=orelse, span=elif_span)]
        return ir.If.model_construct(if_=cond, then=then, else_=orelse, span=self._span(meta))

    @v_args(meta=True)
    def elif_clause(self, meta: Any, items: list) -> tuple:
        return items[0], items[1], self._span(meta)

    def else_clause(self, items: list) -> list:
        return items[0]

    @v_args(meta=True)
    def for_stmt(self, meta: Any, items: list) -> ir.For:
        var, iterable, body = items
        return ir.For.model_construct(for_=str(var), in_=iterable, body=body, span=self._span(meta))

    @v_args(meta=True)
    def init_block(self, meta: Any, items: list) -> ir.InitBlock:
        return ir.InitBlock.model_construct(init=items, span=self._span(meta))

    @v_args(meta=True)
    def init_rule(self, meta: Any, items: list) -> ir.InitRule:
        first, second = items
        if second is None:
            return ir.InitRule.model_construct(match=None, init=first, span=self._span(meta))
        return ir.InitRule.model_construct(match=_pattern_text(first), init=second, span=self._span(meta))

    # -- expressions
    @v_args(meta=True)
    def tuple_bare(self, meta: Any, items: list) -> ir.TupleExpr:
        return ir.TupleExpr.model_construct(items=[i for i in items if i is not None], span=self._span(meta))

    @v_args(meta=True)
    def ifexp(self, meta: Any, items: list) -> ir.IfExp:
        then, cond, orelse = items
        return ir.IfExp.model_construct(cond=cond, then=then, orelse=orelse, span=self._span(meta))

    @v_args(meta=True)
    def or_op(self, meta: Any, items: list) -> ir.BinOp:
        return ir.BinOp.model_construct(op="or", left=items[0], right=items[1], span=self._span(meta))

    @v_args(meta=True)
    def and_op(self, meta: Any, items: list) -> ir.BinOp:
        return ir.BinOp.model_construct(op="and", left=items[0], right=items[1], span=self._span(meta))

    @v_args(meta=True)
    def not_op(self, meta: Any, items: list) -> ir.UnaryOp:
        return ir.UnaryOp.model_construct(op="not", operand=items[0], span=self._span(meta))

    @v_args(meta=True)
    def binop(self, meta: Any, items: list) -> ir.BinOp:
        left, op, right = items
        return ir.BinOp.model_construct(op=str(op), left=left, right=right, span=self._span(meta))

    @v_args(meta=True)
    def unary(self, meta: Any, items: list) -> ir.ExprNode:
        op, operand = items
        span = self._span(meta)
        if str(op) == "-" and _is_number(operand) and (operand.span.line, operand.span.col) == (span.line, span.col + 1):
            # `-1` is a number, as Python users read it; `-(1)` and `- 1` stay operations.
            return ir.Const.model_construct(value=-operand.value, span=span)
        return ir.UnaryOp.model_construct(op=str(op), operand=operand, span=span)

    @v_args(meta=True)
    def call(self, meta: Any, items: list) -> ir.Call:
        func, arguments = items
        args, kwargs = arguments if arguments is not None else ([], {})
        return ir.Call.model_construct(func=func, args=args, kwargs=kwargs, span=self._span(meta))

    def arguments(self, items: list) -> tuple[list, dict]:
        args: list = []
        kwargs: dict = {}
        key_spans: dict[str, Span] = {}
        for item in items:
            if isinstance(item, tuple):
                key, value, span = item
                if key in kwargs:
                    raise DSLSyntaxError(f"keyword argument '{key}' is given twice", span, notes=[Note("first given here", key_spans[key])])
                kwargs[key] = value
                key_spans[key] = span
            else:
                if kwargs:
                    raise DSLSyntaxError("a positional argument follows a keyword argument", item.span, hint="put positional arguments first")
                args.append(item)
        return args, kwargs

    @v_args(meta=True)
    def kwarg(self, meta: Any, items: list) -> tuple:
        return str(items[0]), items[1], self._tok(items[0])

    @v_args(meta=True)
    def index(self, meta: Any, items: list) -> ir.Index:
        value, index = items
        return ir.Index.model_construct(value=value, index=index, span=self._span(meta))

    @v_args(meta=True)
    def subscript_tuple(self, meta: Any, items: list) -> ir.TupleExpr:
        return ir.TupleExpr.model_construct(items=items, span=self._span(meta))

    @v_args(meta=True)
    def slice(self, meta: Any, items: list) -> ir.Slice:
        start, stop, step = [*items, None, None, None][:3]
        return ir.Slice.model_construct(start=start, stop=stop, step=step, span=self._span(meta))

    @v_args(meta=True)
    def attr(self, meta: Any, items: list) -> ir.Attr:
        value, name = items
        return ir.Attr.model_construct(value=value, attr=str(name), span=self._span(meta))

    @v_args(meta=True)
    def number(self, meta: Any, items: list) -> ir.Const:
        return ir.Const.model_construct(value=_number(str(items[0])), span=self._span(meta))

    @v_args(meta=True)
    def string(self, meta: Any, items: list) -> ir.Const:
        return ir.Const.model_construct(value=_unescape(str(items[0])[1:-1]), span=self._span(meta))

    @v_args(meta=True)
    def name(self, meta: Any, items: list) -> ir.Name:
        return ir.Name.model_construct(id=self._name(items[0]), span=self._span(meta))

    @v_args(meta=True)
    def true(self, meta: Any, items: list) -> ir.Const:
        return ir.Const.model_construct(value=True, span=self._span(meta))

    @v_args(meta=True)
    def false(self, meta: Any, items: list) -> ir.Const:
        return ir.Const.model_construct(value=False, span=self._span(meta))

    @v_args(meta=True)
    def none(self, meta: Any, items: list) -> ir.Const:
        return ir.Const.model_construct(value=None, span=self._span(meta))

    @v_args(meta=True)
    def list(self, meta: Any, items: list) -> ir.ListExpr:
        return ir.ListExpr.model_construct(items=[i for i in items if i is not None], span=self._span(meta))

    @v_args(meta=True)
    def empty_tuple(self, meta: Any, items: list) -> ir.TupleExpr:
        return ir.TupleExpr.model_construct(items=[], span=self._span(meta))

    def paren(self, items: list) -> ir.ExprNode:
        return items[0]

    @v_args(meta=True)
    def tuple_one(self, meta: Any, items: list) -> ir.TupleExpr:
        return ir.TupleExpr.model_construct(items=items, span=self._span(meta))

    @v_args(meta=True)
    def tuple_many(self, meta: Any, items: list) -> ir.TupleExpr:
        return ir.TupleExpr.model_construct(items=[i for i in items if i is not None], span=self._span(meta))

    @v_args(meta=True)
    def dict(self, meta: Any, items: list) -> ir.DictExpr:
        pairs = [i for i in items if i is not None]
        return ir.DictExpr.model_construct(keys=[k for k, _ in pairs], values=[v for _, v in pairs], span=self._span(meta))

    def dict_item(self, items: list) -> tuple:
        return items[0], items[1]


def _is_number(node: Any) -> bool:
    return isinstance(node, ir.Const) and isinstance(node.value, int | float) and not isinstance(node.value, bool)


def _pattern_text(node: ir.ExprNode) -> str:
    """An init rule's target: `Conv2d.weight` written bare, or any pattern as a string."""
    if isinstance(node, ir.Const) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ir.Name):
        return node.id
    if isinstance(node, ir.Attr):
        return f"{_pattern_text(node.value)}.{node.attr}"
    raise DSLSyntaxError(
        "an init rule starts with what it matches: a layer type and tensor, or a quoted pattern",
        node.span,
        hint='write e.g. Conv2d.weight: kaiming_normal(mode="fan_out") or "layer*.bn2.weight": zeros()',
    )


def _check_unique(items: list[tuple[str, Span]], what: str) -> None:
    seen: set[str] = set()
    for name, span in items:
        if name in seen:
            raise DSLSyntaxError(f"{what} '{name}' is given twice", span)
        seen.add(name)


# ----------------------------------------------------------------------------- comments

_COMMENT_LINE = re.compile(r"^[ \t]*#(.*)$")


def _comments(text: str) -> dict[float, str]:
    """Comments by position: a full-line comment at its line, an end-of-line comment just
    before its line (line - 0.5), so that it rides on the statement that starts there and
    `dsl fmt` moves it above that statement instead of dropping it."""
    out: dict[float, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        match = _COMMENT_LINE.match(line)
        if match:
            out[number] = _comment_text(match.group(1))
        elif "#" in line:
            trailing = _trailing_comment(line)
            if trailing is not None:
                out[number - 0.5] = _comment_text(trailing)
    return out


def _comment_text(body: str) -> str:
    return body[1:] if body.startswith(" ") else body


def _trailing_comment(line: str) -> str | None:
    """The text after a `#` that is not inside a string literal."""
    quote = None
    escaped = False
    for index, char in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[index + 1 :]
    return None


def _attach_comments(spec: ir.SpecFile, comments: dict[float, str]) -> ir.SpecFile:
    """A comment block right above a definition is its doc; other comment lines ride on the
    span of the statement below them, so `dsl fmt` keeps them without their taking part in
    equality."""
    if not comments:
        return spec
    lines = sorted(comments)
    claimed: set[float] = set()

    def take(before: int) -> list[str]:
        taken = [n for n in lines if n < before and n not in claimed]
        claimed.update(taken)
        return [comments[n] for n in taken]

    def doc_block(before: int) -> list[str]:
        block = []
        line = before - 1
        while line in comments and line not in claimed:
            block.append(line)
            line -= 1
        claimed.update(block)
        return [comments[n] for n in sorted(block)]

    def visit_stmts(stmts: list) -> list:
        return [visit_stmt(s) for s in stmts]

    def visit_stmt(stmt: Any) -> Any:
        leading = take(stmt.span.line)
        updates: dict[str, Any] = {}
        if leading:
            updates["span"] = _with_comments(stmt.span, leading)
        for field in ("then", "else_", "body"):
            value = getattr(stmt, field, None)
            if isinstance(value, list):
                updates[field] = visit_stmts(value)
        for field in ("value", "define", "layer"):
            value = getattr(stmt, field, None)
            if isinstance(value, ir.Container):
                updates[field] = value.model_copy(update={"body": visit_stmts(value.body)})
        return stmt.model_copy(update=updates) if updates else stmt

    new_imports = []
    for imp in spec.imports:
        leading = take(imp.span.line)
        new_imports.append(imp.model_copy(update={"span": _with_comments(imp.span, leading)}) if leading else imp)
    new_defs = []
    for definition in spec.defs:
        doc = doc_block(definition.span.line)
        leading = take(definition.span.line)
        body = definition.body
        body = body.model_copy(update={"body": visit_stmts(body.body)}) if isinstance(body, ir.Container) else visit_stmts(body)
        updates: dict[str, Any] = {"body": body, "doc": "\n".join(doc) if doc else None}
        if leading:
            updates["span"] = _with_comments(definition.span, leading)
        new_defs.append(definition.model_copy(update=updates))
    trailing = take(10**12)
    span = _with_comments(spec.span, trailing) if trailing else spec.span
    return spec.model_copy(update={"imports": new_imports, "defs": new_defs, "span": span})


def _with_comments(span: Span, comments: list[str]) -> Span:
    return span.model_copy(update={"comments": (*span.comments, *comments)})
