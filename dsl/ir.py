"""The one intermediate representation that both spec formats produce.

Every node is a frozen plain object carrying a `Span` (which never takes part in
equality). A node's fields are its class's annotations, in order, base classes first; a
default is the class attribute of that name (a list or dict default is fresh per node).
Field names are the YAML keys, a trailing `_` dropped (`for_` is written `for`):
dsl/syntax/yaml_schema.py derives the YAML form's pydantic schema from these classes, so
this module, and with it the `.net` reader, needs no pydantic."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar, Literal, TypeAlias, Union, get_args

from typing_extensions import Self, dataclass_transform

from dsl.records import is_class_variable
from dsl.source import NO_SPAN, Span

CONTAINER_KINDS = ("Sequential", "ModuleList", "ModuleDict")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A name may carry `{expr}` parts that a build-time `for` fills in: `down{i + 1}`.
TEMPLATE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\{[^{}\n]*\}[A-Za-z0-9_]*)*")

# Where a node was written: left out of equality, repr and the YAML form's keys.
POSITION_FIELDS = frozenset({"span", "kwarg_spans", "name_spans"})
_REQUIRED: Any = object()


@dataclass_transform(kw_only_default=True, frozen_default=True)
class _Fields:
    """Objects made by keyword from their class's annotated fields, never changed after."""

    fields: ClassVar[tuple[str, ...]] = ()  # every field, in order
    annotations: ClassVar[dict[str, str]] = {}  # field -> its annotation, as written here
    _template: ClassVar[dict[str, Any]] = {}  # field -> default (_REQUIRED where none)
    _required: ClassVar[frozenset[str]] = frozenset()
    _fresh: ClassVar[tuple[tuple[str, type], ...]] = ()  # fields whose default is [] or {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for name, annotation in vars(klass).get("__annotations__", {}).items():
                if not is_class_variable(annotation):
                    declared[name] = str(annotation)
        cls.annotations, cls.fields = declared, tuple(declared)
        cls._template = {name: getattr(cls, name, _REQUIRED) for name in declared}
        cls._required = frozenset(n for n, d in cls._template.items() if d is _REQUIRED)
        cls._fresh = tuple(
            (n, type(d)) for n, d in cls._template.items() if isinstance(d, list | dict)
        )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each field that has a default, with it (a list or dict default is fresh per node)."""
        return {name: d for name, d in cls._template.items() if d is not _REQUIRED}

    def __init__(self, **values: Any) -> None:
        template = type(self)._template
        state = {**template, **values}
        if len(state) != len(template) or not type(self)._required <= values.keys():
            raise TypeError(self._misuse(values))
        for name, fresh in type(self)._fresh:
            if name not in values:
                state[name] = fresh()
        object.__setattr__(self, "__dict__", state)

    def _misuse(self, values: dict[str, Any]) -> str:
        unknown = sorted(values.keys() - self._template.keys())
        missing = sorted(self._required - values.keys())
        what = f"no field {', '.join(unknown)}" if unknown else f"missing {', '.join(missing)}"
        return f"{type(self).__name__}: {what}"

    def replace(self, **changes: Any) -> Self:
        """This node with some fields changed (nodes are never changed in place)."""
        state = {**self.__dict__, **changes}
        if len(state) != len(self.__dict__):
            raise TypeError(self._misuse(changes))
        node = object.__new__(type(self))
        object.__setattr__(node, "__dict__", state)
        return node

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: use .replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")


class Node(_Fields):
    """A node of the IR: made by keyword (`Name(id="x", span=s)`), never changed after."""

    span: Span = NO_SPAN

    def __eq__(self, other: object) -> bool:
        """Two nodes are equal when they mean the same, wherever they were written: the
        fields that say where (`span`, `kwarg_spans`, `name_spans`) take no part."""
        if type(self) is not type(other):
            return NotImplemented
        mine, theirs = (
            {k: v for k, v in n.__dict__.items() if k not in POSITION_FIELDS} for n in (self, other)
        )
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]  # nodes hold lists and dicts

    def __repr__(self) -> str:
        shown = (f"{k}={v!r}" for k, v in self.__dict__.items() if k not in POSITION_FIELDS)
        return f"{type(self).__name__}({', '.join(shown)})"

    def children(self) -> Iterator[Node]:
        """The nodes this one holds, in field order; in a list or a dict, in its order."""
        for value in self.__dict__.values():
            if isinstance(value, Node):
                yield value
            elif isinstance(value, list | dict):
                items = value.values() if isinstance(value, dict) else value
                yield from (item for item in items if isinstance(item, Node))


def node_classes() -> list[type[Node]]:
    """Every node class, bases before the classes derived from them."""
    found: list[type[Node]] = []
    pending = list(Node.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


# --------------------------------------------------------------------------- expressions


class Const(Node):
    value: bool | int | float | str | None


class Name(Node):
    id: str


class Attr(Node):
    value: Expr
    attr: str


class Index(Node):
    value: Expr
    index: Expr


class Slice(Node):
    start: Expr | None = None
    stop: Expr | None = None
    step: Expr | None = None


class Call(Node):
    func: Expr
    args: list[Expr] = []  # may hold `Starred` items: `f(*xs)`
    kwargs: dict[str, Expr] = {}
    spread: list[Expr] = []  # `f(**options)`: mappings whose items are more keywords
    kwarg_spans: dict[str, Span] = {}

    def keyword_spans(self) -> dict[str, Span]:
        """Where each keyword's name is written (its value, in IR built without positions)."""
        return {key: (self.kwarg_spans or {}).get(key) or v.span for key, v in self.kwargs.items()}


