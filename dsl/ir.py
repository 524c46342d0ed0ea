"""The one intermediate representation that both spec formats produce.

Every node is a frozen pydantic model carrying a `Span` (which never takes part in
equality). Field names are the YAML keys, so `SpecFile.model_json_schema()` describes the
YAML form: expressions there are YAML scalars, lists, `{Callee: args}` mappings, or
`${...}` strings in `.net` expression syntax (see docs/yaml.md). The `.net` parser builds
nodes directly with `model_construct`; YAML goes through validation."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol, Union, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SkipValidation,
    Tag,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypeAliasType

from dsl.source import NO_SPAN, Span

CONTAINER_KINDS = ("Sequential", "ModuleList", "ModuleDict")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A name may carry `{expr}` parts that a build-time `for` fills in: `down{i + 1}`.
TEMPLATE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\{[^{}\n]*\}[A-Za-z0-9_]*)*")


class Node(BaseModel):
    # defer_build: a schema is built on first validation (YAML) only, not at import
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    # Not validated: the readers make every span themselves.
    span: SkipJsonSchema[SkipValidation[Span]] = Field(
        default=NO_SPAN, validation_alias="__span__", exclude=True, repr=False
    )

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

    def children(self) -> Iterator[Node]:
        """The nodes this one holds, in field order; in a list or a dict, in its order."""
        for value in self.__dict__.values():
            if isinstance(value, Node):
                yield value
            elif isinstance(value, list | dict):
                items = value.values() if isinstance(value, dict) else value
                yield from (item for item in items if isinstance(item, Node))


POSITION_FIELDS = frozenset({"span", "kwarg_spans", "name_spans"})


# --------------------------------------------------------------------------- expressions


class YAMLSpelling(Protocol):
    """How the YAML reader turns its spellings into nodes; it passes one as the validation
    context (`model_validate(data, context=spelling)`), so this module needs no reader."""

    def expr(self, value: Any) -> Any: ...
    def dim(self, value: Any) -> Any: ...
    def stmts(self, value: Any) -> Any: ...
    def params(self, value: Any) -> Any: ...


def _spelled(kind: str) -> Callable[[Any, ValidationInfo], Any]:
    """A validator that reads a value through the context's spelling of `kind`; without a
    context, values are taken as the nodes (or node dicts) they are."""

    def read(value: Any, info: ValidationInfo) -> Any:
        spelling = info.context
        return value if spelling is None else getattr(spelling, kind)(value)

    read.__name__ = f"_yaml_{kind}"
    return read


_yaml_expr, _yaml_dim, _yaml_stmts = _spelled("expr"), _spelled("dim"), _spelled("stmts")
_yaml_params = _spelled("params")


_ONE_KEY = {"type": "object", "minProperties": 1, "maxProperties": 1}
_YAML_EXPR_SCHEMA = {
    "description": "A value: a YAML scalar or list, a call written {Callee: [args]} or "
    "{Callee: {args: [...], keyword: value}}, a container {Sequential: [statements]}, "
    "or any .net expression as a '${...}' string.",
    "anyOf": [
        {"type": ["string", "number", "integer", "boolean", "null"]},
        {"type": "array"},
        _ONE_KEY,
    ],
}


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
    kwarg_spans: SkipJsonSchema[SkipValidation[dict[str, Span]]] = Field(
        default={}, validation_alias="__kwarg_spans__", exclude=True, repr=False
    )

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


# A loop's target: a name, or a list of targets that unpacks each item (`i, (c, n)`).
if TYPE_CHECKING:
    Target = Union[str, list[Any]]
else:
    Target = TypeAliasType("Target", Union[str, list["Target"]])


class CompFor(Node):
    """One `for target in iterable if cond...` clause of a comprehension."""

    for_: Target = Field(alias="for")
    in_: Expr = Field(alias="in")
    if_: list[Expr] = Field(default=[], alias="if")


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


ExprNode = Union[
    Const,
    Name,
    Attr,
    Index,
    Slice,
    Call,
    BinOp,
    UnaryOp,
    IfExp,
    ListExpr,
    TupleExpr,
    DictExpr,
    Starred,
    Comprehension,
    Container,
]
Expr = Annotated[ExprNode, BeforeValidator(_yaml_expr), WithJsonSchema(_YAML_EXPR_SCHEMA)]
ShapeDim = Annotated[
    ExprNode,
    BeforeValidator(_yaml_dim),
    WithJsonSchema(
        {
            "description": "a size: an integer, a symbol such as B or H, or '${expr}'",
            "type": ["integer", "string"],
        }
    ),
]
_Listed = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]
Names = Annotated[_Listed, Field(json_schema_extra={"type": ["string", "array"]})]  # `let: y`

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

    return_: Expr = Field(alias="return")
    define: Expr | None = None


def _without_span(value: Any) -> Any:
    """A YAML mapping read as a plain dict: drop the position the loader adds to it."""
    return {k: v for k, v in value.items() if k != "__span__"} if isinstance(value, dict) else value


class TensorDecl(Node):
    shape: list[ShapeDim] | None = None  # None: a buffer computed from `init`, its value
    dtype: str | None = None
    init: Expr | None = None
    options: Annotated[dict[str, Expr], BeforeValidator(_without_span)] = {}

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
    if_: Expr = Field(alias="if")
    then: Stmts = []
    else_: Stmts = Field(default=[], alias="else")


class For(Node):
    for_: Target = Field(alias="for")
    in_: Expr = Field(alias="in")
    body: Stmts = []


class InitRule(Node):
    """`Conv2d.weight: kaiming_normal(mode="fan_out")`, `"layer*.bn2.weight": zeros()`, or a recipe `resnet()`."""

    match: str | None = None
    init: Expr


class InitBlock(Node):
    init: list[InitRule]


class Forward(Node):
    forward: Stmts = []  # last in a container block's body: a graph body, its children `self`


_STATEMENT_TAGS = {"Input": "input", "Let": "let", "Layer": "layer"}  # class name -> YAML key
_STATEMENT_TAGS |= {"Return": "return", "ParamDecl": "param", "BufferDecl": "buffer", "If": "if"}
_STATEMENT_TAGS |= {"For": "for", "InitBlock": "init", "Forward": "forward"}


def _statement_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((k for k in value if k in _STATEMENT_TAGS.values()), None)
    return _STATEMENT_TAGS.get(type(value).__name__)


Stmt = Annotated[
    Union[
        Annotated[Input, Tag("input")],
        Annotated[Let, Tag("let")],
        Annotated[Layer, Tag("layer")],
        Annotated[Return, Tag("return")],
        Annotated[ParamDecl, Tag("param")],
        Annotated[BufferDecl, Tag("buffer")],
        Annotated[If, Tag("if")],
        Annotated[For, Tag("for")],
        Annotated[InitBlock, Tag("init")],
        Annotated[Forward, Tag("forward")],
    ],
    Discriminator(_statement_tag),
]
Stmts = Annotated[list[Stmt], BeforeValidator(_yaml_stmts)]


class DefParam(Node):
    name: str
    default: Expr | None = None


DefParams = Annotated[
    list[DefParam],
    BeforeValidator(_yaml_params),
    WithJsonSchema(
        {"description": "parameters: a bare name is required, {name: default} has a default"}
        | {"type": "array", "items": {"anyOf": [{"type": "string"}, _ONE_KEY]}}
    ),
]


def _definition_body(value: Any, info: ValidationInfo) -> Any:
    """A definition's body: statements, or one container written as a mapping."""
    return _yaml_expr(value, info) if isinstance(value, dict) else value


