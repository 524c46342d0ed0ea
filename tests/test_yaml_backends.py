"""The YAML reader's fast paths give exactly what its full paths give: the one-pass builder
what the composing loader builds, a cached `${...}` expression what parsing it in place
gives, and the pure-Python YAML backend what libyaml gives. Spans take no part in equality,
so these tests spell every position out."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import dsl.syntax.parse_yaml
import dsl.syntax.yaml_builder
import dsl.syntax.yaml_exprs
import dsl.syntax.yaml_loader
from dsl.errors import DSLError, LimitError, YAMLFormatError
from dsl.source import Span
from dsl.syntax.parse_net import parse_expression, parse_net
from dsl.syntax.yaml_printer import print_yaml
from tests.ir_positions import positions

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(ROOT.glob("examples/*.net"))

PLAIN_YAML = [
    "",
    "---\n",
    "just a string\n",
    "- 1\n- 0x1F\n- 1_000\n- 1.5e3\n- .inf\n- -.nan\n- ~\n- null\n- true\n- On\n- 2001-02-03\n- '12'\n- 1:30\n",
    "a: 'it''s'\nb: \"tab\\there\"\nc: |\n  literal\n  block\nd: >\n  folded\n  text\ne:    spaced   \n",
    "a: &x {b: 1}\nc: *x\nl: &l [1, [2]]\nm: [*l, *l]\ns: &s word\nt: *s\n",
    "{a: 1, b: [c, {d: e}], f: {}}\n",
    "a:\n  - b\n  -\n  - c:\n",
    "1: a\n01: b\n~: c\n",
    "__span__: 3\nb: 4\n",
    "a: ! 1\n",
    "%YAML 1.1\n---\na: 1\n",
]
# What the builder leaves to the full loader, which reads it or reports it.
UNUSUAL_YAML = [
    "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
    "a: !!str 1\n",
    "a: !!python/object/apply:os.system ['echo hi']\n",
    "!!map {a: 1}\n",
    "a: =\n",
    "a: 1\na: 2\n",
    "1: a\n'1': b\n",
    "? [1, 2]\n: x\n",
    "a: &s k\n*s : 3\n",
    "a: *nowhere\n",
    "a: &x 1\nb: &x 2\n",
    "a: 1\n---\nb: 2\n",
    "a: 0x_\n",
]

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi")
)
HOSTILE_YAML = [
    LAUGHS,
    "a: &a 1\nb: [" + ", ".join(["*a"] * 10_001) + "]\n",
    "defs: &d [*d]\n",
    "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "defs:\n  - !!python/object/apply:os.system ['echo hi']\n",
    "defs: !!python/name:os.system\n",
]
HOSTILE_ERRORS = [LimitError, LimitError, LimitError, LimitError, YAMLFormatError, YAMLFormatError]


def _outcome(read: Any, *args: Any) -> Any:
    try:
        return positions(read(*args))
    except DSLError as exc:
        return type(exc).__name__, exc.message, exc.span._asdict(), exc.hint
    except (yaml.YAMLError, ValueError) as exc:
        return type(exc).__name__, str(exc)


def _ignoring_wording(outcome: Any) -> Any:
    """An outcome without its error's message: libyaml and PyYAML word some differently."""
    return (outcome[0], *outcome[2:]) if len(outcome) == 4 else outcome


def _example_yaml() -> list[str]:
    return [print_yaml(parse_net(path.read_text(), str(path))) for path in EXAMPLES]


# The modules that hold the loader, in the order they import each other.
LOADING = (dsl.syntax.yaml_loader, dsl.syntax.yaml_builder, dsl.syntax.parse_yaml)


