"""Mutated specs, in both formats, only ever raise DSLError: through parsing, the static
checks and elaboration with shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.check import check_unit
from dsl.errors import DSLError
from dsl.loader import Library, parse_text
from dsl.resolve import resolve

EXAMPLES = Path(__file__).parent.parent / "examples"
SEEDS = sorted(p for p in EXAMPLES.glob("*.net") if p.stat().st_size < 4000)
ALPHABET = [*":=()[]{},.+-*/@#\"'\n\t ", "    ", "if ", "for ", "net ", "input ", "return ", "Sequential", "1", "x", "${", "- "]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    path = draw(st.sampled_from(SEEDS))
    text = path.read_text()
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(0, len(text) - 1)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "duplicate_line", "drop_line"]))
        if action == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 8)) :]
        elif action == "insert":
            text = text[:position] + draw(st.sampled_from(ALPHABET)) + text[position:]
        elif action == "replace":
            text = text[:position] + draw(st.sampled_from(ALPHABET)) + text[position + 1 :]
        else:
            lines = text.split("\n")
            index = draw(st.integers(0, len(lines) - 1))
            if action == "duplicate_line":
                lines.insert(index, lines[index])
            else:
                del lines[index]
            text = "\n".join(lines)
    return path.name, text


def _check(name: str, text: str) -> None:
    try:
        spec = parse_text(text, name)
        unit = Library(EXAMPLES).unit(spec, None)
        if check_unit(unit):
            return
        if spec.nets():
            resolve(spec, root=EXAMPLES, sizes={"B": 1, "N": 2, "H": 16, "W": 16, "T": 8})
    except DSLError as exc:
        rendered = exc.render()
        assert "Traceback" not in rendered
        assert rendered.splitlines()[0].startswith(exc.span.file)


@pytest.mark.skipif(not SEEDS, reason="no examples")
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None)
@given(mutated())
def test_mutated_net_specs_raise_only_dsl_errors(case: tuple[str, str]) -> None:
    _check(*case)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(ALPHABET + list("abcNBS0123456789")), max_size=80))
def test_random_token_soup_raises_only_dsl_errors(pieces: list[str]) -> None:
    _check("random.net", "".join(pieces))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_dsl_errors(data: bytes) -> None:
    _check("random.net", data.decode("utf-8", errors="replace"))
    _check("random.yaml", data.decode("utf-8", errors="replace"))
