"""Hostile or odd YAML gives a located DSLError, quickly: tags of types a spec cannot hold,
import names no file system accepts, alias chains and alias bombs."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from dsl.errors import DSLError, ImportError_, LimitError, YAMLFormatError
from dsl.syntax.loader import Library, read_file
from dsl.syntax.parse_yaml import parse_yaml
from dsl.syntax.yaml_loader import MAX_ALIAS_VALUES, MAX_DEPTH

TAGGED = [
    "!!timestamp 2001-02-03",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!pairs [a: 1]",
]
PLACES = [
    "defs:\n  - net: X\n    doc: {value}\n",
    "defs:\n  - net: X\n    body:\n      - layer: {value}\n",
    "defs:\n  - net: X\n    body:\n      - layer: {{Conv2d: {{args: [1], k: {value}}}}}\n",
    "defs:\n  - net: X\n    params: [{{a: {value}}}]\n",
    "imports:\n  - from: {value}\n    import: [X]\n",
]


@pytest.mark.parametrize("tagged", TAGGED)
@pytest.mark.parametrize("place", PLACES)
def test_tags_of_types_a_spec_cannot_hold_are_refused_where_written(
    tagged: str, place: str
) -> None:
    text = place.format(value=tagged)
    with pytest.raises(YAMLFormatError) as caught:
        parse_yaml(text, "t.yaml")
    tag = tagged.split()[0]
    assert caught.value.message == f"the YAML tag '{tag}' is not allowed in a spec"
    line = next(i for i, row in enumerate(text.splitlines(), 1) if tag in row)
    assert caught.value.span[1:3] == (line, text.splitlines()[line - 1].index(tag) + 1)


def _import_error(tmp_path: Path, source: str) -> DSLError:
    spec = tmp_path / "main.yaml"
    spec.write_text(f"imports:\n  - from: {source}\n    import: [X]\ndefs: []\n")
    with pytest.raises(DSLError) as caught:
        Library(tmp_path).unit(read_file(spec, "main.yaml"), spec)
    return caught.value


@pytest.mark.parametrize(
    "source", ["a" * 300, f"'./{'a' * 300}.net'", f"'{'a' * 300}.b'", '"a\\0b"']
)
def test_a_name_no_file_can_have_is_not_found(tmp_path: Path, source: str) -> None:
    error = _import_error(tmp_path, source)
    assert isinstance(error, ImportError_) and error.message.startswith("cannot find")
    assert error.span[:2] == ("main.yaml", 2)


@pytest.mark.parametrize("source", ["'.'", "'..'", "''", "'a..b'"])
def test_a_module_name_with_an_empty_part_is_refused(tmp_path: Path, source: str) -> None:
    error = _import_error(tmp_path, source)
    assert isinstance(error, ImportError_) and "is not a module name" in error.message
    assert error.span[:2] == ("main.yaml", 2)


def _params(entries: list[str]) -> str:
    return "defs:\n- net: X\n  params:\n" + "".join(f"  - {e}\n" for e in entries) + "  body: []\n"


def _quick(text: str) -> float:
    start = time.perf_counter()
    with contextlib.suppress(LimitError):
        parse_yaml(text, "t.yaml")
    return time.perf_counter() - start


def test_four_hundred_params_read_quickly() -> None:
    plain = _params([f"p{i}: ${{p{i - 1} + 1}}" if i else "p0: 1" for i in range(400)])
    assert len(parse_yaml(plain).defs[0].params) == 400
    assert _quick(plain) < 5


def test_params_that_nest_each_other_through_aliases_are_bounded() -> None:
    """Each default holds the one before it: read as written, the values grow with the
    square of the entries, and the nesting with their number."""
    chain = _params([f"p{i}: &a{i} [*a{i - 1}, 1]" if i else "p0: &a0 [1]" for i in range(400)])
    with pytest.raises(LimitError, match=f"more than {MAX_DEPTH} levels deep through its aliases"):
        parse_yaml(chain, "t.yaml")
    assert _quick(chain) < 5


def _laughs(levels: int) -> str:
    rows = ["z: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    rows += [
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]"
        for p, n in zip("abcdefg", "bcdefgh"[: levels - 1])
    ]
    return _params(rows)


def test_alias_bombs_are_bounded() -> None:
    assert 9**5 < MAX_ALIAS_VALUES < 9**6
    parse_yaml(_laughs(5))  # what aliases may share
    with pytest.raises(LimitError, match="aliases stand for more than") as caught:
        parse_yaml(_laughs(6), "t.yaml")
    assert caught.value.span[1] == 9  # the alias that goes over
    assert _quick(_laughs(8)) < 1
