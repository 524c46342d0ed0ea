"""Where the IR nodes that `NetTransformer` builds sit in the text, and the bookkeeping
around each rule it reduces (see `rule`).

A rule's span runs from its first token to the last token the parser has shifted
(`LastToken.previous`); rules that start with a keyword or a bracket keep that token (the
grammar names it) so that the span can start there."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Protocol

from lark import Token
from lark.exceptions import VisitError

from dsl.errors import DSLError
from dsl.source import Span

MAX_DEPTH = 500  # rules inside rules; later passes walk the IR recursively

PartReader = Callable[[str, Span], Any]
Items = list[Any]


class TooDeep(Exception):
    """The text nests deeper than MAX_DEPTH."""


class LastToken(Protocol):
    previous: Token | None


def rule(method: Callable[[Any, Items], Any]) -> Callable[[Any, Items], Any]:
    """A rule's builder: an error it raises waits (its value is None), and the depth of
    the value (1 + its deepest child's) is checked against MAX_DEPTH."""

    name = method.__name__

    @functools.wraps(method)
    def build(self: Positions, items: Items) -> Any:
        depths = self.depths
        depth = 0
        for item in items:
            known = depths.get(id(item))
            if known is not None and known[0] is item and known[1] > depth:
                depth = known[1]
        try:
            value = method(self, items)
        except Exception as exc:  # later rules may fail on the None left here: the first counts
            if self.failure is None:
                self.failure = exc if isinstance(exc, DSLError) else VisitError(name, items, exc)
            return None
        if depth >= MAX_DEPTH and self.failure is None:
            self.failure = TooDeep()
        if value is not None:
            depths[id(value)] = (value, depth + 1)
        return value

    return build


_NAME_TEMPLATE_PART = re.compile(r"\{([^{}\n]*)\}")


class Positions:
    """Spans in the file: a text parsed on its own (`parse_expression`) may sit at `origin`."""

    def __init__(self, tracker: LastToken, read_part: PartReader | None) -> None:
        self.tracker = tracker
        self.read_part = read_part
        self.begin("<string>", None)

    def begin(self, file: str, origin: Span | None) -> None:
        self.file = file
        self.line_offset = origin.line - 1 if origin else 0
        self.col_offset = origin.col - 1 if origin else 0
        self.shifted = bool(self.line_offset or self.col_offset)
        self.failure: Exception | None = None
        self.depths: dict[int, tuple[Any, int]] = {}
        # values written in parentheses: a rule that starts with one starts at its '('
        self.parenthesized: dict[int, tuple[Any, Token]] = {}

    def _span(self, first: Any) -> Span:
        """From `first` (a token or a node) to the last token shifted."""
        last = self.tracker.previous
        assert last is not None
        if not isinstance(first, Token):
            opened = self.parenthesized.get(id(first))
            if opened is not None and opened[0] is first:
                first = opened[1]
        if isinstance(first, Token):
            line, col = first.line, first.column
        else:
            line, col = first.span.line, first.span.col
            if self.shifted:  # back to the text's own position
                line -= self.line_offset
                col -= self.col_offset if line == 1 else 0
        return self._at(line, col, last.end_line, last.end_column)

    def _tok(self, token: Token) -> Span:
        return self._at(token.line, token.column, token.end_line, token.end_column)

    def _last(self) -> Span:
        assert self.tracker.previous is not None
        return self._tok(self.tracker.previous)

    def _at(self, line: Any, col: Any, end_line: Any, end_col: Any) -> Span:
        if self.shifted:
            col_shift = self.col_offset if line == 1 else 0
            end_shift = self.col_offset if end_line == 1 else 0
            end_line, end_col = (end_line or line) + self.line_offset, (end_col or col) + end_shift
            line, col = line + self.line_offset, col + col_shift
        return Span(self.file, line, col, end_line or line, end_col or col)

    def finish(self, value: Any) -> Any:
        failure, self.failure, self.depths, self.parenthesized = self.failure, None, {}, {}
        if failure is not None:
            raise failure
        return value

    def _name(self, token: Token) -> str:
        """Validate the `{expr}` parts of a templated name where it is written."""
        text = token.value
        if "{" in text and self.read_part is not None:
            span = self._tok(token)
            for match in _NAME_TEMPLATE_PART.finditer(text):
                part_span = Span(
                    file=span.file,
                    line=span.line,
                    col=span.col + match.start(1),
                    end_line=span.line,
                    end_col=span.col + match.end(1),
                )
                self.read_part(match.group(1), part_span)
        return text
