"""The builtin functions of build-time code (`range`, `len`, `min`, ...), bounded."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from dsl.elaborate.values import MAX_INT_BITS, MAX_LOOP, Builtin, to_static
from dsl.errors import DSLError, EvaluationError, LimitError, did_you_mean
from dsl.source import Span


def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_LOOP:
        raise LimitError(f"range of {len(result)} items is over the limit of {MAX_LOOP}")
    return result


# `round(n, -d)` computes 10 ** d: as many digits as an integer of MAX_INT_BITS bits has, at most.
MAX_ROUND_DIGITS = MAX_INT_BITS * 3 // 10


def _safe_round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise LimitError(
            f"round() to {ndigits} digits is over the limit of {MAX_ROUND_DIGITS} digits"
        )
    return round(number, ndigits)


# `math`'s functions a build-time expression may call, as `math.ceil(x)` or bare `ceil(x)`;
# on a tensor in a graph body, the bare names are torch's ops of the same name.
MATH_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ceil": math.ceil,
    "floor": math.floor,
    "sqrt": math.sqrt,
    "log": math.log,
    "log2": math.log2,
    "exp": math.exp,
    "gcd": math.gcd,
}
MATH_CONSTANTS = {"pi": math.pi, "e": math.e}
MATH = "math"  # the namespace name: `math.pi`, `math.ceil(x)`

BUILTINS: dict[str, Callable[..., Any] | None] = {
    **MATH_FUNCTIONS,
    "range": _safe_range,
    "len": len,
    "min": min,
    "max": max,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "abs": abs,
    "round": _safe_round,
    "list": list,
    "tuple": tuple,
    "zip": lambda *a: list(zip(*a)),
    "enumerate": lambda a, start=0: list(enumerate(a, start)),
    "sum": sum,
    "calculate_gain": torch.nn.init.calculate_gain,
    "parts": None,  # handled by the evaluator: it takes a module, not a value
    "weights": None,  # a statement of a net's body (see dsl.elaborate.graph_body.add_weights)
}


def math_member(dotted: str, span: Span) -> Any:
    """`math.NAME`: a function (as a builtin) or a constant; None for other dotted names."""
    namespace, _, name = dotted.partition(".")
    if namespace != MATH:
        return None
    if name in MATH_FUNCTIONS:
        return Builtin(name, MATH_FUNCTIONS[name])
    if name in MATH_CONSTANTS:
        return MATH_CONSTANTS[name]
    raise EvaluationError(
        f"'{dotted}' is not among the math functions a spec may use",
        span,
        hint=did_you_mean(name, [*MATH_FUNCTIONS, *MATH_CONSTANTS])
        or f"math offers: {', '.join([*MATH_FUNCTIONS, *MATH_CONSTANTS])}",
    )


def call_builtin(func: Builtin, args: list, kwargs: dict, span: Span) -> Any:
    assert func.fn is not None
    try:
        return func.fn(
            *[to_static(a, span) for a in args],
            **{k: to_static(v, span) for k, v in kwargs.items()},
        )
    except DSLError as exc:
        raise exc.with_span(span) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise EvaluationError(f"{func.name}() failed: {exc}", span) from None