BinaryOperator = Literal[
    "or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not", "|", "&", "+",
    "-", "*", "/", "//", "%", "@", "**",
]  # fmt: skip
AugOperator = Literal["+", "-", "*", "/", "//", "%", "@", "**", "|", "&"]  # `x += y`
UnaryOperator = Literal["-", "+", "~", "not"]
BINARY_OPS: tuple[str, ...] = get_args(BinaryOperator)
UNARY_OPS: tuple[str, ...] = get_args(UnaryOperator)


class BinOp(Node):
    op: BinaryOperator
    left: Expr
    right: Expr


class UnaryOp(Node):
    op: UnaryOperator
    operand: Expr


class IfExp(Node):
    cond: Expr
    then: Expr
    orelse: Expr


class ListExpr(Node):
    items: list[Expr] = []


class TupleExpr(Node):
    items: list[Expr] = []


class DictExpr(Node):
    keys: list[Expr] = []
    values: list[Expr] = []


class Starred(Node):
    """`*xs` in a call's arguments or a list or tuple: the items of `xs`, one by one."""

    value: Expr


class CompFor(Node):
    """One `for target in iterable if cond...` clause of a comprehension."""

    for_: Target
    in_: Expr
    if_: list[Expr] = []


class Comprehension(Node):
    """`[e for c in cs if c > 0]`; with a `key`, the dict `{k: v for ...}`."""

    element: Expr
    key: Expr | None = None
    clauses: list[CompFor]


class Container(Node):
    """`Sequential:` / `ModuleList(run="parallel", merge="cat"):` / `ModuleDict:` with a body."""

    kind: Literal["Sequential", "ModuleList", "ModuleDict"]
    options: dict[str, Expr] = {}
    body: Stmts = []


# --------------------------------------------------------------------------- statements


class Input(Node):
    """`input x: [B, 3, H, W]` (shape optional; `input idx: long[B, T]` gives a dtype)."""

    input: str
    shape: list[ShapeDim] | None = None
    dtype: str | None = None


class Let(Node):
    """`a = expr`, `a, b = expr`, or `x1 = inc(x): DoubleConv(64)` (define `inc`, then apply it)."""

    let: Names
    value: Expr
    define: Expr | None = None
    op: AugOperator | None = None  # `x += y`: the value is `x + y`


class Layer(Node):
    """A bare expression line: an unnamed child of a container (`ReLU()`)."""

    layer: Expr


class Return(Node):
    """`return y`, `return a, b`, `return {"cls": c}`; `return outc(x): Conv2d(2, 1)` defines `outc` too."""

    return_: Expr
    define: Expr | None = None


class TensorDecl(Node):
    shape: list[ShapeDim] | None = None  # None: a buffer computed from `init`, its value
    dtype: str | None = None
    init: Expr | None = None
    options: Options = {}

    @property
    def name(self) -> str:
        raise NotImplementedError


