"""`.net` text -> IR: Lark's LALR parse table and contextual lexer, the IR built as rules reduce.

Lark's own exceptions never leave this module: each becomes a `DSLSyntaxError` that says
what was expected, what was found, and where.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import os
import re
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from lark import Lark, Token
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.grammar import Rule
from lark.indenter import Indenter
from lark.lexer import PatternStr
from lark.parsers.lalr_analysis import Shift
from pydantic import BaseModel

from dsl import ir
from dsl.errors import DSLError, DSLSyntaxError, IndentationError_, LimitError, Note
from dsl.pauses import gc_paused
from dsl.source import Span, register_source

MAX_SOURCE_BYTES = 20_000_000
MAX_SOURCE_LINES = (
    100_000  # far beyond any real spec (loops write repetition), and parsed in seconds
)
MAX_NESTING = 200
MAX_DEPTH = 500  # rules inside rules; later passes walk the IR recursively


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
                raise LimitError(
                    f"blocks nest more than {MAX_NESTING} levels deep",
                    _token_end_span(self.file, token),
                )
            self.indent_level.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
            return
        levels = list(self.indent_level)
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
        if indent != self.indent_level[-1]:
            raise IndentationError_(
                f"this line is indented by {indent} columns, which matches no enclosing block",
                _token_end_span(self.file, token),
                hint=f"indent it to one of the enclosing levels ({', '.join(map(str, levels))} columns)",
            )

    def _process(self, stream: Iterator[Token]) -> Iterator[Token]:
        token = None
        newline, opening, closing = (
            self.NL_type,
            frozenset(self.OPEN_PAREN_types),
            frozenset(self.CLOSE_PAREN_types),
        )
        for token in stream:
            kind = token.type
            if kind == newline:
                yield from self.handle_NL(token)
            else:
                yield token
            if kind in opening:
                self.paren_level += 1
            elif kind in closing and self.paren_level > 0:
                self.paren_level -= 1
        while len(self.indent_level) > 1:
            self.indent_level.pop()
            yield (
                Token.new_borrow_pos(self.DEDENT_type, "", token)
                if token
                else Token(self.DEDENT_type, "")
            )


def _token_end_span(file: str, token: Token) -> Span:
    """The position right after a newline token: where the next line's text begins."""
    line = token.end_line or token.line or 1
    col = token.end_column or 1
    return Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)


def _grammar() -> str:
    return resources.files("dsl.grammar").joinpath("net.lark").read_text()


@dataclasses.dataclass(frozen=True)
class _Parser:
    """A Lark LALR parser, with its parse table prepared for `_run`: per state, token or rule
    name -> the next state (a shift or goto) or a `_Reduce`."""

    lark: Lark
    actions: dict[int, dict[str, int | _Reduce]]
    end_state: int
    terminals: re.Pattern  # all terminals, one regex: Lark's root lexer's, in its order
    spaces: re.Pattern  # what Lark ignores between tokens on a line
    keywords: dict[int, dict[str, str]]  # per state, the words Lark reads as keywords there
    indented: bool  # whether an `_Indenter` turns newlines into blocks
    # (state below, state, token) -> the state after the unit rules that token reduces, in turn
    unit_chains: dict[tuple[int, int, str], int] = dataclasses.field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _parser() -> _Parser:
    return _prepare(_lark(start="start", postlex=_Indenter()))


@functools.lru_cache(maxsize=1)
def _expr_parser() -> _Parser:
    return _prepare(_lark(start="test"))


def _lark(start: str, **options: Any) -> Lark:
    """Lark's LALR analysis of the grammar takes ~0.2 s, most of a first validate. It is
    cached per user; Lark checks the grammar, its options and versions, and redoes it on
    any change."""
    cache = _cache_file(f"grammar-{start}.lark-cache")
    return Lark(
        _grammar(), parser="lalr", lexer="contextual", start=start, cache=cache or False, **options
    )


def _cache_file(name: str) -> str | None:
    """A file in the user's cache directory ($NETDSL_CACHE_DIR, else $XDG_CACHE_HOME/netdsl
    or ~/.cache/netdsl); None to cache nothing (NETDSL_CACHE_DIR="", or no usable place).
    Lark's cache is a pickle, so only a directory no one else can write to will do."""
    chosen = os.environ.get("NETDSL_CACHE_DIR")
    if chosen == "":
        return None
    try:
        directory = (
            Path(chosen)
            if chosen
            else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "netdsl"
        )
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return None
    if info.st_mode & 0o022 or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        return None
    return str(directory / name)


# ----------------------------------------------------------------------------- public API


def check_source_size(text: str, file: str) -> None:
    """Refuse, before parsing, a file too large to read in bounded time and memory."""
    if len(text) > MAX_SOURCE_BYTES:
        raise LimitError(
            f"the file is {len(text)} characters long; the limit is {MAX_SOURCE_BYTES}",
            Span(file=file, line=1, col=1),
        )
    lines = text.count("\n") + 1
    if lines > MAX_SOURCE_LINES:
        raise LimitError(
            f"the file has {lines} lines; the limit is {MAX_SOURCE_LINES}",
            Span(file=file, line=1, col=1),
            hint="write repeated parts with a build-time 'for' loop or a block",
        )


def parse_net(text: str, file: str = "<string>") -> ir.SpecFile:
    """Parse a whole `.net` file."""
    check_source_size(text, file)
    text = text.replace("\r\n", "\n")
    register_source(file, text)
    if not text.endswith("\n"):
        text += "\n"
    with gc_paused():  # some 20 objects per line, all alive: collecting found nothing
        return _attach_comments(_read_spec(text, file), _comments(text))


