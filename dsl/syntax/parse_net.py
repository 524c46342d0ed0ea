"""`.net` text -> IR, through Lark's LALR parser (net_grammar.py) and a transformer that
builds the IR as rules reduce (net_transform.py).

Lark's own exceptions never leave this module: each becomes a `DSLSyntaxError` that says
what was expected, what was found, and where (net_errors.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from lark.exceptions import LarkError, UnexpectedInput, VisitError

from dsl import ir
from dsl.errors import DSLError, DSLSyntaxError, LimitError, SizeLimitError
from dsl.pauses import gc_paused
from dsl.source import Span, register_source
from dsl.syntax.net_comments import attach_comments, comments_of
from dsl.syntax.net_errors import syntax_error
from dsl.syntax.net_grammar import Reader
from dsl.syntax.net_positions import TooDeep

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
    with gc_paused():  # some 20 objects per line, all alive: collecting found nothing
        spec = _read(lambda: _THREAD.get("spec").read(text, file), text, file, None, "spec")
        return attach_comments(spec, comments_of(text))


def parse_expression(text: str, span: Span | None = None) -> ir.ExprNode:
    """Parse one expression (used for YAML's `${...}` values and `{...}` name templates).

    `span` is where the expression's first character sits in its file."""
    return _read_expression(_THREAD.get("expression"), text, span)


def _read_expression(reader: Reader, text: str, span: Span | None) -> Any:
    origin = span or Span()
    return _read(
        lambda: reader.read(text, origin.file, origin), text, origin.file, origin, "expression"
    )


def _read(read: Callable[[], Any], text: str, file: str, origin: Span | None, what: str) -> Any:
    """`read()`, with Lark's errors and the reader's own turned into DSL errors."""
    where = origin if origin is not None else Span(file=file, line=1, col=1)
    try:
        return read()
    except DSLError:
        raise
    except UnexpectedInput as exc:
        raise syntax_error(exc, text, file, origin) from None
    except TooDeep:
        raise LimitError(f"the {what} nests too deeply to read", where) from None
    except VisitError as exc:  # a rule's builder failed on what it was given
        raise DSLSyntaxError(f"could not read this {what}: {exc.orig_exc}", where) from None
    except LarkError as exc:
        raise DSLSyntaxError(f"could not read this {what}: {exc}", where) from None


class _Readers(threading.local):
    """This thread's parsers, each made when first needed: Lark's parsers keep state while
    they parse."""

    def __init__(self) -> None:
        self.made: dict[str, Reader] = {}

    def get(self, name: str) -> Reader:
        reader = self.made.get(name)
        if reader is None:
            reader = self.made[name] = _MAKERS[name]()
        return reader


def _read_part(text: str, span: Span) -> Any:
    """A `{...}` part of a name, read while a spec or an expression is read: parts hold no
    names with parts, so this reader is never asked to read within its own reading."""
    return _read_expression(_THREAD.get("part"), text, span)


_MAKERS: dict[str, Callable[[], Reader]] = {
    "spec": lambda: Reader("start", _read_part),
    "expression": lambda: Reader("test", _read_part),
    "part": lambda: Reader("test", None),
}
_THREAD = _Readers()
