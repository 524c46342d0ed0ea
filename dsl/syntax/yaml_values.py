"""The values the YAML reader builds: scalars and lists that remember where they were
written (mappings carry a `__span__` key), and how to name a value in a message."""

from __future__ import annotations

from typing import Any

from dsl import ir
from dsl.source import NO_SPAN, Span


class _Located:
    """A scalar whose value carries the span it was read at (`Str`, `Int`, `Float`)."""

    span: Span

    def __new__(cls, value: Any, span: Span) -> Any:
        obj = super().__new__(cls, value)  # type: ignore[call-arg]  # str, int or float's
        obj.span = span
        return obj


class Str(_Located, str):
    pass


class Int(_Located, int):
    pass


class Float(_Located, float):
    pass


class SpannedList(list):
    def __init__(self, span: Span) -> None:
        super().__init__()
        self.span = span


def span_of(value: Any) -> Span:
    if isinstance(value, dict):
        span = value.get("__span__", NO_SPAN)
        return span if isinstance(span, Span) else NO_SPAN
    return getattr(value, "span", NO_SPAN)


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string '{value}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        keys = [str(k) for k in value if k != "__span__"]
        return f"a mapping with keys {', '.join(keys)}" if keys else "an empty mapping"
    if isinstance(value, ir.Node):
        return f"a {type(value).__name__} expression"
    return f"a value of type {type(value).__name__}"
