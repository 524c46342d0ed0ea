"""Inputs that used to escape as Python exceptions (or hang) are located `DSLError`s, found
by `dsl.validate` (issue 14)."""

from __future__ import annotations

import pytest

import dsl
from dsl.errors import (
    ArgumentError,
    DSLError,
    DSLSyntaxError,
    DuplicateNameError,
    EvaluationError,
    LimitError,
    ShapeError,
    StructureError,
)


def _net(*lines: str) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"net N:\n    input x: [B, 4, 8]\n{body}    return x\n"


CASES = {
    "size out of range": (_net("n = x.size(10)"), ShapeError, 3, "no index 10"),
    "slice step zero": (_net("a = [1, 2, 3][::0]"), EvaluationError, 3, "step cannot be zero"),
    "round to a billion digits": (_net("a = round(5, -(10**9))"), LimitError, 3, "round()"),
    "split of an int": (_net("a = split(3, 1)"), ArgumentError, 3, "split"),
    "normalize of an int": (_net("a = normalize(3)"), ArgumentError, 3, "normalize"),
    "softmax of an int": (_net("a = softmax(3, 1)"), ArgumentError, 3, "softmax"),
    "interpolate of an int": (_net("a = interpolate(10)"), ArgumentError, 3, "interpolate"),
    "pad_to an int": (_net("a = pad_to(x, 1)"), ArgumentError, 3, "pad_to"),
    "input inside an if": (
        "net N(flag=true):\n    input x: [B, 4]\n    if flag:\n        input y: [B, 4]\n    return x\n",
        StructureError,
        4,
        "'input y'",
    ),
    "input inside an if of a block": (
        "block Pair(flag=true):\n    input x: [M, 4]\n    if flag:\n        input y: [M, 4]\n    return x\n"
        "net N:\n    input x: [B, 4]\n    b = Pair()\n    return b(x)\n",
        StructureError,
        4,
        "'input y'",
    ),
    "duplicate input": (
        "net N:\n    input x: [B, 4]\n    input x: [B, 4]\n    return x\n",
        DuplicateNameError,
        3,
        "declared twice",
    ),
    "member named forward": (_net("forward = Linear(4)"), DSLSyntaxError, 3, "'forward'"),
    "member named training": (_net("training = Linear(4)"), StructureError, 3, "'training'"),
    "member named state_dict": (_net("state_dict = Linear(4)"), StructureError, 3, "'state_dict'"),
    "member named to": (_net("to = Linear(4)"), StructureError, 3, "'to'"),
    "param named to": (_net("param to: [4] = zeros()"), StructureError, 3, "'to'"),
    "Sequential child named forward": (
        "net N:\n    input x: [B, 4]\n    s = Sequential:\n        forward = Linear(4)\n    return s(x)\n",
        DSLSyntaxError,
        4,
        "'forward'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_mistake_is_a_located_diagnostic(case: str) -> None:
    text, kind, line, words = CASES[case]
    with pytest.raises(DSLError) as caught:
        dsl.validate(text)
    assert isinstance(caught.value, kind), caught.value
    assert caught.value.span.line == line and words in caught.value.message


def test_names_that_are_no_module_attributes_stay_allowed() -> None:
    dsl.validate(_net("fc = Linear(8)", "forward_ = Linear(8)", "y = forward_(fc(x))"))
