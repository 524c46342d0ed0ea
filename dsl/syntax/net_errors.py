"""Lark's syntax errors -> `DSLSyntaxError`s that say what was expected, what was found,
and where, with hints for the usual slips (an unclosed bracket, a missing ':')."""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from dsl.errors import DSLSyntaxError, IndentationError_, Note
from dsl.source import Span

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
        elif name.isupper() and not name.startswith("__"):  # '__ANON_0': an unnamed terminal
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


def syntax_error(
    exc: UnexpectedInput, text: str, file: str, origin: Span | None = None
) -> DSLSyntaxError:
    """Lark's error -> the DSL's: `origin` is where a text read on its own (an expression)
    starts in its file."""
    line, col = _error_position(exc, text)
    if origin is not None and origin:
        col = col + origin.col - 1 if line == 1 else col
        line = line + origin.line - 1
    span = Span(file=file, line=line, col=col, end_line=line, end_col=col + _token_width(exc))
    habit = None if isinstance(exc, UnexpectedEOF) else _python_habit(text, span, origin)
    if habit is not None:
        return habit
    if isinstance(exc, UnexpectedCharacters):
        return _character_error(exc, text, span)
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
    if token.type == "_INDENT":
        return IndentationError_(
            "unexpected indentation",
            span,
            hint="this line is indented more than the statement before it, which does not open a block with ':'",
        )
    if token.type == "$END" or (token.type == "_DEDENT" and token == ""):
        return _early_end_error(what, expected, text, span, origin)
    return _token_error(token, expected, text, span, origin)


def _character_error(exc: UnexpectedCharacters, text: str, span: Span) -> DSLSyntaxError:
    pos = exc.pos_in_stream or 0
    char = text[pos] if pos < len(text) else ""
    if char == "\t":
        return IndentationError_(
            "a tab where the line's content was expected", span, hint="indent with spaces"
        )
    return DSLSyntaxError(f"unexpected character '{char}'", span, hint=_hint_for_char(char))


def _early_end_error(
    what: str, expected: set[str], text: str, span: Span, origin: Span | None
) -> DSLSyntaxError:
    notes = _bracket_note(text, len(text), span.file, origin)
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


def _token_error(
    token: Token, expected: set[str], text: str, span: Span, origin: Span | None
) -> DSLSyntaxError:
    message = f"expected {_describe_expected(expected)}, found {_describe_token(token)}"
    start = token.start_pos or 0
    open_bracket = _unclosed_bracket(text, start) if token.start_pos is not None else None
    if open_bracket is not None and open_bracket[1] < (token.line or 0):
        # Inside brackets line breaks do not end a statement, so the next line reads on.
        char, bracket_line, _ = open_bracket
        hint = f"the '{char}' opened on line {bracket_line + (origin.line - 1 if origin else 0)} is not closed"
        notes = _bracket_note(text, start, span.file, origin)
        return DSLSyntaxError(message, span, hint=hint, notes=notes)
    return DSLSyntaxError(message, span, hint=_token_hint(token, expected))


def _token_hint(token: Token, expected: set[str]) -> str | None:
    if token.type == "_NEWLINE" and "COLON" in expected:
        return "a line that opens a block ends with ':'"
    if token.type == "_NEWLINE" and expected & {"RPAR", "RSQB", "RBRACE"}:
        return "a bracket opened on this line is not closed"
    if token.type == "NAME" and str(token) in _PYTHON_WORDS:
        return _PYTHON_WORDS[str(token)]
    if token.type == "EQUAL" and "COLON" in expected:
        return "compare with '==', or bind a name on its own line"
    return None


_PYTHON_WORDS = {
    "def": "a def defines a build-time function at the top of a file; networks are 'net Name(...):'",
    "class": "define networks with 'net Name(...):' and reusable parts with 'block Name(...):'",
    "lambda": "the language has no lambdas; register a function with @dsl.register instead",
    "while": "only build-time 'for NAME in range(n):' loops exist",
    "import": "imports read 'from module import Name'",
}