def _read_spec(text: str, file: str) -> ir.SpecFile:
    parser = _parser()
    _set_indenter_file(parser.lark, file)
    try:
        return _parse(parser, text, _ToIR(file))
    except DSLError:
        raise
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, file) from None
    except VisitError as exc:
        raise DSLSyntaxError(
            f"could not read this spec: {exc.orig_exc}", Span(file=file, line=1, col=1)
        ) from None
    except LarkError as exc:
        raise DSLSyntaxError(
            f"could not read this spec: {exc}", Span(file=file, line=1, col=1)
        ) from None
    except _TooDeep:
        raise LimitError(
            "the spec nests too deeply to read", Span(file=file, line=1, col=1)
        ) from None


def parse_expression(text: str, span: Span | None = None) -> ir.ExprNode:
    """Parse one expression (used for YAML's `${...}` values and `{...}` name templates).

    `span` is where the expression's first character sits in its file.
    """
    origin = span or Span()
    try:
        return _parse(_expr_parser(), text, _ToIR(origin.file, origin))
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, origin.file, origin) from None
    except VisitError as exc:
        raise DSLSyntaxError(f"could not read this expression: {exc.orig_exc}", origin) from None
    except LarkError as exc:
        raise DSLSyntaxError(f"could not read this expression: {exc}", origin) from None
    except _TooDeep:
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


def _syntax_error(
    exc: UnexpectedInput, text: str, file: str, origin: Span | None = None
) -> DSLSyntaxError:
    line, col = _error_position(exc, text)
    if origin is not None and origin:
        col = col + origin.col - 1 if line == 1 else col
        line = line + origin.line - 1
    span = Span(file=file, line=line, col=col, end_line=line, end_col=col + _token_width(exc))
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        if char == "\t":
            return IndentationError_(
                "a tab where the line's content was expected", span, hint="indent with spaces"
            )
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
        return IndentationError_(
            "unexpected indentation",
            span,
            hint="this line is indented more than the statement before it, which does not open a block with ':'",
        )
    if token.type == "$END" or (token.type == "_DEDENT" and token == ""):
        notes = _bracket_note(text, len(text), file, origin)
        bracket = _unclosed_bracket(text, len(text))
        hint = "an opening bracket may be left unclosed" if _open_brackets(text) else None
        if bracket is not None:
            hint = f"close the '{bracket[0]}' with '{_CLOSERS[bracket[0]]}'"
        return DSLSyntaxError(
            f"{what} ends too early: expected {_describe_expected(expected)}",
            span,
            hint=hint,
            notes=notes,
        )
    hint = None
    open_bracket = _unclosed_bracket(text, token.start_pos) if token.start_pos is not None else None
    if open_bracket is not None and open_bracket[1] < (token.line or 0):
        # Inside brackets line breaks do not end a statement, so the next line reads on.
        char, bracket_line, _ = open_bracket
        hint = f"the '{char}' opened on line {bracket_line + (origin.line - 1 if origin else 0)} is not closed"
        notes = _bracket_note(text, token.start_pos, file, origin)
        return DSLSyntaxError(
            f"expected {_describe_expected(expected)}, found {found}", span, hint=hint, notes=notes
        )
    if token.type == "_NEWLINE" and "COLON" in expected:
        hint = "a line that opens a block ends with ':'"
    elif token.type == "_NEWLINE" and (
        "RPAR" in expected or "RSQB" in expected or "RBRACE" in expected
    ):
        hint = "a bracket opened on this line is not closed"
    elif token.type == "NAME" and str(token) in _PYTHON_WORDS:
        hint = _PYTHON_WORDS[str(token)]
    elif token.type == "EQUAL" and "COLON" in expected:
        hint = "compare with '==', or bind a name on its own line"
    return DSLSyntaxError(
        f"expected {_describe_expected(expected)}, found {found}", span, hint=hint
    )


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
    for match in re.finditer(
        r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|#[^\n]*|[()\[\]{}]", text[:upto]
    ):
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
    return [
        Note(
            f"this '{char}' is not closed",
            Span(file=file, line=line, col=col, end_line=line, end_col=col + 1),
        )
    ]


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
    return int(clean) if clean.isdecimal() else float(clean)  # isdecimal: what `\d` matches


_new = object.__new__
_new_tuple = tuple.__new__  # Span(...) without its keyword handling
_set = object.__setattr__
# pydantic keeps these in slots; setting a slot through its descriptor is the cheapest way
_set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[slot].__set__
    for slot in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)


def _constructor(model: type[BaseModel]) -> Callable[..., Any]:
    """`model.model_construct`, without its walk over aliases and defaults on every call. The
    parser makes a node and a span for most rules it reduces, so this is its hottest call.
    Builders pass every field that has no default or a mutable one (tests compare the IR
    with pydantic's, from YAML).

    Every node's fields-set is one shared set of all its fields: pydantic copies it before
    it adds to it (`model_copy(update=...)`), and nothing reads it (equality does not). A set
    per node would be a third of all the objects that the garbage collector walks after a
    parse."""
    assert not (model.__pydantic_post_init__ or model.__pydantic_root_model__)
    fields = model.model_fields
    # defaults that pydantic itself shares between instances rather than copies: None, (), ...
    template = {
        name: field.default
        if not field.is_required() and field.get_default() is field.default
        else None
        for name, field in fields.items()
    }
    all_fields = set(fields)
    count = len(fields)

    def construct(**values: Any) -> Any:
        node = _new(model)
        _set(node, "__dict__", values if len(values) == count else {**template, **values})
        _set_fields_set(node, all_fields)
        _set_extra(node, None)
        _set_private(node, None)
        return node

    return construct


