"""YAML text -> IR, through a safe loader that remembers where every value was written.

Every mapping gets a `__span__` key and every string, integer, float and list carries a
`.span`, so that schema errors point at the line that caused them. Expressions have a YAML
spelling (scalars, lists, `{Callee: args}` mappings, `${...}` strings in `.net` syntax);
`expr_from_yaml` and friends turn it into IR nodes; `dsl/ir.py`'s validators call them
through the validation context (`SPELLING`). See docs/yaml.md.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dsl import ir
from dsl.errors import DSLError, LimitError, SchemaError, YAMLFormatError, did_you_mean
from dsl.pauses import gc_paused
from dsl.source import NO_SPAN, Span, register_source
from dsl.syntax.parse_net import check_source_size, parse_expression

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_DEPTH = 200
MAX_ALIASES = 10_000
# Aliases let a small file describe a huge tree ("billion laughs"); this bounds the tree.
MAX_NODES = 1_000_000

_STATEMENT_MODELS: dict[str, type[BaseModel]] = {
    "input": ir.Input,
    "let": ir.Let,
    "layer": ir.Layer,
    "return": ir.Return,
    "param": ir.ParamDecl,
    "buffer": ir.BufferDecl,
    "if": ir.If,
    "for": ir.For,
    "init": ir.InitBlock,
}
_DEFINITION_MODELS: dict[str, type[BaseModel]] = {"net": ir.NetDef, "block": ir.BlockDef}
_LIST_ITEM_MODELS: dict[str, type[BaseModel]] = {
    "imports": ir.Import,
    "params": ir.DefParam,
    "init": ir.InitRule,
}


# ----------------------------------------------------------------------------- public API


def parse_yaml(text: str, file: str = "<string>") -> ir.SpecFile:
    """Parse a whole YAML spec file."""
    check_source_size(text, file)
    register_source(file, text)
    with gc_paused():
        return _parse(text, file)


def _parse(text: str, file: str) -> ir.SpecFile:
    try:
        data = _load(text, file)
        if not isinstance(data, dict):
            raise SchemaError(
                f"a spec file is a mapping with 'imports' and 'defs', not {_describe(data)}",
                _span_of(data) or Span(file=file, line=1, col=1),
                hint="start the file with 'defs:'",
            )
        return _validate(ir.SpecFile, data)
    except RecursionError:
        raise LimitError(
            "the spec nests too deeply to read", Span(file=file, line=1, col=1)
        ) from None


def expr_from_yaml(value: Any) -> ir.ExprNode:
    """The YAML spelling of an expression -> its IR node (IR nodes pass through)."""
    if isinstance(value, ir.Node):
        return value
    if value is None or isinstance(value, bool):
        return ir.Const(value=value)
    if isinstance(value, int):
        return ir.Const(value=int(value), span=_span_of(value))
    if isinstance(value, float):
        return ir.Const(value=float(value), span=_span_of(value))
    if isinstance(value, str):
        return _expr_from_str(value)
    if isinstance(value, list):
        return ir.ListExpr(
            items=[_expr_within(item, _span_of(value)) for item in value], span=_span_of(value)
        )
    if isinstance(value, dict):
        return _expr_from_mapping(value)
    raise SchemaError(f"expected a value, found {_describe(value)}", _span_of(value))


def _expr_within(value: Any, span: Span) -> ir.ExprNode:
    """An item of a list or mapping; null and booleans carry no position, so they take the
    position of what holds them."""
    node = expr_from_yaml(value)
    return node if node.span else node.model_copy(update={"span": span})


def dim_from_yaml(value: Any) -> ir.ExprNode:
    """A shape entry: like an expression, except that a bare identifier names a symbolic size."""
    if isinstance(value, str) and ir.IDENTIFIER.fullmatch(value):
        return ir.Name(id=str(value), span=_span_of(value))
    return expr_from_yaml(value)


def stmts_from_yaml(value: Any) -> Any:
    """A list of statements; each is validated by pydantic through its key."""
    if isinstance(value, list) or not _span_of(value):
        # A value without a position (null, a boolean) is left to pydantic, whose error
        # carries the location of the key that holds it.
        return value
    raise SchemaError(
        f"expected a list of statements, found {_describe(value)}",
        _span_of(value),
        hint="write each statement as a '- ' item",
    )


# ----------------------------------------------------------------------------- loading


def _located(base: type) -> type:
    """A scalar type whose values carry the span they were read at."""

    def new(cls: type, value: Any, span: Span) -> Any:
        obj = base.__new__(cls, value)
        obj.span = span
        return obj

    return type(f"_{base.__name__.capitalize()}", (base,), {"__new__": new})


_Str, _Int, _Float = _located(str), _located(int), _located(float)


class _List(list):
    def __init__(self, span: Span) -> None:
        super().__init__()
        self.span = span


class _Loader(_BaseLoader):
    """A safe loader whose values remember their source positions."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file

    def span_at(self, start: yaml.Mark, end: yaml.Mark, quoted: bool = False) -> Span:
        # A quoted scalar's text starts after its quote.
        return Span(
            file=self.file,
            line=start.line + 1,
            col=start.column + 1 + int(quoted),
            end_line=end.line + 1,
            end_col=end.column + 1,
        )

    def node_span(self, node: yaml.Node) -> Span:
        return self.span_at(
            node.start_mark,
            node.end_mark,
            isinstance(node, yaml.ScalarNode) and node.style in ('"', "'"),
        )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        self._check_duplicate_keys(node)
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__span__"] = self.node_span(node)
        return mapping

    def _check_duplicate_keys(self, node: yaml.MappingNode) -> None:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if (
                not isinstance(key_node, yaml.ScalarNode)
                or key_node.tag == "tag:yaml.org,2002:merge"
            ):
                continue
            if key_node.value in seen:
                raise SchemaError(
                    f"key '{key_node.value}' is given twice in this mapping",
                    self.node_span(key_node),
                )
            seen.add(key_node.value)

    def construct_spanned_map(self, node: yaml.MappingNode) -> Any:
        data: dict = {}
        yield data
        data.update(self.construct_mapping(node))

    def construct_spanned_seq(self, node: yaml.SequenceNode) -> Any:
        data = _List(self.node_span(node))
        yield data
        data.extend(self.construct_sequence(node))

    def construct_spanned_str(self, node: yaml.ScalarNode) -> _Str:
        return _Str(self.construct_yaml_str(node), self.node_span(node))

    def construct_spanned_int(self, node: yaml.ScalarNode) -> _Int:
        return _Int(self.construct_yaml_int(node), self.node_span(node))

    def construct_spanned_float(self, node: yaml.ScalarNode) -> _Float:
        return _Float(self.construct_yaml_float(node), self.node_span(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_spanned_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_spanned_seq)
_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_spanned_str)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_spanned_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_spanned_float)
# A date-like scalar stays a string: a spec has no use for timestamps.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


