"""The Lark side of the `.net` reader: Lark's LALR parser (net_grammar.py) and a
transformer that builds the IR as rules reduce (net_transform.py), one set per thread.
parse_net.py imports this module when it first parses a text, so that a process whose
specs are all kept parsed (parse_cache.py) never imports Lark.

Lark's own exceptions never leave this module: each becomes a `DSLSyntaxError` that says
what was expected, what was found, and where (net_errors.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from lark.exceptions import LarkError, UnexpectedInput, VisitError

from dsl import ir
from dsl.errors import DSLError, DSLSyntaxError, LimitError
from dsl.pauses import gc_paused
from dsl.source import Span
from dsl.syntax.net_comments import attach_comments, comments_of
from dsl.syntax.net_errors import syntax_error
from dsl.syntax.net_grammar import Reader
from dsl.syntax.net_positions import TooDeep


def read_spec(text: str, file: str) -> ir.SpecFile:
    """A whole `.net` text (checked for size, ending in a newline) -> its IR."""
    with gc_paused():  # some 20 objects per line, all alive: collecting found nothing
        spec = _read(lambda: _THREAD.get("spec").read(text, file), text, file, None, "spec")
        return attach_comments(spec, comments_of(text))


def read_expression(text: str, span: Span | None) -> ir.ExprNode:
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