_MEMBERS = "a net's members are plain names: write 'conv = Conv2d(...)' and apply it as 'conv(x)'"
_LAMBDA = "write the function's body where it is used, or register a function with @dsl.register"
_FORWARD = "a net's body is its forward: write the graph statements under 'net Name:' and end with 'return'"

# Python and Keras habits, found on the line of a syntax error: (pattern, message, hint).
# The error points at the group named 'at'; message and hint may name the groups.
_HABITS: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern), message, hint)
    for pattern, message, hint in (
        # `self.conv = ...`; a container block's own forward reads `self.name` (valid syntax)
        (r"^\s*(?P<at>self)\.[\w.]*\s*=(?!=)", "'self.' is not written in netdsl", _MEMBERS),
        (r"\b(?P<at>lambda)\b", "the language has no 'lambda'", _LAMBDA),
        (r"^\s*(?P<at>def)\s+forward\b", "'def forward' is not written in netdsl", _FORWARD),
        (
            r"^\s*(?P<at>forward)\s*(?:[=,(.\[]|$)",
            "'forward' is a keyword: 'forward:' opens a container block's own forward",
            "give the member another name, e.g. 'forward_'",
        ),
        (
            r"^\s*(?P<at>class)\b",
            "Python's '{at}' does not define a network",
            _PYTHON_WORDS["class"],
        ),
        (
            r"^\s*(?P<at>(?:\w+[.\[][^=]*?)(?P<op>//|\*\*|[-+*/%@|&])=)",
            "'{op}=' updates a name; an attribute or an item cannot be updated in place",
            "bind a new value to a name instead: 'y = ...'",
        ),
        (
            r"^\s*(?:net|block|def)\b[^(]*\((?:.*?,)?\s*(?P<at>\*{1,2}\w*)",
            "parameters are named one by one; '{at}' is not part of the language",
            "list each parameter by name, with a default where it may be left out",
        ),
    )
)


def _python_habit(text: str, span: Span, origin: Span | None) -> DSLSyntaxError | None:
    """A syntax error on a line that uses a Python (or YAML) habit: said at its token."""
    line_no = span.line - (origin.line - 1 if origin else 0)
    lines = text.splitlines()
    if not 0 < line_no <= len(lines):
        return None
    line = lines[line_no - 1]
    shift = origin.col - 1 if origin and line_no == 1 else 0
    for pattern, message, hint in _HABITS:
        match = pattern.search(line)
        if match is not None:
            start, end = match.start("at") + 1 + shift, match.end("at") + 1 + shift
            groups = match.groupdict()
            at = Span(span.file, span.line, start, span.line, end)
            return DSLSyntaxError(message.format(**groups), at, hint=hint.format(**groups))
    return _dict_child(lines, line_no, span)


def _dict_child(lines: list[str], line_no: int, span: Span) -> DSLSyntaxError | None:
    """`cls: Linear(10)` in a ModuleDict body, as YAML would write it."""
    match = re.match(r"^(\s+)(\w+)\s*(:)", lines[line_no - 1])
    if match is None:
        return None
    indent = len(match.group(1))
    header = next(
        (
            ln
            for ln in reversed(lines[: line_no - 1])
            if ln.strip() and len(ln) - len(ln.lstrip()) < indent
        ),
        "",
    )
    if "ModuleDict" not in header:
        return None
    name = match.group(2)
    col = match.start(3) + 1
    return DSLSyntaxError(
        "children of a ModuleDict are written 'name = Layer(...)'",
        Span(span.file, span.line, col, span.line, col + 1),
        hint=f"write '{name} = ...' instead of '{name}: ...'",
    )


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
    where: tuple[int | None, int | None] = (
        getattr(exc, "line", None),
        getattr(exc, "column", None),
    )
    if where[0] is None or where[0] < 1:
        return _last_position(text)
    return where[0], where[1] or 1


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
