"""dsl/records.py makes classes that behave as `dataclasses.dataclass` makes them: each
case here is declared both ways and must construct, compare, hash, print, refuse and
copy alike."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from dsl import records


def _pair(options: dict[str, Any], body: dict[str, Any]) -> tuple[type, type]:
    made = []
    for decorate, spec in (
        (dataclasses.dataclass, dataclasses.field),
        (records.record, records.field),
    ):
        namespace = {
            "__annotations__": dict(body["annotations"]),
            **{k: (spec(**v) if isinstance(v, dict) else v) for k, v in body["defaults"].items()},
        }
        made.append(decorate(type("Point", (), namespace), **options))
    return made[0], made[1]


BODY = {
    "annotations": {
        "x": "int",
        "y": "int",
        "tags": "list[str]",
        "note": "str",
        "kind": ClassVar[str],
    },
    "defaults": {
        "y": 0,
        "tags": {"default_factory": list},
        "note": {"default": "n", "repr": False},
        "kind": "point",
    },
}
OPTIONS = [{}, {"frozen": True}, {"eq": False}, {"eq": False, "slots": True}, {"slots": True}]


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
def test_records_behave_as_dataclasses(options: dict[str, Any]) -> None:
    dc, rc = _pair(options, BODY)
    for args, kwargs in [
        ((1,), {}),
        ((1, 2), {}),
        ((), {"x": 1, "tags": ["a"]}),
        ((1, 2, ["t"], "m"), {}),
    ]:
        a, b = dc(*args, **kwargs), rc(*args, **kwargs)
        assert repr(a) == repr(b) and repr(b).startswith("Point(x=1")
        assert [getattr(a, f.name) for f in dataclasses.fields(a)] == [
            getattr(b, n) for n in records.fields(b)
        ]
        assert (a == dc(*args, **kwargs)) == (b == rc(*args, **kwargs))
        assert (type(a).__hash__ is None) == (type(b).__hash__ is None)
        assert _hashable(a) == _hashable(b)
        if "tags" not in kwargs and len(args) < 3:  # a fresh list each
            assert a.tags is not dc(*args, **kwargs).tags
            assert b.tags is not rc(*args, **kwargs).tags
        assert records.asdict(b) == dataclasses.asdict(a)
        assert records.replace(b, y=5).y == 5 and records.replace(b, y=5).x == b.x
    assert dc.__match_args__ == rc.__match_args__
    assert dc.kind == rc.kind == "point" and "kind" not in records.fields(rc)
    for bad in [
        lambda c: c(),
        lambda c: c(1, z=2),
        lambda c: c(1, x=1),
        lambda c: c(1, 2, [], "", 5),
    ]:
        with pytest.raises(TypeError):
            bad(dc)
        with pytest.raises(TypeError):
            bad(rc)
    frozen = options.get("frozen", False)
    for cls in (dc, rc):
        point = cls(1)
        if frozen:
            with pytest.raises(AttributeError):
                point.x = 2
        elif options.get("slots"):
            with pytest.raises(AttributeError):
                point.other = 2
            assert not hasattr(point, "__dict__")
        else:
            point.x = 2
            assert point.x == 2


def test_a_record_keeps_the_methods_its_class_writes_and_inherits_fields() -> None:
    @records.record
    class Base:
        a: int
        b: int = 2

        def __repr__(self) -> str:
            return "mine"

    @records.record(frozen=True)
    class Derived(Base):
        c: int = 3

    d = Derived(1, c=4)
    assert (d.a, d.b, d.c) == (1, 2, 4) and records.fields(Derived) == ("a", "b", "c")
    assert repr(Base(1)) == "mine" and repr(d).endswith("Derived(a=1, b=2, c=4)")
    assert d == Derived(1, 2, 4) and hash(d) == hash(Derived(1, 2, 4))
    with pytest.raises(records.FrozenInstanceError):
        d.a = 5  # type: ignore[misc]


def test_a_required_field_after_a_default_is_refused_as_dataclasses_refuse_it() -> None:
    namespace = {"__annotations__": {"x": "int", "y": "int"}, "x": 0}
    for decorate in (dataclasses.dataclass, records.record):
        with pytest.raises(TypeError, match="non-default argument 'y'"):
            decorate(type("P", (), dict(namespace)))


def test_a_plain_subclass_of_a_record_constructs_with_its_fields() -> None:
    @records.record
    class Base:
        a: int
        b: int = 2

    class Plain(Base):
        def total(self) -> int:
            return self.a + self.b

    assert Plain(1).total() == 3 and Base(5).a == 5 and Plain(1, b=4).total() == 5


def test_the_package_makes_records_not_dataclasses() -> None:
    """Start-up: a dataclass costs ~0.3 ms when its module is imported, a record nothing
    until it is first constructed (dsl/records.py)."""
    import ast
    from pathlib import Path

    package = Path(records.__file__).parent
    users = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and "dataclasses" in {getattr(node, "module", None), *(a.name for a in node.names)}
    ]
    assert users == []


def test_a_field_may_be_called_self() -> None:
    @records.record(frozen=True)
    class Reference:
        self: str
        other: int = 1

    assert Reference("me").self == "me" and Reference(self="x", other=2).other == 2


def test_asdict_turns_what_records_hold_as_dataclasses_asdict_does() -> None:
    from collections import OrderedDict

    from dsl.source import Span

    @records.record
    class Inner:
        where: Span
        names: tuple[str, ...]

    @records.record
    class Outer:
        inner: Inner
        table: dict[str, Any]

    @dataclasses.dataclass
    class DInner:
        where: Span
        names: tuple[str, ...]

    @dataclasses.dataclass
    class DOuter:
        inner: DInner
        table: dict[str, Any]

    where, table = Span("f.net", 3, 5), OrderedDict(a=[1, (2, 3)])
    ours = records.asdict(Outer(Inner(where, ("x",)), table))
    theirs = dataclasses.asdict(DOuter(DInner(where, ("x",)), table))
    assert ours == theirs and ours["inner"]["where"] == where
    assert type(ours["table"]) is type(theirs["table"]) is OrderedDict
