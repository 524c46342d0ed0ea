"""A safe YAML loader whose values remember their source positions, the limits that bound
what a document may expand to, and YAML errors as located `DSLError`s."""

from __future__ import annotations

import re
from typing import Any

import yaml

from dsl.errors import DSLError, LimitError, SchemaError, YAMLFormatError
from dsl.source import Span
from dsl.syntax.yaml_values import Float, Int, SpannedList, Str

try:
    from yaml import CSafeLoader as BaseLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as BaseLoader  # type: ignore[assignment]

# The types of YAML's type repository that PyYAML's safe loader builds but a spec cannot hold.
REFUSED_TAGS = ("timestamp", "binary", "set", "omap", "pairs")
MAX_DEPTH = 200
MAX_ALIASES = 10_000
# Aliases let a small file describe a huge tree ("billion laughs"); this bounds the values
# they stand for, all uses together: each is read as often as it is used.
MAX_ALIAS_VALUES = 100_000

# PyYAML's or libyaml's mark (the stubs allow None, which a parser never gives).
Mark = Any


class SpannedLoader(BaseLoader):
    """A safe loader whose values remember their source positions."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file

    def span_at(self, start: Mark, end: Mark, quoted: bool = False) -> Span:
        # A quoted scalar's text lies between its quotes.
        return Span(
            file=self.file,
            line=start.line + 1,
            col=start.column + 1 + int(quoted),
            end_line=end.line + 1,
            end_col=end.column + 1 - int(quoted),
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
        data = SpannedList(self.node_span(node))
        yield data
        data.extend(self.construct_sequence(node))

    def construct_spanned_str(self, node: yaml.ScalarNode) -> Str:
        return Str(self.construct_yaml_str(node), self.node_span(node))

    def construct_spanned_int(self, node: yaml.ScalarNode) -> Int:
        return Int(self.construct_yaml_int(node), self.node_span(node))

    def construct_spanned_float(self, node: yaml.ScalarNode) -> Float:
        return Float(self.construct_yaml_float(node), self.node_span(node))

    def construct_refused(self, node: yaml.Node) -> Any:
        """A value of a type that a spec has no use for (PyYAML would build a date, bytes,
        a set or pairs of it)."""
        raise YAMLFormatError(
            f"the YAML tag '!!{node.tag.rsplit(':', 1)[-1]}' is not allowed in a spec",
            self.node_span(node),
            hint="specs are plain data: remove the tag (write a date or bytes as a string, "
            "a set as a list)",
        )


SpannedLoader.add_constructor("tag:yaml.org,2002:map", SpannedLoader.construct_spanned_map)
SpannedLoader.add_constructor("tag:yaml.org,2002:seq", SpannedLoader.construct_spanned_seq)
SpannedLoader.add_constructor("tag:yaml.org,2002:str", SpannedLoader.construct_spanned_str)
SpannedLoader.add_constructor("tag:yaml.org,2002:int", SpannedLoader.construct_spanned_int)
SpannedLoader.add_constructor("tag:yaml.org,2002:float", SpannedLoader.construct_spanned_float)
for _refused in REFUSED_TAGS:
    SpannedLoader.add_constructor(f"tag:yaml.org,2002:{_refused}", SpannedLoader.construct_refused)
# A date-like scalar stays a string: a spec has no use for timestamps.
SpannedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in BaseLoader.yaml_implicit_resolvers.items()
}


def construct(text: str, file: str) -> Any:
    loader = SpannedLoader(text, file)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def check_size(text: str, file: str) -> None:
    """Walk the event stream before building anything (libyaml's composer recurses in C, so
    depth must be checked before composing)."""
    loader = BaseLoader(text)
    limits = Limits(file)
    try:
        while loader.check_event():
            limits.see(loader.get_event())
    finally:
        loader.dispose()


class Limits:
    """Bounds an event stream as it is read: the nesting depth (aliases included), the alias
    uses and the number of values they stand for; refuses recursive aliases."""

    def __init__(self, file: str) -> None:
        self.file = file
        # [anchor, values, height] per open collection: the values in it so far (aliases
        # expanded) and the most collections nested in it.
        self.open: list[list] = []
        self.anchors: dict[str | None, tuple[int, int]] = {}  # anchor -> (values, height)
        self.aliases = 0
        self.aliased_values = 0

    def see(self, event: yaml.Event | None) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self._add(event.anchor, 1, 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            self._check_depth(1, event, "")
            self.open.append([event.anchor, 1, 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, values, height = self.open.pop()
            self._add(anchor, values, height + 1)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)

    def _alias(self, event: yaml.AliasEvent) -> None:
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise LimitError(
                f"the document uses aliases more than {MAX_ALIASES} times", self._span(event)
            )
        if any(entry[0] == event.anchor for entry in self.open):
            raise LimitError(
                f"alias '*{event.anchor}' refers to a node that contains it",
                self._span(event),
                hint="a spec cannot be a recursive structure",
            )
        values, height = self.anchors.get(event.anchor, (1, 0))
        self._check_depth(height, event, " through its aliases")
        self.aliased_values += values
        if self.aliased_values > MAX_ALIAS_VALUES:
            raise LimitError(
                f"the document's aliases stand for more than {MAX_ALIAS_VALUES} values",
                self._span(event),
                hint="anchors and aliases may share parts of a spec, not multiply them",
            )
        self._add(None, values, height)

    def _check_depth(self, height: int, event: yaml.Event, how: str) -> None:
        if len(self.open) + height > MAX_DEPTH:
            raise LimitError(
                f"the document nests more than {MAX_DEPTH} levels deep{how}", self._span(event)
            )

    def _add(self, anchor: str | None, values: int, height: int) -> None:
        if anchor is not None:
            self.anchors[anchor] = (values, height)
        if self.open:
            top = self.open[-1]
            top[1] += values
            top[2] = max(top[2], height)

    def _span(self, event: yaml.Event) -> Span:
        start: Mark = event.start_mark
        return Span(file=self.file, line=start.line + 1, col=start.column + 1)


def format_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> DSLError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    span = Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)
    message = exc.problem or exc.context or "this is not valid YAML"
    if message == "exceeded maximum nesting depth":
        # libyaml's own limit (newer releases): its scanner, looking ahead for a key in
        # flow collections, can meet it before `Limits` has seen MAX_DEPTH levels.
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