def _load(text: str, file: str) -> Any:
    try:
        try:
            return _build(text, file)
        except (_Unsupported, yaml.YAMLError, ValueError):
            # The full loader reads what the builder leaves to it, and reports every mistake
            # (the builder's limit errors are the ones `_check_size` would raise first).
            _check_size(text, file)
            return _construct(text, file)
    except yaml.MarkedYAMLError as exc:
        raise _format_error(exc, text, file) from None
    except (yaml.YAMLError, ValueError) as exc:  # a reader error, or a bad date in a timestamp
        raise YAMLFormatError(
            f"this is not valid YAML: {exc}", Span(file=file, line=1, col=1)
        ) from None


def _construct(text: str, file: str) -> Any:
    loader = _Loader(text, file)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _check_size(text: str, file: str) -> None:
    """Walk the event stream before building anything (libyaml's composer recurses in C, so
    depth must be checked before composing)."""
    loader = _BaseLoader(text)
    limits = _Limits(file)
    try:
        while loader.check_event():
            limits.see(loader.get_event())
    finally:
        loader.dispose()


_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class _Limits:
    """Bounds an event stream as it is read: the nesting depth, the alias uses and the size of
    the tree that aliases would expand to; refuses recursive aliases."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.open: list[list] = []  # [anchor, expanded size so far] per open collection
        self.anchors: dict[str, int] = {}
        self.aliases = 0

    def see(self, event: yaml.Event) -> None:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            self._add(event.anchor, 1, event)
        elif kind in _STARTS:
            if len(self.open) >= MAX_DEPTH:
                raise LimitError(
                    f"the document nests more than {MAX_DEPTH} levels deep", self._span(event)
                )
            self.open.append([event.anchor, 1])
        elif kind in _ENDS:
            anchor, size = self.open.pop()
            self._add(anchor, size, event)
        elif kind is yaml.AliasEvent:
            self._alias(event)

    def _alias(self, event: yaml.AliasEvent) -> None:
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise LimitError(
                f"the document uses aliases more than {MAX_ALIASES} times", self._span(event)
            )
        if any(anchor == event.anchor for anchor, _ in self.open):
            raise LimitError(
                f"alias '*{event.anchor}' refers to a node that contains it",
                self._span(event),
                hint="a spec cannot be a recursive structure",
            )
        self._add(None, self.anchors.get(event.anchor, 1), event)

    def _add(self, anchor: str | None, size: int, event: yaml.Event) -> None:
        if anchor is not None:
            self.anchors[anchor] = size
        if self.open:
            self.open[-1][1] += size
            if self.open[-1][1] > MAX_NODES:
                raise LimitError(
                    f"the document expands to more than {MAX_NODES} values through its aliases",
                    self._span(event),
                    hint="anchors and aliases may share parts of a spec, not multiply them",
                )

    def _span(self, event: yaml.Event) -> Span:
        return Span(file=self.file, line=event.start_mark.line + 1, col=event.start_mark.column + 1)


class _Unsupported(Exception):
    """YAML that the builder leaves to the full loader: tags, merge keys, duplicate keys or
    anchors, keys that are not scalars, several documents."""


_STR = "tag:yaml.org,2002:str"
_OTHER_SCALARS = {f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool", "null")}
_NO_KEY = object()


def _build(text: str, file: str) -> Any:
    """What `_check_size` then `_construct` give, in one pass over the events: each value is
    made as its event arrives, with the limits checked as they go. Composing a node graph and
    then constructing from it cost several times what reading the events does."""
    loader = _Loader(text, file)
    try:
        return _Builder(loader).run()
    finally:
        loader.dispose()


class _Open:
    """A collection being built, with (for a mapping) the key waiting for its value."""

    __slots__ = ("key", "keys", "start", "value")

    def __init__(self, value: dict | _List, start: yaml.Event) -> None:
        self.value = value
        self.start = start
        self.key: Any = _NO_KEY
        self.keys: set[str] = set()  # the keys as written, as `_check_duplicate_keys` compares them


class _Builder:
    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.limits = _Limits(loader.file)
        self.open: list[_Open] = []
        self.anchors: dict[str, Any] = {}
        self.documents = 0
        self.root: Any = None

    def run(self) -> Any:
        loader, see = self.loader, self.limits.see
        while loader.check_event():
            event = loader.get_event()
            see(event)
            kind = type(event)
            if kind is yaml.ScalarEvent:
                self._add(self._scalar(event), event.value)
            elif kind in _STARTS:
                self._start(event)
            elif kind in _ENDS:
                self._end(event)
            elif kind is yaml.AliasEvent:
                self._add(self._alias(event), None)
            elif kind is yaml.DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    raise _Unsupported
        return self.root

    def _scalar(self, event: yaml.ScalarEvent) -> Any:
        if event.tag not in (None, "!"):
            raise _Unsupported
        loader = self.loader
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR:
            value = _Str(
                event.value,
                loader.span_at(event.start_mark, event.end_mark, event.style in ('"', "'")),
            )
        elif tag in _OTHER_SCALARS:
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            value = loader.yaml_constructors[tag](loader, node)
        else:
            raise _Unsupported
        self._define(event.anchor, value)
        return value

    def _start(self, event: yaml.CollectionStartEvent) -> None:
        if event.tag not in (None, "!"):
            raise _Unsupported
        self.open.append(
            _Open({} if type(event) is yaml.MappingStartEvent else _List(NO_SPAN), event)
        )

    def _end(self, event: yaml.CollectionEndEvent) -> None:
        done = self.open.pop()
        span = self.loader.span_at(done.start.start_mark, event.end_mark)
        if isinstance(done.value, dict):
            done.value["__span__"] = span
        else:
            done.value.span = span
        self._define(done.start.anchor, done.value)
        self._add(done.value, None)

    def _alias(self, event: yaml.AliasEvent) -> Any:
        if event.anchor not in self.anchors:
            raise _Unsupported
        return self.anchors[event.anchor]

    def _define(self, anchor: str | None, value: Any) -> None:
        if anchor is not None:
            if anchor in self.anchors:
                raise _Unsupported
            self.anchors[anchor] = value

    def _add(self, value: Any, written: str | None) -> None:
        """Put a value where it belongs; `written` is a scalar's text, None for anything else."""
        if not self.open:
            self.root = value
            return
        top = self.open[-1]
        if isinstance(top.value, list):
            top.value.append(value)
        elif top.key is not _NO_KEY:
            top.value[top.key] = value
            top.key = _NO_KEY
        elif written is None or written in top.keys:
            raise _Unsupported
        else:
            top.keys.add(written)
            top.key = value


