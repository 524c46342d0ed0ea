"""`.net` text -> IR: the limits a text is checked against, then the reader
(net_parser.py: Lark's LALR parser and a transformer that builds the IR), imported when a
text is first parsed: importing this module costs no Lark."""

from __future__ import annotations

from dsl import ir
from dsl.errors import LimitError, SizeLimitError
from dsl.source import Span, register_source

MAX_SOURCE_BYTES = 20_000_000
MAX_LINE_CHARS = 100_000
MAX_SOURCE_LINES = (
    100_000  # far beyond any real spec (loops write repetition), and parsed in seconds
)


def check_source_size(text: str, file: str) -> None:
    """Refuse, before parsing, a file too large to read in bounded time and memory."""
    if len(text) > MAX_SOURCE_BYTES:
        raise LimitError(
            f"the file is {len(text)} characters long; the limit is {MAX_SOURCE_BYTES}",
            Span(file=file, line=1, col=1),
        )
    lines = text.count("\n") + 1
    _check_line_lengths(text, file)
    if lines > MAX_SOURCE_LINES:
        raise LimitError(
            f"the file has {lines} lines; the limit is {MAX_SOURCE_LINES}",
            Span(file=file, line=1, col=1),
            hint="write repeated parts with a build-time 'for' loop or a block",
        )


def _check_line_lengths(text: str, file: str) -> None:
    """A line over MAX_LINE_CHARS is refused: Python's regex engine, lexing a string literal
    that long, takes some 200 bytes of memory per character."""
    longest = max(text.split("\n"), key=len)
    if len(longest) > MAX_LINE_CHARS:
        line = text[: text.index(longest)].count("\n") + 1
        raise SizeLimitError(
            f"line {line} is {len(longest):,} characters long; the limit is {MAX_LINE_CHARS:,}",
            Span(file=file, line=line, col=1),
            hint="split long expressions over lines inside brackets; keep data out of specs",
        )


def parse_net(text: str, file: str = "<string>") -> ir.SpecFile:
    """Parse a whole `.net` file."""
    check_source_size(text, file)
    text = text.replace("\r\n", "\n")
    register_source(file, text)
    if not text.endswith("\n"):
        text += "\n"
    from dsl.syntax import net_parser

    return net_parser.read_spec(text, file)


def parse_expression(text: str, span: Span | None = None) -> ir.ExprNode:
    """Parse one expression (used for YAML's `${...}` values and `{...}` name templates).

    `span` is where the expression's first character sits in its file."""
    from dsl.syntax import net_parser

    return net_parser.read_expression(text, span)
