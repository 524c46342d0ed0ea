"""Source positions and the texts they point into.

A `Span` is where a node came from. Spans never take part in equality: two IR trees
are equal when they mean the same thing, wherever they were written.
"""

from __future__ import annotations

from typing import NamedTuple

_SOURCES: dict[str, str] = {}


def register_source(file: str, text: str) -> None:
    """Remember a file's text so that diagnostics can quote it."""
    _SOURCES[file] = text


def source_line(file: str, line: int) -> str | None:
    text = _SOURCES.get(file)
    if text is None or line < 1:
        return None
    lines = text.splitlines()
    return lines[line - 1] if line <= len(lines) else None


class Span(NamedTuple):
    """A 1-based line/column range in a named source.

    A named tuple, not a model: a parse makes one per IR node, and a tuple is the cheapest
    object Python makes. Spans compare and hash as the values they are (comments included);
    IR nodes leave their spans out of their own equality (`ir.POSITION_FIELDS`)."""

    file: str = "<string>"
    line: int = 0
    col: int = 0
    end_line: int = 0
    end_col: int = 0
    # Full-line comments written just above the node: kept by `dsl fmt`, ignored by equality.
    comments: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.line > 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span()
