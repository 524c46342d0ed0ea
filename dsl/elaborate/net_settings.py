"""`set()` in an ordinary net or block: changes a member declared earlier, before forward
applies it, so its shapes are inferred with the change.

    body = Bottleneck(64, 16)
    set("body.conv2", dilation=2, padding=2)   # body's conv2 is built as Conv2d(..., dilation=2)
    return body(x)

    set("body.conv1", Conv2d(out_channels=16, kernel_size=5))   # a new layer in its place
    set("stage*.conv2", dilation=2)      # each part of the path may be a pattern (fnmatch)

A setting travels down with the member it names (`body`) and reaches the inner layer when
the block's body declares it; the layer is then constructed with those arguments, as
`m.body.conv2.dilation = 2` after construction would leave it, or the new layer is bound
there instead (built in the old one's place in construction order). A `set()` after the
member is applied would change nothing already inferred, so it is refused.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Protocol

from dsl import ir
from dsl.elaborate.layer_types import constructor_argument
from dsl.elaborate.values import Handle, frozen_key
from dsl.errors import ArgumentError, Note, StructureError, UnknownKeywordError, did_you_mean
from dsl.source import Span


class Frame(Protocol):
    """The body's frame (`dsl.elaborate.evaluate.Frame`, which imports handles, which
    import this module): its names, and build-time values."""

    scope: dict[str, Any]

    def static(self, expr: ir.ExprNode) -> Any: ...

    def eval(self, expr: ir.ExprNode) -> Any: ...


Setting = tuple[list[str], dict[str, Any], Span, Handle | None]


def is_set_call(stmt: Any, frame: Frame) -> bool:
    """`set("path", k=v)` as a statement, `set` not being a name of the body."""
    return (
        isinstance(stmt, ir.Layer)
        and isinstance(stmt.layer, ir.Call)
        and isinstance(stmt.layer.func, ir.Name)
        and stmt.layer.func.id == "set"
        and "set" not in frame.scope
    )


def record(frame: Frame, call: ir.Call) -> None:
    """Attach the setting to the member its path starts with."""
    args = [frame.static(a) for a in call.args[:1]]
    if len(args) != 1 or not isinstance(args[0], str) or len(call.args) + bool(call.kwargs) != 2:
        raise ArgumentError(
            'set() takes a member path and the settings, e.g. set("body.conv1", dilation=2), '
            'or a layer in its place, e.g. set("body.conv1", Conv2d(8, 8, 5, padding=2))',
            call.span,
        )
    replacement = _replacement(frame, call.args[1]) if len(call.args) == 2 else None
    attrs = {k: constructor_argument(frame.static(v), v.span) for k, v in call.kwargs.items()}
    rest = args[0].split(".")[1:]
    if replacement is not None and _is_pattern(args[0]):
        raise ArgumentError(
            f'set("{args[0]}", ...): a new layer takes an exact path (one module has one place)',
            call.span,
            hint="write one set() per place",
        )
    for handle in _members(frame, args[0], call.span):
        _attach(handle, args[0], (rest, attrs, call.span, replacement))


def _is_pattern(path: str) -> bool:
    return any(c in path for c in "*?[")


def _reaches(handle: Handle, rest: list[str]) -> bool:
    """Whether a pattern's match can take the path left: a layer at its end, a block before."""
    return handle.kind == ("block" if rest else "layer")


def _members(frame: Frame, path: str, span: Span) -> list[Handle]:
    head, *rest = path.split(".")
    members = {n: v for n, v in frame.scope.items() if isinstance(v, Handle)}
    if not _is_pattern(head):
        found = [members[head]] if head in members else []
    else:
        found = [h for n, h in members.items() if fnmatchcase(n, head) and _reaches(h, rest)]
    if not found:
        raise ArgumentError(
            f"set(\"{path}\"): no member '{head}' is declared above"
            if not _is_pattern(head)
            else f"set(\"{path}\"): '{head}' matches no {'block' if rest else 'layer'} declared above",
            span,
            hint=did_you_mean(head, list(members)) or "declare the member first, then set() it",
        )
    return found


def _attach(handle: Handle, path: str, setting: Setting) -> None:
    rest, span = setting[0], setting[2]
    if handle.runner is not None:
        first = [Note("it is first applied here", handle.first[3])] if handle.first else []
        raise StructureError(
            f"set(\"{path}\") comes after '{handle.name}' is applied in forward, so it would change nothing already inferred",
            span,
            notes=first,
            hint=f"move set() above the first line that applies '{handle.name}'",
        )
    if setting[3] is not None and not rest:
        raise StructureError(
            f"set(\"{path}\", ...) would replace a member of this body; declare '{path}' as that layer instead",
            span,
        )
    push(handle, setting)


def _replacement(frame: Frame, expr: ir.ExprNode) -> Handle:
    value = frame.eval(expr)
    if not isinstance(value, Handle) or value.name is not None or value.kind != "layer":
        raise ArgumentError(
            "set()'s second argument is a new layer, e.g. Conv2d(8, 8, 5, padding=2)", expr.span
        )
    return value


def push(handle: Handle, setting: Setting) -> None:
    """Give `handle` a setting for the path left (its own arguments when none is left)."""
    rest, attrs, span, _ = setting
    if handle.kind == "layer" and not rest:
        assert handle.layer is not None
        signature = handle.layer.signature
        taken = signature.parameters if signature is not None else {}
        if not any(p.kind is p.VAR_KEYWORD for p in taken.values()):
            for key in attrs:
                if key not in taken:
                    raise UnknownKeywordError(
                        f"{handle.name} ({handle.layer.name}) has no setting '{key}'",
                        span,
                        hint=did_you_mean(key, list(taken)),
                    )
    elif handle.kind != "block" or not rest:
        raise StructureError(
            f"set() reaches a layer, or a layer inside a block; '{handle.name}' is a {handle.kind}"
            + (
                " (give a block's arguments where it is declared)" if handle.kind == "block" else ""
            ),
            span,
        )
    handle.settings.append(setting)


def overridden(handle: Handle, bound: dict[str, Any]) -> dict[str, Any]:
    """A layer's constructor arguments with its settings applied, in order."""
    for _, attrs, _, _ in handle.settings:
        bound = {**bound, **attrs}
    return bound


def key_of(handle: Handle) -> Any:
    """The settings, for the cache of block elaborations."""
    return tuple(
        (tuple(rest), frozen_key(attrs), id(new)) for rest, attrs, _, new in handle.settings
    )


class Inbox:
    """A block body's settings from outside: each handed to the member it names."""

    def __init__(self, settings: list[Setting]) -> None:
        self.settings = settings
        self.used: set[int] = set()

    def deliver(self, name: str, handle: Handle) -> Handle:
        """The member to bind as `name`: `handle`, or the layer a setting puts in its place."""
        for index, (rest, attrs, span, new) in enumerate(self.settings):
            pattern = _is_pattern(rest[0])
            if name == rest[0] or (
                pattern and fnmatchcase(name, rest[0]) and _reaches(handle, rest[1:])
            ):
                self.used.add(index)
                if new is not None and len(rest) == 1:
                    handle = new  # built here, where the layer it replaces is declared
                else:
                    push(handle, (rest[1:], attrs, span, new))
        return handle

    def check(self, members: list[str], block: str) -> None:
        for index, (rest, _, span, _) in enumerate(self.settings):
            if index not in self.used:
                raise ArgumentError(
                    f"set(): block {block} has no member '{rest[0]}'",
                    span,
                    hint=did_you_mean(rest[0], members),
                )