def _format_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> DSLError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    span = Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)
    message = exc.problem or exc.context or "this is not valid YAML"
    if message == "exceeded maximum nesting depth":
        # libyaml's own limit (newer releases): its scanner, looking ahead for a key in
        # flow collections, can meet it before `_Limits` has seen MAX_DEPTH levels.
        return LimitError(f"the document nests more than {MAX_DEPTH} levels deep", span)
    if (
        exc.context and exc.context.startswith("expected") and exc.problem
    ):  # "expected X, but found Y"
        message = f"{exc.context}, {exc.problem}"
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    if isinstance(exc, yaml.constructor.ConstructorError) and "constructor for the tag" in message:
        tag = re.match(r"!\S*", source[col - 1 :])
        if tag:
            span = Span(file=file, line=line, col=col, end_line=line, end_col=col + tag.end())
        return YAMLFormatError(
            f"the YAML tag '{tag.group()}' is not allowed in a spec"
            if tag
            else "this YAML tag is not allowed in a spec",
            span,
            hint="specs are plain data: remove the '!' tag (loading a spec never runs code)",
        )
    indentation = source[: len(source) - len(source.lstrip(" \t"))]
    if "\t" in indentation:
        tab = indentation.index("\t") + 1
        span = Span(file=file, line=line, col=tab, end_line=line, end_col=tab + 1)
        return YAMLFormatError(
            "a tab in the indentation",
            span,
            hint="YAML indents with spaces only; replace the tab with spaces",
        )
    return YAMLFormatError(message, span)