@contextlib.contextmanager
def _without_libyaml(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The YAML reader as it loads where PyYAML was built without libyaml (its modules are
    reloaded in place; the builder is yielded)."""
    monkeypatch.delattr(yaml, "CSafeLoader")
    try:
        for module in LOADING:
            importlib.reload(module)
        yield dsl.syntax.yaml_builder
    finally:
        monkeypatch.undo()
        for module in LOADING:
            importlib.reload(module)


# ----------------------------------------------------------------------------- builder


def _refuse(text: str, file: str) -> Any:
    raise dsl.syntax.yaml_builder.Unsupported


@pytest.mark.parametrize("text", [*PLAIN_YAML, *UNUSUAL_YAML, *HOSTILE_YAML])
def test_the_builder_reads_what_the_full_loader_reads(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = _outcome(dsl.syntax.yaml_builder.load, text, "t.yaml")
    monkeypatch.setattr(dsl.syntax.yaml_builder, "build", _refuse)
    assert read == _outcome(dsl.syntax.yaml_builder.load, text, "t.yaml")


def test_the_builder_reads_every_example(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _example_yaml()
    built = [positions(dsl.syntax.yaml_builder.build(text, "t.yaml")) for text in texts]
    monkeypatch.setattr(dsl.syntax.yaml_builder, "build", _refuse)
    assert built == [positions(dsl.syntax.yaml_builder.load(text, "t.yaml")) for text in texts]


@pytest.mark.parametrize("text", PLAIN_YAML)
def test_plain_yaml_is_built_in_one_pass(text: str) -> None:
    dsl.syntax.yaml_builder.build(text, "t.yaml")


@pytest.mark.parametrize("text", UNUSUAL_YAML)
def test_unusual_yaml_is_left_to_the_full_loader(text: str) -> None:
    with pytest.raises((dsl.syntax.yaml_builder.Unsupported, yaml.YAMLError, ValueError)):
        dsl.syntax.yaml_builder.build(text, "t.yaml")


def test_the_builder_keeps_aliases_shared() -> None:
    data = dsl.syntax.yaml_builder.build(PLAIN_YAML[5], "t.yaml")
    assert data["a"] is data["c"] and data["l"] is data["m"][0] is data["m"][1]


# ----------------------------------------------------------------------------- expressions


EXPRESSIONS = [
    *["x", "relu(y + x)", "a if b else c", "x.shape[1:2, ::3] // 2", "-1", "- 1", "f(a, b=2)"],
    *["{'k': [1, 2.5]}", "(a,)", "down{i + 1}", "f(\n  1,\n  2)", "a + * b", "f(a=1, a=2)"],
]
ORIGINS = [
    Span(file="s.yaml", line=1, col=1),
    Span(file="s.yaml", line=40, col=17, end_line=40, end_col=30),
]


@pytest.mark.parametrize("text", EXPRESSIONS)
@pytest.mark.parametrize("origin", ORIGINS)
def test_a_cached_expression_is_placed_as_if_parsed_there(text: str, origin: Span) -> None:
    expected = _outcome(parse_expression, text, origin)
    assert _outcome(dsl.syntax.yaml_exprs.expression_at, text, origin) == expected


# ----------------------------------------------------------------------------- without libyaml


def test_without_libyaml_specs_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = _example_yaml()
    texts = [*examples, *PLAIN_YAML, *UNUSUAL_YAML]
    loaded = [
        _ignoring_wording(_outcome(dsl.syntax.yaml_builder.load, text, "t.yaml")) for text in texts
    ]
    specs = [_outcome(dsl.syntax.parse_yaml.parse_yaml, text, "t.yaml") for text in examples]
    with _without_libyaml(monkeypatch) as module:
        assert dsl.syntax.yaml_loader.BaseLoader is yaml.SafeLoader
        read = dsl.syntax.parse_yaml.parse_yaml
        assert [_outcome(read, text, "t.yaml") for text in examples] == specs
        assert [
            _ignoring_wording(_outcome(module.load, text, "t.yaml")) for text in texts
        ] == loaded


@pytest.mark.parametrize("text, error", list(zip(HOSTILE_YAML, HOSTILE_ERRORS, strict=True)))
def test_without_libyaml_hostile_yaml_is_refused(
    monkeypatch: pytest.MonkeyPatch, text: str, error: type
) -> None:
    with _without_libyaml(monkeypatch), pytest.raises(error):
        dsl.syntax.parse_yaml.parse_yaml(text, "hostile.yaml")
