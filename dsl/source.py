"""Source positions and the texts they point into.

A `Span` is where a node came from. Spans never take part in equality: two IR trees
are equal when they mean the same thing, wherever they were written.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

# The texts diagnostics quote, by file name. Many specs share a name ("<string>"), so each
# thread sees the text it read last; the shared table answers for files read in another
# thread. An error keeps the texts it quotes (`source_text` when it is made), so reading
# another spec later does not change what it shows.
_SOURCES: dict[str, str] = {}
_THREAD_SOURCES = threading.local()


def _thread_sources() -> dict[str, str]:
    sources: dict[str, str] | None = getattr(_THREAD_SOURCES, "texts", None)
    if sources is None:
        sources = _THREAD_SOURCES.texts = {}
    return sources


def register_source(file: str, text: str) -> None:
    """Remember a file's text so that diagnostics can quote it."""
    _thread_sources()[file] = text
    _SOURCES[file] = text


def source_text(file: str) -> str | None:
    """The text of `file` as this thread last read it (else as any thread did)."""
    text = _thread_sources().get(file)
    return text if text is not None else _SOURCES.get(file)


def source_line(file: str, line: int, text: str | None = None) -> str | None:
    """Line `line` (1-based) of `text`, by default the text registered for `file`."""
    text = source_text(file) if text is None else text
    if text is None or line < 1:
        return None
    lines = text.splitlines()
    return lines[line - 1] if line <= len(lines) else None


class Span(NamedTuple):
    """A 1-based line/column range in a named source.

    A named tuple, not a model: a parse makes one per IR node, and a tuple is the cheapest
    object Python makes. Equality and hashing are not a tuple's: every span is equal."""

    file: str = "<string>"
    line: int = 0
    col: int = 0
    end_line: int = 0
    end_col: int = 0
    # Full-line comments written just above the node: kept by `dsl fmt`, ignored by equality.
    comments: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Span)

    def __ne__(self, other: object) -> bool:
        return not isinstance(other, Span)

    def __hash__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return self.line > 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span()
