"""Every build-time condition (`if`, the ternary, `and`, `or`, `not`, `bool(...)`) is
decided by `dsl.elaborate.conditions.decide`: a check on decisions goes there alone."""

from __future__ import annotations

from typing import Any

import pytest

import dsl
import dsl.elaborate.evaluate
from dsl.elaborate import conditions
from dsl.source import Span

SPEC = """
net N(deep=true, n=2):
    input x: [B, 4]
    if deep and not n == 3:
        fc = Linear(n if n > 1 else 1)
    else:
        fc = Linear(1)
    flag = bool(n) or false
    return fc(x)
"""


def test_every_condition_goes_through_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    decided: list[tuple[int, int]] = []

    def recording(value: Any, span: Span) -> bool:
        decided.append((span.line, span.col))
        return conditions.decide(value, span)

    monkeypatch.setattr(dsl.elaborate.evaluate, "decide", recording)
    dsl.validate(SPEC)
    lines = sorted({line for line, _ in decided})
    # line 4: `if deep and not n == 3`, 5: the ternary, 8: bool() and `or`
    assert lines == [4, 5, 8]
    assert len(decided) >= 6
