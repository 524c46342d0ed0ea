"""Record classes, as `dataclasses.dataclass` makes them, without its start-up cost.

`dataclasses` compiles an `__init__`, `__repr__` and `__eq__` from source text for every
class it decorates: ~0.3 ms a class, and netdsl's 38 records on the path of a first
`validate` were a quarter of its start-up. A record's `__init__` is written as dataclasses
writes it, but when the class is first constructed (a run constructs only some); its other
methods are shared functions that read the class's table of fields. What they do is what
dataclasses' do (tests/test_records.py holds them side by side):

    @record(frozen=True)
    class Layer:
        name: str
        kwargs: dict[str, Any] = field(default_factory=dict)

Fields are the class's annotations in order, base records' first (`ClassVar`s are not
fields); a default is the class attribute, `field(default_factory=...)` makes one per
instance. `__init__` takes fields by position or keyword; `eq=False` keeps identity
equality; `frozen=True` refuses assignment and hashes by the fields; `slots=True` gives the
class `__slots__`. `replace`, `fields` and `asdict` are dataclasses' functions of the same
names."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

from typing_extensions import dataclass_transform

T = TypeVar("T")
_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record (as dataclasses.FrozenInstanceError)."""


class _Field:
    __slots__ = ("default", "factory", "repr")

    def __init__(self, default: Any, factory: Callable[[], Any] | None, repr: bool) -> None:
        self.default, self.factory, self.repr = default, factory, repr


def field(
    *, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None, repr: bool = True
) -> Any:
    """A field's default made per instance (`default_factory`), or one left out of repr."""
    return _Field(default, default_factory, repr)


class _Table:
    """A record class's fields: names in order, defaults, factories, those in repr."""

    __slots__ = ("defaults", "factories", "frozen", "names", "shown")

    def __init__(self, cls: type, frozen: bool) -> None:
        self.frozen = frozen
        declared: dict[str, tuple[Any, Callable[[], Any] | None, bool]] = {}
        for klass in reversed(cls.__mro__[1:]):
            base = vars(klass).get("__record__")
            declared |= {n: base.entry(n) for n in base.names} if base is not None else {}
        for name, annotation in vars(cls).get("__annotations__", {}).items():
            if not is_class_variable(annotation):
                declared[name] = _declared(cls, name)
        self.names = tuple(declared)
        self.defaults = {n: d for n, (d, _, _) in declared.items() if d is not _MISSING}
        self.factories = {n: f for n, (_, f, _) in declared.items() if f is not None}
        self.shown = tuple(n for n, (_, _, shown) in declared.items() if shown)
        self._check_order()

    def _check_order(self) -> None:
        optional = False
        for name in self.names:
            if name in self.defaults or name in self.factories:
                optional = True
            elif optional:
                raise TypeError(f"non-default argument '{name}' follows default argument")

    def entry(self, name: str) -> tuple[Any, Callable[[], Any] | None, bool]:
        default = self.defaults.get(name, _MISSING)
        return default, self.factories.get(name), name in self.shown


def is_class_variable(annotation: Any) -> bool:
    """Whether an annotation (a string or an object) says `ClassVar[...]`."""
    return str(annotation).split("[", 1)[0].rpartition(".")[2] == "ClassVar"


def _declared(cls: type, name: str) -> tuple[Any, Callable[[], Any] | None, bool]:
    value = vars(cls).get(name, _MISSING)
    if isinstance(value, _Field):
        if value.default is _MISSING:
            delattr(cls, name)  # an instance without the field has no attribute (as dataclasses)
        else:
            setattr(cls, name, value.default)
        return value.default, value.factory, value.repr
    return value, None, True


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    """The first construction of a record class: write its `__init__` (as dataclasses does,
    but once the class is first used, not when it is defined), then construct with it."""
    owner: Any = next(k for k in type(self).__mro__ if "__record__" in vars(k))
    if vars(owner).get("__init__") is _init:
        owner.__init__ = _written_init(owner.__record__, owner.__name__)
    vars(owner)["__init__"](self, *args, **kwargs)