class Definition(Node):
    params: DefParams = []
    # `net ResNet50 = ResNet(Bottleneck, [3, 4, 6, 3]):` — a net that is another net or a
    # torchvision model with its arguments bound, changed by the statements of its body.
    base: Expr | None = None
    body: Annotated[
        Union[Container, Stmts],
        BeforeValidator(_definition_body),
    ] = []
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

    def_: str = Field(alias="def")
    base: SkipJsonSchema[None] = None
    body: Stmts = []
    kind: ClassVar[str] = "def"


_DEFINITION_TAGS = {"NetDef": "net", "BlockDef": "block", "FuncDef": "def"}


def _definition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((tag for tag in _DEFINITION_TAGS.values() if tag in value), None)
    return _DEFINITION_TAGS.get(type(value).__name__)


Def = Annotated[
    Union[
        Annotated[NetDef, Tag("net")],
        Annotated[BlockDef, Tag("block")],
        Annotated[FuncDef, Tag("def")],
    ],
    Discriminator(_definition_tag),
]


class Import(Node):
    """`from unet import DoubleConv, Down` or `from "./parts.net" import Stem`."""

    from_: str = Field(alias="from")
    import_: Names = Field(alias="import")
    # Where each imported name is written, in the order of `import_`.
    name_spans: SkipJsonSchema[SkipValidation[list[Span]]] = Field(
        default=[], validation_alias="__name_spans__", exclude=True, repr=False
    )


class SpecFile(Node):
    """One `.net` or YAML file: its imports and its definitions, in order."""

    imports: list[Import] = []
    defs: list[Def] = []

    def definition(self, name: str) -> NetDef | BlockDef | FuncDef | None:
        return next((d for d in self.defs if d.name == name), None)

    def nets(self) -> list[NetDef]:
        return [d for d in self.defs if isinstance(d, NetDef)]


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