_Const = _constructor(ir.Const)
_Name = _constructor(ir.Name)
_Attr = _constructor(ir.Attr)
_Index = _constructor(ir.Index)
_Slice = _constructor(ir.Slice)
_Call = _constructor(ir.Call)
_BinOp = _constructor(ir.BinOp)
_UnaryOp = _constructor(ir.UnaryOp)
_IfExp = _constructor(ir.IfExp)
_ListExpr = _constructor(ir.ListExpr)
_TupleExpr = _constructor(ir.TupleExpr)
_DictExpr = _constructor(ir.DictExpr)
_Container = _constructor(ir.Container)
_Input = _constructor(ir.Input)
_Let = _constructor(ir.Let)
_Layer = _constructor(ir.Layer)
_Return = _constructor(ir.Return)
_ParamDecl = _constructor(ir.ParamDecl)
_BufferDecl = _constructor(ir.BufferDecl)
_If = _constructor(ir.If)
_For = _constructor(ir.For)
_InitRule = _constructor(ir.InitRule)
_InitBlock = _constructor(ir.InitBlock)
_DefParam = _constructor(ir.DefParam)
_NetDef = _constructor(ir.NetDef)
_BlockDef = _constructor(ir.BlockDef)
_Import = _constructor(ir.Import)
_SpecFile = _constructor(ir.SpecFile)


