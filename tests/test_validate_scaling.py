"""Validation grows linearly with the size of a body (issue 18). Counts, not times: a layer
or block call keeps the names its arguments read, not a copy of the whole scope, and the
static check does not copy its set of defined names per call."""

from __future__ import annotations

from typing import Any

import pytest

import dsl
from dsl.elaborate import check
from dsl.elaborate.evaluate import Frame
from dsl.errors import DSLError


def _named(layers: int) -> str:
    lines = ["net N(w=16):", "    input x: [B, w]"]
    lines += [f"    x = l{i}(x): Linear(w, w)" for i in range(layers)]
    return "\n".join([*lines, "    return x"]) + "\n"


def _blocks(layers: int) -> str:
    head = ["block Lin(w):", "    input x", "    y = lin(x): Linear(w)", "    return relu(y)"]
    lines = [*head, "", "net N(w=16):", "    input x: [B, w]"]
    lines += [f"    x = b{i}(x): Lin(w)" for i in range(layers)]
    return "\n".join([*lines, "    return x"]) + "\n"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every scope a layer or block call keeps for its arguments."""
    sizes: list[int] = []
    snapshot = Frame.snapshot

    def recording(self: Frame, call: Any) -> Frame:
        frame = snapshot(self, call)
        sizes.append(len(frame.scope))
        return frame

    monkeypatch.setattr(Frame, "snapshot", recording)
    return sizes


@pytest.mark.parametrize("make", [_named, _blocks])
def test_a_call_keeps_only_the_names_its_arguments_read(make: Any, captured: list[int]) -> None:
    dsl.validate(make(300))
    assert len(captured) >= 300
    assert max(captured) == 1  # `w`; the body's 300 other names stay out


def test_a_name_not_yet_defined_in_arguments_keeps_the_scope_for_its_hint(
    captured: list[int],
) -> None:
    text = (
        "net N(width=16):\n    input x: [B, 4]\n    fc = Linear(widths)\n"
        "    widths = 8\n    return fc(x)\n"
    )
    with pytest.raises(DSLError, match="widths") as info:
        dsl.validate(text)
    assert "width" in (info.value.hint or "")
    assert captured and max(captured) >= 3  # width, x, training: the whole scope


def test_a_templated_name_in_arguments_keeps_the_scope(captured: list[int]) -> None:
    text = (
        "net N:\n    input x: [B, 4]\n    n1 = 8\n    for i in range(1, 2):\n"
        "        x = l{i}(x): Linear(n{i})\n    return x\n"
    )
    dsl.validate(text)
    assert max(captured) >= 3


def test_the_static_check_does_not_copy_the_defined_names_per_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: set[int] = set()
    check_name = check._check_name

    def recording(expr: Any, defined: set[str], *args: Any, **kwargs: Any) -> Any:
        seen.add(id(defined))
        return check_name(expr, defined, *args, **kwargs)

    monkeypatch.setattr(check, "_check_name", recording)
    dsl.validate(_named(200))
    assert len(seen) == 1  # one set for the definition, however many calls


def test_a_layer_argument_reads_its_own_input_size_and_nothing_after_it() -> None:
    text = (
        "net N:\n    input x: [B, 8, 5, 5]\n"
        "    dw = Conv2d(in_channels, kernel_size=3, groups=in_channels)\n"
        "    return dw(x)\n"
    )
    dsl.validate(text)
    with pytest.raises(DSLError, match="'in_channels' is not defined"):
        dsl.validate(text.replace("return dw(x)", "return dw(x) * in_channels"))