# ----------------------------------------------------------------------------- expressions


def _expr_from_str(text: str) -> ir.ExprNode:
    span = _span_of(text)
    if text.startswith("${") and text.endswith("}"):
        inner = (
            Span(
                file=span.file,
                line=span.line,
                col=span.col + 2,
                end_line=span.end_line,
                end_col=span.end_col,
            )
            if span
            else NO_SPAN
        )
        return _expression_at(text[2:-1], inner)
    return ir.Const(value=str(text), span=span)


_ORIGIN = Span(file="", line=1, col=1)


@functools.lru_cache(maxsize=4096)
def _expression_at_origin(text: str) -> ir.ExprNode:
    return parse_expression(text, _ORIGIN)


def _expression_at(text: str, span: Span) -> ir.ExprNode:
    """`parse_expression(text, span)`, parsing each distinct text once: a spec repeats the
    same few `${...}` many times, and moving a parsed tree costs far less than parsing."""
    if not span:
        return parse_expression(text)
    try:
        tree = _expression_at_origin(text)
    except DSLError:
        return parse_expression(text, span)  # raises the error where it was written
    return _moved(tree, span)


def _moved(value: Any, origin: Span) -> Any:
    """A tree parsed at line 1, column 1, as if it had been parsed at `origin`."""
    if isinstance(value, ir.Node):
        node = value.__copy__()
        node.__dict__.update(
            {name: _moved(field, origin) for name, field in value.__dict__.items()}
        )
        return node
    if isinstance(value, Span):
        return _moved_span(value, origin)
    if isinstance(value, list):
        return [_moved(item, origin) for item in value]
    if isinstance(value, dict):
        return {key: _moved(item, origin) for key, item in value.items()}
    return value


def _moved_span(span: Span, origin: Span) -> Span:
    if not span:  # a node the parser could not place
        return Span(file=origin.file)
    return Span(
        file=origin.file,
        line=span.line + origin.line - 1,
        # Only the first line starts at the origin's column.
        col=span.col + (origin.col - 1 if span.line == 1 else 0),
        end_line=span.end_line + origin.line - 1,
        end_col=span.end_col + (origin.col - 1 if span.end_line == 1 else 0),
    )