class ParamDecl(TensorDecl):
    """`param w: [in_n, out_n] = normal(0, 0.01)` -> an `nn.Parameter`."""

    param: str

    @property
    def name(self) -> str:
        return self.param


class BufferDecl(TensorDecl):
    """`buffer mask: [n] = ones(), persistent=false` -> a registered buffer."""

    buffer: str

    @property
    def name(self) -> str:
        return self.buffer


class If(Node):
    if_: Expr
    then: Stmts = []
    else_: Stmts = []


class For(Node):
    for_: Target
    in_: Expr
    body: Stmts = []


class InitRule(Node):
    """`Conv2d.weight: kaiming_normal(mode="fan_out")`, `"layer*.bn2.weight": zeros()`, or a recipe `resnet()`."""

    match: str | None = None
    init: Expr


class InitBlock(Node):
    init: list[InitRule]


class Forward(Node):
    forward: Stmts = []  # last in a container block's body: a graph body, its children `self`


class DefParam(Node):
    name: str
    default: Expr | None = None


class Definition(Node):
    params: DefParams = []
    # `net ResNet50 = ResNet(Bottleneck, [3, 4, 6, 3]):` — a net that is another net or a
    # torchvision model with its arguments bound, changed by the statements of its body.
    base: Expr | None = None
    body: DefinitionBody = []
    doc: str | None = None
    kind: ClassVar[str] = ""  # "net", "block" or "def": also the field that holds the name

    @property
    def name(self) -> str:
        return str(self.__dict__["def_" if self.kind == "def" else self.kind])


class NetDef(Definition):
    """`net UNet(n_channels=3, n_classes=2):` — a network that `build_model` can build."""

    net: str
    kind: ClassVar[str] = "net"


class BlockDef(Definition):
    """`block DoubleConv(out, mid=out):` — a reusable part, instantiated like a layer."""

    block: str
    kind: ClassVar[str] = "block"


class FuncDef(Definition):
    """`def make_divisible(v, divisor=8):` — a pure build-time function: its body binds
    values and returns one."""

    def_: str
    base: NoBase = None
    body: Stmts = []
    kind: ClassVar[str] = "def"


class Import(Node):
    """`from unet import DoubleConv, Down` or `from "./parts.net" import Stem`."""

    from_: str
    import_: Names
    name_spans: list[Span] = []  # where each imported name is written, in `import_`'s order


class SpecFile(Node):
    """One `.net` or YAML file: its imports and its definitions, in order."""

    imports: list[Import] = []
    defs: list[Def] = []

    def definition(self, name: str) -> NetDef | BlockDef | FuncDef | None:
        return next((d for d in self.defs if d.name == name), None)

    def nets(self) -> list[NetDef]:
        return [d for d in self.defs if isinstance(d, NetDef)]


# The field types that the annotations above name. Here they are plain types; the YAML
# schema gives each name its reading from YAML (dsl/syntax/yaml_schema.py).
ExprNode = Union[
    Const, Name, Attr, Index, Slice, Call, BinOp, UnaryOp, IfExp, ListExpr, TupleExpr,
    DictExpr, Starred, Comprehension, Container,
]  # fmt: skip
Expr = ExprNode
ShapeDim = ExprNode  # a size: in YAML a bare identifier is a symbol
Names = list[str]  # YAML may write one name as a string: `let: y`
Options = dict[str, Expr]
Stmt = Union[Input, Let, Layer, Return, ParamDecl, BufferDecl, If, For, InitBlock, Forward]
Stmts = list[Stmt]
DefParams = list[DefParam]
DefinitionBody = Union[Container, Stmts]
NoBase: TypeAlias = None  # a function has no base
Def = Union[NetDef, BlockDef, FuncDef]
# A loop's target: a name, or a list of targets that unpacks each item (`i, (c, n)`).
Target = Union[str, list[Any]]


def target_names(target: Target) -> list[str]:
    """Every name a loop's target binds."""
    return [target] if isinstance(target, str) else [n for t in target for n in target_names(t)]


def dotted(expr: Any) -> str | None:
    """`torchvision.models.resnet50` for a chain of names and attributes, else None."""
    if isinstance(expr, Name):
        return expr.id
    if isinstance(expr, Attr):
        base = dotted(expr.value)
        return f"{base}.{expr.attr}" if base else None
    return None
