"""Build-time arithmetic and comparisons, guarded: no number or sequence may grow large
enough to eat the machine (also when repeated in a loop: `n = n * n`, `s = s + s`)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from dsl.elaborate.limits import expanded_size
from dsl.elaborate.values import MAX_INT_BITS, MAX_SEQUENCE, kind_of
from dsl.errors import EvaluationError, LimitError
from dsl.source import Span
from dsl.torchlib.registry import OPERATORS

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}  # fmt: skip
_NUMBERS = frozenset({int, float, bool})
IDENTITY_OPERATORS = ("is", "is not")


def identity(op: str, left: Any, right: Any, span: Span) -> bool:
    """`a is None`, `flag is not True`: identity as Python code uses it, with None, True or
    False on one side; a tensor or a size is never one of them."""
    if not any(side is singleton for side in (left, right) for singleton in (None, True, False)):
        raise EvaluationError(
            f"'{op}' compares {kind_of(left)} with {kind_of(right)}; it takes None, True or False "
            "on one side",
            span,
            hint="compare values with == or !=",
        )
    return (left is right) == (op == "is")


def python_op(op: str, left: Any, right: Any, span: Span) -> Any:
    _guard_numbers(op, left, right, span)
    if type(left) not in _NUMBERS or type(right) not in _NUMBERS:
        _guard_sequences(op, left, right, span)
    try:
        if op in OPERATORS:
            return OPERATORS[op](left, right)
        return _COMPARISONS[op](left, right)
    except ZeroDivisionError:
        raise EvaluationError("division by zero", span) from None
    except (TypeError, ValueError, OverflowError) as exc:
        hint = (
            "'in' looks for an item in a list, tuple, dict or string"
            if op in ("in", "not in")
            else None
        )
        raise EvaluationError(
            f"cannot compute {kind_of(left)} {op} {kind_of(right)}: {exc}", span, hint=hint
        ) from None


def _guard_numbers(op: str, left: Any, right: Any, span: Span) -> None:
    if not (isinstance(left, int) and isinstance(right, int)):
        return
    if op == "**" and abs(left) > 1 and right * max(abs(left).bit_length(), 1) > MAX_INT_BITS:
        raise LimitError(f"{left} ** {right} is too large to compute", span)
    if op == "*" and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise LimitError(
            f"a product of {left.bit_length()}-bit and {right.bit_length()}-bit integers is too large to compute",
            span,
        )


def _guard_sequences(op: str, left: Any, right: Any, span: Span) -> None:
    if op == "*":
        for seq, count in ((left, right), (right, left)):
            if (
                isinstance(seq, str | list | tuple)
                and isinstance(count, int)
                and count > 0
                and expanded_size(seq, MAX_SEQUENCE) * count > MAX_SEQUENCE
            ):
                raise LimitError(
                    f"repeating a {type(seq).__name__} {count} times is over the limit of {MAX_SEQUENCE} items",
                    span,
                )
    joined = (
        op == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
    )
    if (
        joined
        and expanded_size(left, MAX_SEQUENCE) + expanded_size(right, MAX_SEQUENCE) > MAX_SEQUENCE
    ):
        raise LimitError(
            f"joining these {type(left).__name__}s is over the limit of {MAX_SEQUENCE} items", span
        )
    compared = op in _COMPARISONS and isinstance(left, list | tuple | dict)
    member = op in ("in", "not in") and isinstance(right, list | tuple | dict)
    if (compared or member) and expanded_size([left, right], MAX_SEQUENCE) > MAX_SEQUENCE:
        raise LimitError(
            f"comparing {type(left).__name__}s of over {MAX_SEQUENCE} items (nested items "
            "counted) is over the limit",
            span,
        )
    if op == "%" and isinstance(left, str):
        raise EvaluationError(
            "'%' formatting of strings is not supported",
            span,
            hint="build names with templates instead: name{i}",
        )