def _expr_from_mapping(mapping: dict) -> ir.ExprNode:
    span = mapping.get("__span__", NO_SPAN)
    keys = [key for key in mapping if key != "__span__"]
    if len(keys) != 1:
        raise SchemaError(
            f"a value written as a mapping has exactly one key, its callee; this one has {len(keys)}",
            span,
            hint="write a call as {Conv2d: [64]} or {Conv2d: {args: [64], kernel_size: 3}}",
        )
    key = keys[0]
    if key in ir.CONTAINER_KINDS:
        return _container(str(key), mapping[key], span)
    return _call(key, mapping[key], span)


def _container(kind: str, value: Any, span: Span) -> ir.Container:
    if value is None or isinstance(value, list):
        body, options = value or [], {}
    elif isinstance(value, dict):
        body = value.get("body", [])
        options = _keywords({k: v for k, v in value.items() if k != "body"}, span)
    else:
        raise SchemaError(
            f"a {kind} holds a list of statements, or a mapping of options with 'body'",
            _span_of(value) or span,
            hint=f"write {{{kind}: [...]}} or {{{kind}: {{run: parallel, body: [...]}}}}",
        )
    return _validate(
        ir.Container, {"kind": kind, "options": options, "body": body, "__span__": span}
    )


def _call(callee: Any, value: Any, span: Span) -> ir.Call:
    func = _callee(callee, span)
    if value is None:
        args, kwargs = [], {}
    elif isinstance(value, list):
        args, kwargs = value, {}
    elif isinstance(value, dict):
        args = value.get("args", [])
        if not isinstance(args, list):
            raise SchemaError(
                "'args' holds a list of positional arguments",
                _span_of(args) or span,
                hint="write args: [64, 3]",
            )
        kwargs = {k: v for k, v in value.items() if k != "args"}
    else:
        raise SchemaError(
            f"the arguments of '{callee}' are a list, a mapping of keywords, or null; found {_describe(value)}",
            _span_of(value) or span,
            hint=f"write {{{callee}: [{value!r}]}}",
        )
    return ir.Call(
        func=func,
        args=[_expr_within(a, span) for a in args],
        kwargs=_keywords(kwargs, span),
        span=span,
    )


def _callee(key: Any, span: Span) -> ir.ExprNode:
    """A callee is written as a (dotted) name: `Conv2d`, `torchvision.models.resnet50`, `down{i}`."""
    problem = SchemaError(
        f"'{key}' is not a callee",
        _span_of(key) or span,
        hint="a value written as a mapping is a call such as {Conv2d: [64]} or a container such as {Sequential: [...]}",
    )
    if not isinstance(key, str):
        raise problem
    try:
        func = _expression_at(str(key), _span_of(key))
    except DSLError:
        raise problem from None
    if ir.dotted(func) is None:
        raise problem
    return func


def _keywords(mapping: dict, span: Span) -> dict[str, ir.ExprNode]:
    out = {}
    for key, value in mapping.items():
        if key == "__span__":
            continue
        if not isinstance(key, str) or not ir.IDENTIFIER.fullmatch(key):
            raise SchemaError(f"'{key}' is not a keyword name", _span_of(key) or span)
        out[str(key)] = _expr_within(value, _span_of(key) or span)
    return out


# ----------------------------------------------------------------------------- schema errors


class _Spelling:
    """The YAML spellings that `dsl/ir.py`'s validators read values through."""

    expr = staticmethod(expr_from_yaml)
    dim = staticmethod(dim_from_yaml)
    stmts = staticmethod(stmts_from_yaml)


SPELLING: ir.YAMLSpelling = _Spelling()


def _validate(model: type[BaseModel], data: dict) -> Any:
    try:
        return model.model_validate(data, context=SPELLING)
    except ValidationError as exc:
        raise _schema_error(exc, data) from None


