"""The YAML form's schema: a pydantic model per IR node class, derived from dsl/ir.py.

Each model has the node's fields, in order, with the node's annotations read in this
module's namespace, where the names dsl/ir.py leaves plain (`Expr`, `Stmts`, `Names`, ...)
say how YAML spells them: an expression goes through the reader's spelling (scalars, lists,
`{Callee: args}`, `${...}`), a statement is told by its key. The spelling comes as the
validation context (`YAMLSpelling`), so this module needs no reader. `to_ir` turns a
validated model into the IR node of the same name; nodes the spelling made pass through.
`SpecFile.model_json_schema()` describes the YAML form (`dsl schema`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol, Union, get_args  # noqa: F401  # Literal: see below

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SkipValidation,
    Tag,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypeAliasType

from dsl import ir
from dsl.ir import AugOperator, BinaryOperator, UnaryOperator  # noqa: F401  # named by annotations
from dsl.source import Span


class YAMLSpelling(Protocol):
    """How the YAML reader turns its spellings into nodes; it passes one as the validation
    context (`model_validate(data, context=spelling)`)."""

    def expr(self, value: Any) -> Any: ...
    def dim(self, value: Any) -> Any: ...
    def stmts(self, value: Any) -> Any: ...
    def params(self, value: Any) -> Any: ...


def yaml_key(field: str) -> str:
    """The YAML key of a node's field: `for_` is written `for`."""
    return field[:-1] if field.endswith("_") else field


def _spelled(kind: str) -> WrapValidator:
    """Read a value through the context's spelling of `kind` (as it is without a context);
    a node the spelling made is taken as it is, anything else is validated."""

    def read(value: Any, validate: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        spelling = info.context
        if spelling is not None:
            value = getattr(spelling, kind)(value)
        return value if isinstance(value, ir.Node) else validate(value)

    return WrapValidator(read)


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _without_span(value: Any) -> Any:
    """A YAML mapping read as a plain dict: drop the position the loader adds to it."""
    return {k: v for k, v in value.items() if k != "__span__"} if isinstance(value, dict) else value


def _definition_body(
    value: Any, validate: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> Any:
    """A definition's body: statements, or one container written as a mapping (any other
    value there is refused by validation)."""
    if isinstance(value, dict) and info.context is not None:
        value = info.context.expr(value)
    return value if isinstance(value, ir.Container) else validate(value)


def _tagged(tags: dict[str, str]) -> Any:
    """The discriminator of a union of nodes: a mapping's key that names its kind."""

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            return next((k for k in value if k in tags.values()), None)
        return tags.get(type(value).__name__)

    return tag


class SchemaNode(BaseModel):
    # defer_build: a schema is built on first validation (YAML) only, not at import
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


_POSITION_TYPES = {
    "span": SkipJsonSchema[SkipValidation[Span]],
    "kwarg_spans": SkipJsonSchema[SkipValidation[dict[str, Span]]],
    "name_spans": SkipJsonSchema[SkipValidation[list[Span]]],
}


def _field(node: type[ir.Node], name: str) -> Any:
    defaults = node.defaults()
    options: dict[str, Any] = {"default": defaults[name]} if name in defaults else {}
    if name in ir.POSITION_FIELDS:
        return Field(**options, validation_alias=f"__{name}__", exclude=True, repr=False)
    return Field(**options, alias=yaml_key(name)) if name != yaml_key(name) else Field(**options)


def _model(node: type[ir.Node]) -> type[SchemaNode]:
    """The schema model of one node class: its fields, its annotations, its docstring."""
    namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": node.__name__}
    namespace["__doc__"] = vars(node).get("__doc__")
    namespace["__annotations__"] = {
        name: _POSITION_TYPES.get(name, annotation) for name, annotation in node.annotations.items()
    }
    namespace |= {name: _field(node, name) for name in node.fields}
    return type(node.__name__, (SchemaNode,), namespace)


MODELS: dict[str, type[SchemaNode]] = {cls.__name__: _model(cls) for cls in ir.node_classes()}
globals().update(MODELS)  # the annotations name the models; pydantic resolves them here
_IR_CLASSES = {cls.__name__: cls for cls in ir.node_classes()}


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
_DIM_SCHEMA = {
    "description": "a size: an integer, a symbol such as B or H, or '${expr}'",
    "type": ["integer", "string"],
}
_PARAMS_SCHEMA = {
    "description": "parameters: a bare name is required, {name: default} has a default",
    "type": "array",
    "items": {"anyOf": [{"type": "string"}, _ONE_KEY]},
}
STATEMENT_TAGS = {"Input": "input", "Let": "let", "Layer": "layer", "Return": "return"}
STATEMENT_TAGS |= {"ParamDecl": "param", "BufferDecl": "buffer", "If": "if", "For": "for"}
STATEMENT_TAGS |= {"InitBlock": "init", "Forward": "forward"}  # model name -> YAML key
DEFINITION_TAGS = {"NetDef": "net", "BlockDef": "block", "FuncDef": "def"}


def _union(tags: dict[str, str]) -> Any:
    members = tuple(Annotated[MODELS[name], Tag(tag)] for name, tag in tags.items())
    return Annotated[Union[members], Discriminator(_tagged(tags))]  # noqa: UP007


# The names dsl/ir.py's annotations use, each with its YAML reading; pydantic resolves the
# annotations in this module (`Literal` too).
ExprNode: Any = Union[tuple(MODELS[cls.__name__] for cls in get_args(ir.ExprNode))]  # noqa: UP007
Expr: Any = Annotated[ExprNode, _spelled("expr"), WithJsonSchema(_YAML_EXPR_SCHEMA)]
ShapeDim: Any = Annotated[ExprNode, _spelled("dim"), WithJsonSchema(_DIM_SCHEMA)]
Names: Any = Annotated[
    list[str], BeforeValidator(_listed), Field(json_schema_extra={"type": ["string", "array"]})
]
Options: Any = Annotated[dict[str, Expr], BeforeValidator(_without_span)]
Stmt: Any = _union(STATEMENT_TAGS)
Stmts: Any = Annotated[list[Stmt], _spelled("stmts")]
Def: Any = _union(DEFINITION_TAGS)
_DefParam, _Container = MODELS["DefParam"], MODELS["Container"]
DefParams: Any = Annotated[list[_DefParam], _spelled("params"), WithJsonSchema(_PARAMS_SCHEMA)]  # type: ignore[valid-type]
DefinitionBody: Any = Annotated[Union[_Container, Stmts], WrapValidator(_definition_body)]  # noqa: UP007
NoBase: Any = SkipJsonSchema[None]  # type: ignore[misc]
Target: Any = TypeAliasType("Target", Union[str, list["Target"]])  # type: ignore[misc]  # noqa: UP007


def to_ir(value: Any) -> Any:
    """A validated model -> the IR node of the same name, its fields turned likewise; a node
    the spelling made (and everything else) is kept as it is."""
    if isinstance(value, SchemaNode):
        node = _IR_CLASSES[type(value).__name__]
        return node(**{name: to_ir(field) for name, field in value.__dict__.items()})
    if isinstance(value, list):
        return [to_ir(item) for item in value]
    if isinstance(value, dict):
        return {key: to_ir(item) for key, item in value.items()}
    return value