def _written_init(table: _Table, name: str) -> Callable[..., None]:
    """`__init__(self, <each field, by position or keyword, with its default>)`."""
    params, body = [], []
    for field_name in table.names:
        if field_name in table.factories:
            params.append(f"{field_name}=_MISSING")
            value = f"_factory_{field_name}() if {field_name} is _MISSING else {field_name}"
        elif field_name in table.defaults:
            params.append(f"{field_name}=_default_{field_name}")
            value = field_name
        else:
            params.append(field_name)
            value = field_name
        body.append(
            f"    _set(__record_self__, {field_name!r}, {value})"
            if table.frozen
            else f"    __record_self__.{field_name} = {value}"
        )
    head = f"def __init__(__record_self__, {', '.join(params)}):\n"  # a field may be `self`
    source = head + ("\n".join(body) or "    pass")
    namespace: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    namespace |= {f"_factory_{n}": f for n, f in table.factories.items()}
    namespace |= {f"_default_{n}": d for n, d in table.defaults.items()}
    exec(compile(source, f"<record {name}>", "exec"), namespace)  # names are identifiers
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{name}.__init__"
    return init


def _repr(self: Any) -> str:
    shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in type(self).__record__.shown)
    return f"{type(self).__qualname__}({shown})"


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, n) for n in type(self).__record__.names)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field '{name}'")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field '{name}'")


def _explicit_hash(cls: type) -> bool:
    """Whether the class body defines `__hash__` (Python sets it to None beside `__eq__`)."""
    own = vars(cls)
    return "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)


@dataclass_transform(field_specifiers=(field,))
def record(
    cls: type[T] | None = None, /, *, frozen: bool = False, eq: bool = True, slots: bool = False
) -> Any:
    """Make `cls` a record (see the module's docstring); as `@dataclass` with the same options."""

    def make(cls: type[T]) -> type[T]:
        table = _Table(cls, frozen)
        if slots:
            namespace = {
                k: v
                for k, v in vars(cls).items()
                if k not in (*table.names, "__dict__", "__weakref__")
            }
            namespace |= {"__slots__": table.names, "__qualname__": cls.__qualname__}
            cls = type(cls)(cls.__name__, cls.__bases__, namespace)  # type: ignore[misc]
        methods: dict[str, Any] = {"__init__": _init, "__repr__": _repr}
        if eq:
            methods["__eq__"] = _eq
        if frozen:
            methods |= {"__setattr__": _frozen_setattr, "__delattr__": _frozen_delattr}
        for name, method in methods.items():
            if name not in vars(cls):  # a method the class writes itself is kept
                setattr(cls, name, method)
        extra = {"__record__": table, "__match_args__": table.names}
        if eq and not _explicit_hash(cls):
            extra["__hash__"] = _hash if frozen else None
        for name, value in extra.items():
            setattr(cls, name, value)
        return cls

    return make if cls is None else make(cls)


def fields(obj: Any) -> tuple[str, ...]:
    """The names of a record's (or record class's) fields, in order."""
    cls: Any = obj if isinstance(obj, type) else type(obj)
    table: _Table = cls.__record__
    return table.names


def replace(obj: T, **changes: Any) -> T:
    """A new record like `obj`, with some fields changed (as dataclasses.replace)."""
    return type(obj)(**{**{n: getattr(obj, n) for n in fields(obj)}, **changes})


def asdict(obj: Any) -> Any:
    """A record as a dict of its fields, records within turned likewise, other values
    copied (as dataclasses.asdict)."""
    if hasattr(type(obj), "__record__"):
        return {n: asdict(getattr(obj, n)) for n in fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple, such as a Span
        return type(obj)(*(asdict(item) for item in obj))
    if isinstance(obj, list | tuple):
        return type(obj)(asdict(item) for item in obj)
    if isinstance(obj, dict):
        return type(obj)((asdict(k), asdict(v)) for k, v in obj.items())
    return copy.deepcopy(obj)