class _ToIR:
    """Builds IR nodes bottom-up as the parser reduces rules: one method per rule (or alias),
    called with the rule's children as Lark's tree builder would give them, and the rule's
    first and last token, which bound its span."""

    def __init__(self, file: str, origin: Span | None = None) -> None:
        self.file = file
        self.line_offset = origin.line - 1 if origin else 0
        self.col_offset = origin.col - 1 if origin else 0
        self.shifted = bool(self.line_offset or self.col_offset)

    # -- helpers
    def _span(self, first: _Token, last: _Token) -> Span:
        return self._at(first[_LINE], first[_COLUMN], last[_END_LINE], last[_END_COLUMN])

    def _tok(self, token: _Token) -> Span:
        return self._at(token[_LINE], token[_COLUMN], token[_END_LINE], token[_END_COLUMN])

    def _at(self, line: int, col: int, end_line: int | None, end_col: int | None) -> Span:
        if self.shifted:
            col_shift = self.col_offset if line == 1 else 0
            end_shift = self.col_offset if end_line == 1 else 0
            end_line, end_col = (end_line or line) + self.line_offset, (end_col or col) + end_shift
            line, col = line + self.line_offset, col + col_shift
        return _new_tuple(Span, (self.file, line, col, end_line or line, end_col or col, ()))

    def _name(self, token: _Token) -> str:
        """Validate the `{expr}` parts of a templated name where it is written."""
        text = token[_TEXT]
        if "{" in text:
            for match in _NAME_TEMPLATE_PART.finditer(text):
                span = self._tok(token)
                part_span = Span(
                    file=span.file,
                    line=span.line,
                    col=span.col + match.start(1),
                    end_line=span.line,
                    end_col=span.col + match.end(1),
                )
                parse_expression(match.group(1), part_span)
        return text

    # -- top level
    def start(self, items: list, first: _Token, last: _Token) -> ir.SpecFile:
        imports = [i for i in items if isinstance(i, ir.Import)]
        defs = [d for d in items if isinstance(d, ir.NetDef | ir.BlockDef)]
        seen_def = False
        for item in items:
            if isinstance(item, ir.NetDef | ir.BlockDef):
                seen_def = True
            elif isinstance(item, ir.Import) and seen_def:
                raise DSLSyntaxError(
                    "imports must come before the first net or block",
                    item.span,
                    hint="move this import to the top of the file",
                )
        return _SpecFile(imports=imports, defs=defs, span=Span(file=self.file, line=1, col=1))

    def import_stmt(self, items: list, first: _Token, last: _Token) -> ir.Import:
        source, *names = items
        return _Import(
            from_=source, import_=[n[_TEXT] for n in names], span=self._span(first, last)
        )

    def import_source(self, items: list, first: _Token, last: _Token) -> str:
        (item,) = items
        if isinstance(item, tuple):  # a quoted path
            return _unescape(item[_TEXT][1:-1])
        return item

    def dotted_name(self, items: list, first: _Token, last: _Token) -> str:
        return ".".join(t[_TEXT] for t in items)

    def definition(self, items: list, first: _Token, last: _Token) -> ir.NetDef | ir.BlockDef:
        kind, name, params, head, body = items
        params = params or []
        span = self._span(first, last)
        if head is not None:
            container_kind, options = head
            body = _Container(kind=container_kind, options=options, body=body, span=span)
        if kind == "net":
            return _NetDef(net=name[_TEXT], params=params, body=body, doc=None, span=span)
        return _BlockDef(block=name[_TEXT], params=params, body=body, doc=None, span=span)

    def derived_definition(
        self, items: list, first: _Token, last: _Token
    ) -> ir.NetDef | ir.BlockDef:
        kind, name, params, base, *rest = items
        body = rest[0] if rest else []
        fields = dict(
            params=params or [], base=base, body=body, doc=None, span=self._span(first, last)
        )
        if kind == "net":
            return _NetDef(net=name[_TEXT], **fields)
        return _BlockDef(block=name[_TEXT], **fields)

    def def_kind(self, items: list, first: _Token, last: _Token) -> str:
        return items[0][_TEXT]

    def def_params(self, items: list, first: _Token, last: _Token) -> list[ir.DefParam]:
        params = [p for p in items if p is not None]
        _check_unique([(p.name, p.span) for p in params], "parameter")
        return params

    def def_param(self, items: list, first: _Token, last: _Token) -> ir.DefParam:
        name, default = items
        return _DefParam(name=name[_TEXT], default=default, span=self._span(first, last))

    def container_head(self, items: list, first: _Token, last: _Token) -> tuple[str, dict]:
        kind, options = items
        return kind, options or {}

    def container(self, items: list, first: _Token, last: _Token) -> str:
        return items[0][_TEXT]

    def suite(self, items: list, first: _Token, last: _Token) -> list:
        stmts: list = []
        for item in items:
            if isinstance(item, list):  # `input x1, x2` declares two inputs
                stmts.extend(item)
            elif item is not None:
                stmts.append(item)
        return stmts

    # -- statements
    def input_stmt(self, items: list, first: _Token, last: _Token) -> list[ir.Input]:
        return items

    def input_decl(self, items: list, first: _Token, last: _Token) -> ir.Input:
        name, dtype, dims = items
        return _Input(
            input=name[_TEXT],
            shape=dims,
            dtype=dtype[_TEXT] if dtype is not None else None,
            span=self._span(first, last),
        )

    def dims(self, items: list, first: _Token, last: _Token) -> list:
        return [d for d in items if d is not None]

    def let_stmt(self, items: list, first: _Token, last: _Token) -> ir.Let:
        targets, value, define = items
        return _Let(let=targets, value=value, define=define, span=self._span(first, last))

    def targets(self, items: list, first: _Token, last: _Token) -> list[str]:
        return [self._name(t) for t in items]

    def layer_stmt(self, items: list, first: _Token, last: _Token) -> ir.Layer:
        return _Layer(layer=items[0], span=self._span(first, last))

    def return_stmt(self, items: list, first: _Token, last: _Token) -> ir.Return:
        value, define = items
        return _Return(return_=value, define=define, span=self._span(first, last))

    def pass_stmt(self, items: list, first: _Token, last: _Token) -> None:
        return None

    def tensor_decl(self, items: list, first: _Token, last: _Token) -> ir.ParamDecl | ir.BufferDecl:
        kind, name, dtype, dims, init, *options = items
        span = self._span(first, last)
        _check_unique([(k, span) for k, _ in options], "option")
        fields = dict(
            shape=dims,
            dtype=dtype[_TEXT] if dtype is not None else None,
            init=init,
            options=dict(options),
            span=span,
        )
        if kind == "param":
            return _ParamDecl(param=name[_TEXT], **fields)
        return _BufferDecl(buffer=name[_TEXT], **fields)

    def decl_kind(self, items: list, first: _Token, last: _Token) -> str:
        return items[0][_TEXT]

    def decl_option(self, items: list, first: _Token, last: _Token) -> tuple[str, Any]:
        return items[0][_TEXT], items[1]

    def _container(self, kind: str, options: dict | None, body: list, span: Span) -> ir.Container:
        return _Container(kind=kind, options=options or {}, body=body, span=span)

    def container_let(self, items: list, first: _Token, last: _Token) -> ir.Let:
        targets, kind, options, body = items
        span = self._span(first, last)
        return _Let(
            let=targets, value=self._container(kind, options, body, span), define=None, span=span
        )

    def container_apply(self, items: list, first: _Token, last: _Token) -> ir.Let:
        targets, value, kind, options, body = items
        span = self._span(first, last)
        return _Let(
            let=targets, value=value, define=self._container(kind, options, body, span), span=span
        )

    def container_return(self, items: list, first: _Token, last: _Token) -> ir.Return:
        value, kind, options, body = items
        span = self._span(first, last)
        return _Return(return_=value, define=self._container(kind, options, body, span), span=span)

    def container_anon(self, items: list, first: _Token, last: _Token) -> ir.Layer:
        kind, options, body = items
        span = self._span(first, last)
        return _Layer(layer=self._container(kind, options, body, span), span=span)

    def call_parens(self, items: list, first: _Token, last: _Token) -> dict:
        (arguments,) = items
        args, kwargs = arguments if arguments is not None else ([], {})
        if args:
            raise DSLSyntaxError(
                "container options are keywords",
                args[0].span,
                hint='write e.g. ModuleList(run="parallel", merge="cat")',
            )
        return kwargs

    def if_stmt(self, items: list, first: _Token, last: _Token) -> ir.If:
        cond, then, *rest = items
        else_clause = rest.pop() if rest else None
        orelse = else_clause or []
        for elif_cond, elif_body, elif_span in reversed(rest):
            orelse = [_If(if_=elif_cond, then=elif_body, else_=orelse, span=elif_span)]
        return _If(if_=cond, then=then, else_=orelse, span=self._span(first, last))

    def elif_clause(self, items: list, first: _Token, last: _Token) -> tuple:
        return items[0], items[1], self._span(first, last)

    def else_clause(self, items: list, first: _Token, last: _Token) -> list:
        return items[0]

    def for_stmt(self, items: list, first: _Token, last: _Token) -> ir.For:
        var, iterable, body = items
        return _For(for_=var[_TEXT], in_=iterable, body=body, span=self._span(first, last))

    def init_block(self, items: list, first: _Token, last: _Token) -> ir.InitBlock:
        return _InitBlock(init=items, span=self._span(first, last))

    def init_rule(self, items: list, first: _Token, last: _Token) -> ir.InitRule:
        target, init = items
        if init is None:
            return _InitRule(match=None, init=target, span=self._span(first, last))
        return _InitRule(match=_pattern_text(target), init=init, span=self._span(first, last))

    # -- expressions
    def tuple_bare(self, items: list, first: _Token, last: _Token) -> ir.TupleExpr:
        return _TupleExpr(items=[i for i in items if i is not None], span=self._span(first, last))

    def ifexp(self, items: list, first: _Token, last: _Token) -> ir.IfExp:
        then, cond, orelse = items
        return _IfExp(cond=cond, then=then, orelse=orelse, span=self._span(first, last))

    def or_op(self, items: list, first: _Token, last: _Token) -> ir.BinOp:
        return _BinOp(op="or", left=items[0], right=items[1], span=self._span(first, last))

    def and_op(self, items: list, first: _Token, last: _Token) -> ir.BinOp:
        return _BinOp(op="and", left=items[0], right=items[1], span=self._span(first, last))

    def not_op(self, items: list, first: _Token, last: _Token) -> ir.UnaryOp:
        return _UnaryOp(op="not", operand=items[0], span=self._span(first, last))

    def binop(self, items: list, first: _Token, last: _Token) -> ir.BinOp:
        left, op, right = items
        return _BinOp(op=op[_TEXT], left=left, right=right, span=self._span(first, last))

    def unary(self, items: list, first: _Token, last: _Token) -> ir.ExprNode:
        op, operand = items
        span = self._span(first, last)
        if (
            op[_TEXT] == "-"
            and _is_number(operand)
            and (operand.span.line, operand.span.col) == (span.line, span.col + 1)
        ):
            # `-1` is a number, as Python users read it; `-(1)` and `- 1` stay operations.
            return _Const(value=-operand.value, span=span)
        return _UnaryOp(op=op[_TEXT], operand=operand, span=span)

    def call(self, items: list, first: _Token, last: _Token) -> ir.Call:
        func, arguments = items
        args, kwargs = arguments if arguments is not None else ([], {})
        return _Call(func=func, args=args, kwargs=kwargs, span=self._span(first, last))

    def arguments(self, items: list, first: _Token, last: _Token) -> tuple[list, dict]:
        args: list = []
        kwargs: dict = {}
        key_spans: dict[str, Span] = {}
        for item in items:
            if isinstance(item, tuple):
                key, value, span = item
                if key in kwargs:
                    raise DSLSyntaxError(
                        f"keyword argument '{key}' is given twice",
                        span,
                        notes=[Note("first given here", key_spans[key])],
                    )
                kwargs[key] = value
                key_spans[key] = span
            else:
                if kwargs:
                    raise DSLSyntaxError(
                        "a positional argument follows a keyword argument",
                        item.span,
                        hint="put positional arguments first",
                    )
                args.append(item)
        return args, kwargs

    def kwarg(self, items: list, first: _Token, last: _Token) -> tuple:
        return items[0][_TEXT], items[1], self._tok(items[0])

    def index(self, items: list, first: _Token, last: _Token) -> ir.Index:
        value, index = items
        return _Index(value=value, index=index, span=self._span(first, last))

    def subscript_tuple(self, items: list, first: _Token, last: _Token) -> ir.TupleExpr:
        return _TupleExpr(items=items, span=self._span(first, last))

    def slice(self, items: list, first: _Token, last: _Token) -> ir.Slice:
        start, stop, step = [*items, None, None, None][:3]
        return _Slice(start=start, stop=stop, step=step, span=self._span(first, last))

    def attr(self, items: list, first: _Token, last: _Token) -> ir.Attr:
        value, name = items
        return _Attr(value=value, attr=name[_TEXT], span=self._span(first, last))

    def number(self, items: list, first: _Token, last: _Token) -> ir.Const:
        return _Const(value=_number(items[0][_TEXT]), span=self._span(first, last))

    def string(self, items: list, first: _Token, last: _Token) -> ir.Const:
        return _Const(value=_unescape(items[0][_TEXT][1:-1]), span=self._span(first, last))

    def name(self, items: list, first: _Token, last: _Token) -> ir.Name:
        return _Name(id=self._name(items[0]), span=self._span(first, last))

    def true(self, items: list, first: _Token, last: _Token) -> ir.Const:
        return _Const(value=True, span=self._span(first, last))

    def false(self, items: list, first: _Token, last: _Token) -> ir.Const:
        return _Const(value=False, span=self._span(first, last))

    def none(self, items: list, first: _Token, last: _Token) -> ir.Const:
        return _Const(value=None, span=self._span(first, last))

    def list(self, items: list, first: _Token, last: _Token) -> ir.ListExpr:
        return _ListExpr(items=[i for i in items if i is not None], span=self._span(first, last))

    def empty_tuple(self, items: list, first: _Token, last: _Token) -> ir.TupleExpr:
        return _TupleExpr(items=[], span=self._span(first, last))

    def paren(self, items: list, first: _Token, last: _Token) -> ir.ExprNode:
        return items[0]

    def tuple_one(self, items: list, first: _Token, last: _Token) -> ir.TupleExpr:
        return _TupleExpr(items=items, span=self._span(first, last))

    def tuple_many(self, items: list, first: _Token, last: _Token) -> ir.TupleExpr:
        return _TupleExpr(items=[i for i in items if i is not None], span=self._span(first, last))

    def dict(self, items: list, first: _Token, last: _Token) -> ir.DictExpr:
        pairs = [i for i in items if i is not None]
        return _DictExpr(
            keys=[k for k, _ in pairs], values=[v for _, v in pairs], span=self._span(first, last)
        )

    def dict_item(self, items: list, first: _Token, last: _Token) -> tuple:
        return items[0], items[1]


