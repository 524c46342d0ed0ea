"""Build-time decisions: the one place where a value becomes a yes or no (`if`, the
ternary `a if c else b`, `and`, `or`, `not`, `bool(...)`). A condition may use parameters
and sizes read from shapes, never tensor data, nor `training` (which `if training:` decides
when forward runs: dsl.elaborate.training)."""

from __future__ import annotations

from typing import Any

from dsl.elaborate import size_decisions
from dsl.elaborate.values import Dim, Training, Val, to_static
from dsl.errors import EvaluationError
from dsl.source import Span


def decide(value: Any, span: Span) -> bool:
    """Whether the condition `value` (written at `span`) holds."""
    if isinstance(value, Val):
        raise EvaluationError(
            "a build-time condition cannot depend on tensor values",
            span,
            hint="conditions may use parameters and shapes (x.shape[1]), not tensor data",
        )
    if isinstance(value, Training):
        raise EvaluationError(
            "'training' is known only when forward runs; this condition is decided while the model is built",
            span,
            hint="branch on the mode alone ('if training:', 'if not training:', 'a if training else b'), "
            "inside a build-time 'if' of its own",
        )
    if isinstance(value, Dim):
        size_decisions.note(span, value.value)
    return bool(to_static(value, span))
