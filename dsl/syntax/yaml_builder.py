"""Reading a YAML document in one pass over its events, and the full loader for the YAML
that this one pass leaves to it."""

from __future__ import annotations

from typing import Any

import yaml

from dsl.errors import YAMLFormatError
from dsl.source import NO_SPAN, Span
from dsl.syntax.yaml_loader import (
    Limits,
    Mark,
    SpannedLoader,
    check_size,
    construct,
    format_error,
)
from dsl.syntax.yaml_values import SpannedList, Str


def load(text: str, file: str) -> Any:
    try:
        try:
            return build(text, file)
        except (Unsupported, yaml.YAMLError, ValueError):
            # The full loader reads what the builder leaves to it, and reports every mistake
            # (the builder's limit errors are the ones `check_size` would raise first).
            check_size(text, file)
            return construct(text, file)
    except yaml.MarkedYAMLError as exc:
        raise format_error(exc, text, file) from None
    except (yaml.YAMLError, ValueError) as exc:  # a reader error, or a bad date in a timestamp
        raise YAMLFormatError(
            f"this is not valid YAML: {exc}", Span(file=file, line=1, col=1)
        ) from None


class Unsupported(Exception):
    """YAML that the builder leaves to the full loader: tags, merge keys, duplicate keys or
    anchors, keys that are not scalars, several documents."""


_STR = "tag:yaml.org,2002:str"
_OTHER_SCALARS = {f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool", "null")}
_NO_KEY = object()


def build(text: str, file: str) -> Any:
    """What `check_size` then `construct` give, in one pass over the events: each value is
    made as its event arrives, with the limits checked as they go. Composing a node graph and
    then constructing from it cost several times what reading the events does."""
    loader = SpannedLoader(text, file)
    try:
        return _Builder(loader).run()
    finally:
        loader.dispose()


class _Open:
    """A collection being built, with (for a mapping) the key waiting for its value."""

    __slots__ = ("key", "keys", "start", "value")

    def __init__(self, value: dict | SpannedList, start: yaml.CollectionStartEvent) -> None:
        self.value = value
        self.start = start
        self.key: Any = _NO_KEY
        self.keys: set[str] = set()  # the keys as written, as `_check_duplicate_keys` compares them


class _Builder:
    def __init__(self, loader: SpannedLoader) -> None:
        self.loader = loader
        self.limits = Limits(loader.file)
        self.open: list[_Open] = []
        self.anchors: dict[str, Any] = {}
        self.documents = 0
        self.root: Any = None

    def run(self) -> Any:
        loader, see = self.loader, self.limits.see
        while loader.check_event():
            event = loader.get_event()
            see(event)
            if isinstance(event, yaml.ScalarEvent):
                self._add(self._scalar(event), event.value)
            elif isinstance(event, yaml.CollectionStartEvent):
                self._start(event)
            elif isinstance(event, yaml.CollectionEndEvent):
                self._end(event)
            elif isinstance(event, yaml.AliasEvent):
                self._add(self._alias(event), None)
            elif isinstance(event, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise Unsupported
        return self.root

    def _scalar(self, event: yaml.ScalarEvent) -> Any:
        if event.tag not in (None, "!"):
            raise Unsupported
        loader = self.loader
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR:
            value = Str(
                event.value,
                loader.span_at(event.start_mark, event.end_mark, event.style in ('"', "'")),
            )
        elif tag in _OTHER_SCALARS:
            start: Mark = event.start_mark
            end: Mark = event.end_mark
            node = yaml.ScalarNode(tag, event.value, start, end, event.style)
            value = loader.yaml_constructors[tag](loader, node)
        else:
            raise Unsupported
        self._define(event.anchor, value)
        return value

    def _start(self, event: yaml.CollectionStartEvent) -> None:
        if event.tag not in (None, "!"):
            raise Unsupported
        self.open.append(
            _Open({} if type(event) is yaml.MappingStartEvent else SpannedList(NO_SPAN), event)
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
            raise Unsupported
        return self.anchors[event.anchor]

    def _define(self, anchor: str | None, value: Any) -> None:
        if anchor is not None:
            if anchor in self.anchors:
                raise Unsupported
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
            raise Unsupported
        else:
            top.keys.add(written)
            top.key = value