def _is_number(node: Any) -> bool:
    return (
        isinstance(node, ir.Const)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )


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


# ----------------------------------------------------------------------------- the LALR loop
#
# Lark's own loop builds a parse tree (one node per rule, positions propagated through every
# `?rule` in the chain `test -> or_test -> ... -> atom`) that a Transformer then walks again.
# `_run` steps through the same parse table, so it accepts the same language, lexes in the
# same contexts and fails at the same token with the same expectations; but it builds the IR
# as each rule reduces, and reduces a unit rule such as `?test: or_test` by changing state only.


class _Reduce(NamedTuple):
    """What reducing one grammar rule does."""

    size: int  # how many values it takes off the stack
    goto: str  # the rule's name, to look up the next state
    kind: int  # _UNIT, _INLINE, _REPEAT or _NODE
    build: Callable[..., Any] | None  # the `_ToIR` method for the rule or its alias
    plan: tuple | None  # which stack values become the method's items (None: all of them)


_UNIT = 0  # `?a: b`: the value passes up unchanged
_INLINE = 1  # `?stmt: simple_stmt _NEWLINE`: one item passes up; several go to `build`
_REPEAT = 2  # a rule Lark made for `x*` or `x+`: its items join those of the rule using it
_NODE = 3  # every other rule: `build` makes its value