def _schema_error(exc: ValidationError, data: dict) -> SchemaError:
    # A union reports one error per branch; the one that got furthest into the data is
    # the one the writer meant.
    located = [(_walk(data, error["loc"]), error) for error in exc.errors(include_url=False)]
    steps, error = max(located, key=lambda item: len(item[0]))
    value = steps[-1][1]
    # The mapping that holds the offending key: the value itself when the key is missing.
    holder = (
        len(steps) - 1 if error["type"] == "missing" and isinstance(value, dict) else _holder(steps)
    )
    mapping = steps[holder][1]
    span = _span_of(value) or _span_of(mapping)
    field = next((seg for seg in reversed(error["loc"]) if isinstance(seg, str)), None)
    kind = error["type"]
    if _list_key(steps, holder) == "params" and kind in ("missing", "extra_forbidden"):
        return SchemaError(
            "a parameter is written as a name, or as {name: default}",
            _span_of(mapping),
            hint="write params: [out, {mid: 64}]",
        )
    if kind == "missing":
        return SchemaError(f"missing key '{field}'", _span_of(mapping))
    if kind == "extra_forbidden":
        key_span = next((_span_of(k) for k in mapping if k == field), span)
        return SchemaError(
            f"unknown key '{field}'",
            key_span,
            hint=did_you_mean(str(field), _allowed_keys(steps, holder)),
        )
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return _tag_error(value, _list_key(steps, len(steps) - 1), span)
    where = f"'{field}': " if field else ""
    return SchemaError(f"{where}{_plain_message(error)}", span)


def _walk(data: Any, loc: tuple) -> list[tuple[Any, Any]]:
    """Follow an error's location through the raw data, as (key, value) steps. Segments that
    name no place in it (union tags such as 'let', branch names such as 'Container') are
    skipped."""
    steps: list[tuple[Any, Any]] = [(None, data)]
    after_index = False
    for segment in loc:
        current = steps[-1][1]
        if (
            isinstance(current, dict)
            and segment in current
            and not (after_index and segment == _tag(current))
        ):
            steps.append((segment, current[segment]))
        elif isinstance(current, list) and isinstance(segment, int) and 0 <= segment < len(current):
            steps.append((segment, current[segment]))
            after_index = True
            continue
        after_index = False
    return steps


def _holder(steps: list[tuple[Any, Any]]) -> int:
    """The index of the innermost mapping that holds the last step."""
    return next((i for i in range(len(steps) - 2, -1, -1) if isinstance(steps[i][1], dict)), 0)


def _list_key(steps: list[tuple[Any, Any]], index: int) -> Any:
    """The key of the list that holds step `index` ('defs', 'params', ...), if it is in one."""
    return steps[index - 1][0] if index >= 2 and isinstance(steps[index][0], int) else None


def _tag(mapping: dict) -> str | None:
    return next(
        (key for key in mapping if key in _STATEMENT_MODELS or key in _DEFINITION_MODELS), None
    )


def _allowed_keys(steps: list[tuple[Any, Any]], holder: int) -> list[str]:
    mapping = steps[holder][1]
    tag = _tag(mapping)
    if holder == 0:
        model: type[BaseModel] | None = ir.SpecFile
    elif tag is not None:
        model = _STATEMENT_MODELS.get(tag) or _DEFINITION_MODELS[tag]
    else:
        model = _LIST_ITEM_MODELS.get(str(_list_key(steps, holder)))
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items() if name != "span"]


def _tag_error(value: Any, list_key: Any, span: Span) -> SchemaError:
    given = [k for k in value if k != "__span__"] if isinstance(value, dict) else []
    if list_key == "defs":
        expected, what = list(_DEFINITION_MODELS), "a definition"
    else:
        expected, what = list(_STATEMENT_MODELS), "a statement"
    # Point at the misspelt key where one looks like a statement's key.
    hint, key_span = None, span
    for key in given:
        hint = did_you_mean(str(key), expected)
        if hint:
            key_span = _span_of(key) or span
            break
    return SchemaError(
        f"{what} is a mapping with one of the keys {', '.join(expected)}; found {_describe(value)}",
        key_span,
        hint=hint,
    )


def _plain_message(error: dict) -> str:
    if error["type"] == "list_type":
        return f"expected a list, found {_describe(error['input'])}"
    if error["type"] == "string_type":
        return f"expected a string, found {_describe(error['input'])}"
    return str(error["msg"])


# ----------------------------------------------------------------------------- helpers


def _span_of(value: Any) -> Span:
    if isinstance(value, dict):
        span = value.get("__span__", NO_SPAN)
        return span if isinstance(span, Span) else NO_SPAN
    return getattr(value, "span", NO_SPAN)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string '{value}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        keys = [str(k) for k in value if k != "__span__"]
        return f"a mapping with keys {', '.join(keys)}" if keys else "an empty mapping"
    if isinstance(value, ir.Node):
        return f"a {type(value).__name__} expression"
    return f"a value of type {type(value).__name__}"
