"""The values the YAML reader builds: scalars and lists that remember where they were
written (mappings carry a `__span__` key), and how to name a value in a message."""

from __future__ import annotations

from typing import Any

from dsl import ir
from dsl.source import NO_SPAN, Span


def _located(base: type) -> type:
    """A scalar type whose values carry the span they were read at."""

    def new(cls: type, value: Any, span: Span) -> Any:
        obj = base.__new__(cls, value)
        obj.span = span
        return obj

    return type(f"_{base.__name__.capitalize()}", (base,), {"__new__": new})


Str, Int, Float = _located(str), _located(int), _located(float)


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