class _TooDeep(Exception):
    """The text nests deeper than MAX_DEPTH."""


def _prepare(lark: Lark) -> _Parser:
    """Lark's parse table, each reduction worked out once (see `_Reduce`), and its lexer's
    terminals and keywords (see `_lex`)."""
    conf = lark.parse_interactive("").parser_state.parse_conf
    reductions: dict[Rule, _Reduce] = {}
    actions: dict[int, dict[str, int | _Reduce]] = {}
    for state, row in conf.states.items():
        actions[state] = {}
        for symbol, (action, arg) in row.items():
            if action is Shift:
                actions[state][symbol] = arg
            else:
                if arg not in reductions:
                    reductions[arg] = _reduction(arg)
                actions[state][symbol] = reductions[arg]
    indented = isinstance(lark.options.postlex, _Indenter)
    contextual = lark.parser.lexer.lexer if indented else lark.parser.lexer
    (terminals,) = contextual.root_lexer.scanner._mres  # one regex: far fewer than 100 terminals
    (spaces,) = [
        t.pattern.to_regexp()
        for t in lark.terminals
        if t.name in lark.lexer_conf.ignore and re.fullmatch(t.pattern.to_regexp(), " ")
    ]
    # spaces go with the token after them: a fifth fewer matches
    with_spaces = re.compile(f"(?:{spaces})?+(?:{terminals.pattern})", terminals.flags)
    return _Parser(
        lark,
        actions,
        conf.end_state,
        with_spaces,
        re.compile(spaces),
        _keywords(contextual),
        indented,
    )


def _keywords(contextual: Any) -> dict[int, dict[str, str]]:
    """Per parser state, the words that Lark's contextual lexer reads there as their own
    terminals (`net` as NET, not NAME); states without any are left out."""
    keywords: dict[int, dict[str, str]] = {}
    for state, lexer in contextual.lexers.items():
        words = {}
        for terminal in lexer.terminals:
            if isinstance(terminal.pattern, PatternStr) and _WORD.fullmatch(terminal.pattern.value):
                assert not terminal.pattern.flags
                words[terminal.pattern.value] = terminal.name
        if words:
            keywords[state] = words
    return keywords


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _reduction(rule: Rule) -> _Reduce:
    goto = str(rule.origin.name)  # a plain str: Lark's names are Tokens, slower as dict keys
    name = str(rule.alias or goto)
    plan = _child_plan(rule)
    size = len(rule.expansion)
    if name.startswith("_"):
        return _Reduce(size, goto, _REPEAT, None, plan)
    if rule.options.expand1 and not rule.alias:
        if plan is None and size == 1:
            return _Reduce(size, goto, _UNIT, None, None)
        return _Reduce(size, goto, _INLINE, getattr(_ToIR, name, None), plan)
    return _Reduce(size, goto, _NODE, getattr(_ToIR, name), plan)


def _child_plan(rule: Rule) -> tuple | None:
    """The items a rule's method receives, as Lark's tree builder would pass them: anonymous
    tokens dropped, an absent `[x]` as None, the items of a `x*` rule spliced in. Returns
    ((stack index, splice?, Nones before), ...) and the Nones after, or None when the items
    are the stack values as they are."""
    expansion = rule.expansion
    absent = "".join("1" if flag else "0" for flag in rule.options.empty_indices)
    nones = [len(run) for run in absent.split("0")] if absent else [0] * (len(expansion) + 1)
    steps = []
    pending = 0
    for index, symbol in enumerate(expansion):
        pending += nones[index]
        if rule.options.keep_all_tokens or not (symbol.is_term and symbol.filter_out):
            steps.append((index, not symbol.is_term and symbol.name.startswith("_"), pending))
            pending = 0
    trailing = pending + nones[len(expansion)]
    if (
        trailing
        or len(steps) < len(expansion)
        or any(splice or before for _, splice, before in steps)
    ):
        return tuple(steps), trailing
    return None


def _collect(values: list, plan: tuple) -> list:
    steps, trailing = plan
    items: list = []
    for index, splice, nones in steps:
        if nones:
            items += [None] * nones
        if not splice:
            items.append(values[index])
        elif items:
            items += values[index]
        else:  # a left-recursive `x*` rule: grow its list in place, as Lark does
            items = values[index]
    if trailing:
        items += [None] * trailing
    return items


# A token: (terminal, text, line, column, end line, end column), and, read by Lark's lexer,
# the Lark `Token` it came from, for Lark's errors. Tuples: the parser makes some 90,000 of
# them for a 10,000-line file, at a tenth of the cost of Lark's tokens.
_Token = tuple
_TYPE, _TEXT, _LINE, _COLUMN, _END_LINE, _END_COLUMN, _LARK = range(7)


