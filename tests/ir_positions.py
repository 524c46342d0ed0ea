"""IR as plain data with every span spelt out: spans take no part in IR equality, so tests
that promise identical positions compare this."""

from __future__ import annotations

from typing import Any

from dsl import ir
from dsl.source import Span


def positions(value: Any) -> Any:
    """A value as nested plain data, with the type and span of everything spelt out."""
    span = value.get("__span__") if isinstance(value, dict) else getattr(value, "span", None)
    where = span._asdict() if isinstance(span, Span) else None
    if isinstance(value, ir.Node):
        fields = {
            name: positions(field) for name, field in value.__dict__.items() if name != "span"
        }
        return type(value).__name__, where, fields
    if isinstance(value, dict):
        items = [(positions(k), positions(v)) for k, v in value.items() if k != "__span__"]
        return "dict", where, items
    if isinstance(value, list):
        return type(value).__name__, where, [positions(item) for item in value]
    return type(value).__name__, where, repr(value)
