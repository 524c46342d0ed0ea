"""Mutated specs, in both formats, only ever raise DSLError: through parsing, the static
checks and elaboration with shapes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.build.resolve import resolve
from dsl.elaborate.check import check_unit
from dsl.errors import DSLError
from dsl.syntax.loader import Library, parse_text
from tests.strategies import NET_ALPHABET, mutated_net_texts

EXAMPLES = Path(__file__).parent.parent / "examples"


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


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None)
@given(mutated_net_texts())
def test_mutated_net_specs_raise_only_dsl_errors(case: tuple[str, str]) -> None:
    _check(*case)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(NET_ALPHABET + list("abcNBS0123456789")), max_size=80))
def test_random_token_soup_raises_only_dsl_errors(pieces: list[str]) -> None:
    _check("random.net", "".join(pieces))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_dsl_errors(data: bytes) -> None:
    _check("random.net", data.decode("utf-8", errors="replace"))
    _check("random.yaml", data.decode("utf-8", errors="replace"))
