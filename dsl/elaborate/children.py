"""`self` in a container block's own forward: the container's children, read as a torch
container gives them (dsl.elaborate.container_forward)."""

from __future__ import annotations

from typing import Any

from dsl.elaborate.values import TRAINING, Builtin, Handle
from dsl.errors import EvaluationError, did_you_mean
from dsl.records import record
from dsl.source import Span

# Which children `self` gives when a container's forward iterates it, as torch's container
# does: a ModuleDict its keys, a Sequential or ModuleList its modules.
_ITERATES = {"ModuleDict": "keys", "Sequential": "values", "ModuleList": "values"}
# The methods of `self` that list children, by torch's container kind.
_CHILD_METHODS = {"children": "values", "named_children": "items"}
_DICT_METHODS = {"keys": "keys", "values": "values", "items": "items"}


@record(frozen=True)
class Children:
    """`self` in a container's own forward: its children, read as a torch container's
    (`self[0]`, `self["name"]`, `self.name`, `for layer in self:`, `self.items()`, `len(self)`).
    A build-time value: iterating it unrolls the calls in the generated forward."""

    handle: Handle
    view: str = ""  # "keys", "values" or "items"; "" iterates as the container does

    def _pairs(self) -> list[tuple[str, Handle]]:
        return self.handle.children

    def __iter__(self) -> Any:
        view = self.view or _ITERATES[self.handle.container_kind]
        pick = {"keys": lambda k, c: k, "values": lambda k, c: c, "items": lambda k, c: (k, c)}
        return iter([pick[view](key, child) for key, child in self._pairs()])

    def __len__(self) -> int:
        return len(self._pairs())

    def attribute(self, attr: str, span: Span) -> Any:
        """`self.name` (a child), `self.training`, or one of the methods that list children."""
        methods = {**_CHILD_METHODS, **self._dict_methods()}
        if attr in methods:
            return Builtin(attr, lambda: Children(self.handle, methods[attr]))
        if attr == "training":
            return TRAINING
        if any(key == attr for key, _ in self._pairs()):
            return self.handle.child(attr, span)
        names = [key for key, _ in self._pairs()] + [f"{m}()" for m in methods]
        raise EvaluationError(
            f"self ({self.handle.container_kind}) has no child or method '{attr}'",
            span,
            hint=did_you_mean(attr, names) or f"its children and methods: {', '.join(names)}",
        )

    def _dict_methods(self) -> dict[str, str]:
        return _DICT_METHODS if self.handle.container_kind == "ModuleDict" else {}