class _Unusual(Exception):
    """`_lex` or `_run` met what only Lark's own lexer and `_Indenter` describe well: a
    character no terminal matches, a token the parser does not expect, an indentation
    problem. The text is read again that way, for the same result or the same error."""


def _lex(parser: _Parser, text: str) -> list[_Token]:
    """The tokens of `text`, as Lark's lexer and `_Indenter` make them when the parser
    accepts them all (else `_Unusual`), at a fifth of the cost.

    Lark's contextual lexer matches, in each parser state, the regex of the terminals that
    state accepts. Here one regex of all terminals, in Lark's order, runs over the whole
    text, and `_run` reads a NAME as the keyword it spells where the state takes that
    keyword. Where the parser accepts the token found, it is the one Lark finds: among the
    terminals that match, in the same order, the first that the state accepts."""
    tokens: list[_Token] = []
    append = tokens.append
    line, line_start, expected = 1, 0, 0
    levels = [0]
    brackets = 0
    roles = _ROLES if parser.indented else _ROLES_UNINDENTED
    for found in parser.terminals.finditer(text):
        kind = found.lastgroup
        pos, stop = found.span(kind)
        if found.start() != expected:  # finditer skipped characters that no terminal matches
            raise _Unusual
        expected = stop
        role = roles.get(kind)
        if role is None or role is _OPEN or role is _CLOSE:
            column = pos - line_start + 1
            append((kind, text[pos:stop], line, column, line, column + stop - pos))
            if role is _OPEN:
                brackets += 1
            elif role is _CLOSE and brackets:
                brackets -= 1
            continue
        if role is _IGNORED:  # a comment, a `\` line break
            if "\n" in text[pos:stop]:
                line, line_start = line + 1, stop
            continue
        value = text[pos:stop]
        breaks = value.count("\n")
        if not breaks:
            raise _Unusual
        end_line, last_start = line + breaks, pos + value.rindex("\n") + 1
        newline = (kind, value, line, pos - line_start + 1, end_line, stop - last_start + 1)
        line, line_start = end_line, last_start
        if brackets:
            continue
        append(newline)
        indent_text = text[last_start:stop]
        if indent_text.strip(" "):  # a tab, or a comment ending the text: as `_Indenter` reads them
            raise _Unusual
        indent = stop - last_start
        if indent > levels[-1]:
            if len(levels) > MAX_NESTING:
                raise _Unusual
            levels.append(indent)
            append(("_INDENT", indent_text, *newline[_LINE:]))
            continue
        while indent < levels[-1]:
            levels.pop()
            append(("_DEDENT", indent_text, *newline[_LINE:]))
        if indent != levels[-1]:
            raise _Unusual
    if expected != len(text) and not parser.spaces.fullmatch(text, expected):
        raise _Unusual
    if len(levels) > 1:  # `_Indenter` closes the blocks still open at the last token read
        tokens += [("_DEDENT", "", *tokens[-1][_LINE:])] * (len(levels) - 1)
    return tokens


_OPEN, _CLOSE, _IGNORED, _BREAK = "open", "close", "ignored", "break"
_ROLES_UNINDENTED = {
    **dict.fromkeys(_Indenter.OPEN_PAREN_types, _OPEN),
    **dict.fromkeys(_Indenter.CLOSE_PAREN_types, _CLOSE),
    "COMMENT": _IGNORED,
    "__IGNORE_1": _IGNORED,
}
_ROLES = {**_ROLES_UNINDENTED, "_NEWLINE": _BREAK}


def _lark_tokens(interactive: Any) -> Iterator[_Token]:
    """The tokens of Lark's lexer and `_Indenter`, for `_run`."""
    for token in interactive.lexer_thread.lex(interactive.parser_state):
        yield (
            token.type,
            token.value,
            token.line,
            token.column,
            token.end_line,
            token.end_column,
            token,
        )


def _end_of_input(last: _Token | None) -> _Token:
    """`$END`, where Lark's own loop puts it."""
    if last is not None and len(last) > _LARK:
        token = Token.new_borrow_pos("$END", "", last[_LARK])
    else:
        token = Token("$END", "", 0, 1, 1)
    return (
        token.type,
        token.value,
        token.line,
        token.column,
        token.end_line,
        token.end_column,
        token,
    )


def _parse(parser: _Parser, text: str, builder: _ToIR) -> Any:
    """`_run` with `_lex`'s tokens; with Lark's lexer where `_lex` leaves off."""
    try:
        return _run(parser, text, builder, fast=True)
    except _Unusual:
        return _run(parser, text, builder, fast=False)


