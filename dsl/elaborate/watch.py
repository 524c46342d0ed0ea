"""The tensors a net's elaboration binds to names (`y = cat([a, b], 1)`, `h = x.mean(1)`),
for a tool that shows a value's shape where it is written (the language server's hover).
Off unless a caller watches; one entry per place a statement ran (a block's statement
runs once per distinct instance)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from dsl.source import Span

Seen = dict[tuple[str, int, str], list[Any]]  # (file, line, name) -> the meta tensors bound

_SEEN: ContextVar[Seen | None] = ContextVar("watched_values", default=None)


@contextmanager
def watching() -> Iterator[Seen]:
    seen: Seen = {}
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)


@contextmanager
def paused() -> Iterator[None]:
    """Elaborations that are not the one a tool shows (the symbolic-size check's reruns)."""
    token = _SEEN.set(None)
    try:
        yield
    finally:
        _SEEN.reset(token)


def note(span: Span, name: str, meta: Any) -> None:
    seen = _SEEN.get()
    if seen is not None:
        seen.setdefault((span.file, span.line, name), []).append(meta)