def _run(parser: _Parser, text: str, builder: _ToIR, fast: bool) -> Any:
    """Parse `text`, returning the value of its start rule.

    Each stack entry carries its value, its first token and its depth; a rule's span runs
    from its first entry's first token to the last token shifted. Syntax errors are Lark's:
    `UnexpectedToken` with the state's expected tokens and an interactive parser for its
    `accepts` (or, when `fast`, `_Unusual`, to read the text again with Lark's lexer). They
    take precedence over errors in what was read (a duplicate keyword, nesting too deep):
    those wait, the first one in reading order, until the text has parsed. One function, as
    it runs once per token and once per rule reduced."""
    interactive = parser.lark.parse_interactive(text)
    parser_state = interactive.parser_state
    states, values = parser_state.state_stack, parser_state.value_stack
    firsts: list[_Token | None] = []
    depths: list[int] = []
    push_state, push_value, push_first, push_depth = (
        states.append,
        values.append,
        firsts.append,
        depths.append,
    )
    actions, end_state, unit_chains, keywords = (
        parser.actions,
        parser.end_state,
        parser.unit_chains,
        parser.keywords,
    )
    failure: Exception | None = None
    state = states[-1]
    last = None
    tokens = _lex(parser, text) if fast else _lark_tokens(interactive)
    try:
        for token in itertools.chain(tokens, (None,)):
            if token is None:
                token = _end_of_input(last)
            symbol = token[_TYPE]
            if symbol == "NAME" and state in keywords:
                symbol = keywords[state].get(token[_TEXT], symbol)
            while True:
                action = actions[state].get(symbol)
                if action.__class__ is int:
                    state = action
                    push_state(state)
                    push_value(token)
                    push_first(token)
                    push_depth(0)
                    last = token
                    break
                if action is None:
                    if fast:
                        raise _Unusual
                    raise UnexpectedToken(
                        token[_LARK],
                        {name for name in actions[state] if name.isupper()},
                        state=parser_state,
                    )
                size, goto, kind, build, plan = action
                if kind == _UNIT:
                    key = (states[-2], state, symbol)
                    state = unit_chains.get(key)
                    if state is None:
                        state = unit_chains[key] = _unit_chain(parser, *key)
                    if state == end_state:
                        return _accept(values[-1], failure)
                    states[-1] = state
                    continue
                if size:
                    taken = values[-size:]
                    first, end, depth = firsts[-size], last, max(depths[-size:])
                    del states[-size:], values[-size:], firsts[-size:], depths[-size:]
                else:
                    taken, first, end, depth = [], None, None, 0
                items = taken if plan is None else _collect(taken, plan)
                if kind == _REPEAT:
                    value = items
                elif kind == _INLINE and len(items) == 1:
                    value = items[0]
                else:
                    depth += 1
                    try:
                        value = build(builder, items, first, end)
                    except Exception as exc:
                        # Later rules may fail on the None left here; only the first error counts.
                        failure = failure or (
                            exc if isinstance(exc, DSLError) else VisitError(goto, items, exc)
                        )
                        value = None
                state = actions[states[-1]][goto]
                if state == end_state:
                    return _accept(value, failure)
                if depth > MAX_DEPTH and failure is None:
                    failure = _TooDeep()
                push_state(state)
                push_value(value)
                push_first(first)
                push_depth(depth)
    except UnexpectedInput as exc:
        exc.interactive_parser = interactive
        raise
    raise AssertionError("the parse table ended without accepting or failing")


def _unit_chain(parser: _Parser, below: int, state: int, symbol: str) -> int:
    """The state reached by reducing, one after another, the unit rules that `symbol` calls
    for (`atom -> postfix -> power -> ... -> test` is ten of them)."""
    action = parser.actions[state].get(symbol)
    while isinstance(action, _Reduce) and action.kind == _UNIT and state != parser.end_state:
        state = parser.actions[below][action.goto]
        action = parser.actions[state].get(symbol)
    return state


def _accept(value: Any, failure: Exception | None) -> Any:
    if failure is not None:
        raise failure
    return value


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
    unread = 0  # every line before lines[unread] is claimed

    def take(before: int) -> list[str]:
        nonlocal unread
        end = bisect.bisect_left(lines, before, lo=unread)
        taken = [n for n in lines[unread:end] if n not in claimed]
        unread = end
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
        """The statements with their comments: the same list when none of them changed."""
        if not stmts or unread == len(lines) or lines[unread] >= _last_line(stmts):
            return stmts  # no comment left before their end
        visited = [visit_stmt(s) for s in stmts]
        return stmts if all(new is old for new, old in zip(visited, stmts)) else visited

    def visit_container(container: ir.Container) -> ir.Container:
        body = visit_stmts(container.body)
        return container if body is container.body else container.model_copy(update={"body": body})

    def visit_stmt(stmt: Any) -> Any:
        leading = take(stmt.span.line)
        updates: dict[str, Any] = {}
        if leading:
            updates["span"] = _with_comments(stmt.span, leading)
        fields = stmt.__dict__  # not getattr: a missing attribute costs pydantic an exception
        for field in ("then", "else_", "body"):
            value = fields.get(field)
            if isinstance(value, list) and (visited := visit_stmts(value)) is not value:
                updates[field] = visited
        for field in ("value", "define", "layer"):
            value = fields.get(field)
            if isinstance(value, ir.Container) and (visited := visit_container(value)) is not value:
                updates[field] = visited
        return stmt.model_copy(update=updates) if updates else stmt

    new_imports = []
    for imp in spec.imports:
        leading = take(imp.span.line)
        new_imports.append(
            imp.model_copy(update={"span": _with_comments(imp.span, leading)}) if leading else imp
        )
    new_defs = []
    for definition in spec.defs:
        doc = doc_block(definition.span.line)
        leading = take(definition.span.line)
        body = definition.body
        body = visit_container(body) if isinstance(body, ir.Container) else visit_stmts(body)
        updates: dict[str, Any] = {"doc": "\n".join(doc)} if doc else {}
        if body is not definition.body:
            updates["body"] = body
        if leading:
            updates["span"] = _with_comments(definition.span, leading)
        new_defs.append(definition.model_copy(update=updates) if updates else definition)
    trailing = take(10**12)
    span = _with_comments(spec.span, trailing) if trailing else spec.span
    return spec.model_copy(update={"imports": new_imports, "defs": new_defs, "span": span})


def _last_line(stmts: list) -> int:
    """The line where the last of these statements ends. An `elif` is an If whose span ends
    where its `else` begins, so follow those."""
    line = 0
    stmt = stmts[-1]
    while True:
        line = max(line, stmt.span.end_line)
        if not (isinstance(stmt, ir.If) and stmt.else_):
            return line
        stmt = stmt.else_[-1]


def _with_comments(span: Span, comments: list[str]) -> Span:
    return span._replace(comments=(*span.comments, *comments))
