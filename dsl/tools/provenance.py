"""`dsl resolve`: the fully expanded network, and where each constructor argument came from.

Every module is listed with its final constructor arguments, each one marked as written in
the spec, torch's default, changed by `--set`, or inferred from the input's shape. "Changed
by --set" is found by resolving the spec a second time without the overrides and comparing
value by value, so a `--set` that reaches a layer through block arguments is seen too.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dsl.build.resolve import resolve
from dsl.errors import DSLError
from dsl.plan import (
    AliasSpec,
    ComputedTensor,
    ContainerSpec,
    DerivedSpec,
    GraphSpec,
    LeafSpec,
    ModuleSpec,
    Node,
    ReplaceOp,
    Resolved,
    SourceSpec,
    TensorSpec,
    iter_modules,
)
from dsl.records import asdict, field, record
from dsl.tools.python_text import python_text

SPEC, DEFAULT, SET, INFERRED = "spec", "default", "--set", "inferred"


@record
class Arg:
    name: str
    value: str
    origin: str  # spec, default, --set, inferred


@record
class Entry:
    name: str
    depth: int
    kind: str  # net, layer, block, container, param, buffer, alias
    type: str
    where: str
    args: list[Arg] = field(default_factory=list)
    note: str = ""


def net_params(path: str | Path, net: str | None, overrides: dict[str, Any]) -> list[Arg]:
    """The net's parameters with their values, as defaults or `--set`."""
    from dsl.elaborate.resolve import bound_params, pick_net
    from dsl.syntax.loader import Library, load

    spec_file, file_path = load(path)
    library = Library(file_path.parent if file_path else Path.cwd())
    unit = library.unit(spec_file, file_path)
    node = pick_net(spec_file, net)
    scope = bound_params(library, unit, node, overrides)
    return [
        Arg(p.name, repr(scope[p.name]), SET if p.name in overrides else DEFAULT)
        for p in node.params
    ]


def _baseline(path: str | Path, net: str | None) -> dict[str, Node]:
    """Every module of the net as resolved without `--set`, by qualified name."""
    try:
        return dict(iter_modules(resolve(path, net=net).root))
    except DSLError:
        return {}


def _where(span: Any) -> str:
    return f"{Path(span.file).name}:{span.line}" if span else ""


def explain(
    path: str | Path, *, net: str | None = None, overrides: dict[str, Any] | None = None
) -> tuple[Resolved, list[Entry]]:
    overrides = overrides or {}
    resolved = resolve(path, net=net, params=overrides)
    lister = _Lister(_baseline(path, net) if overrides else {}, bool(overrides))
    root = resolved.root
    lister.entries.append(
        Entry(
            resolved.name,
            0,
            "net",
            resolved.name,
            _where(root.span),
            net_params(path, net, overrides),
        )
    )
    if isinstance(root, GraphSpec):
        lister.walk(root, "", 0)
    elif isinstance(root, DerivedSpec):
        lister.walk(root, "", 1)
    elif isinstance(root, ContainerSpec):
        for child_name, child in root.children:
            lister.walk(child, child_name, 1)
    else:
        lister.walk(root, "", 1)
    return resolved, lister.entries


class _Lister:
    """The entries of a resolved tree, in the order and nesting `render` shows them."""

    def __init__(self, baseline: dict[str, Node], overridden: bool) -> None:
        self.baseline = baseline
        self.overridden = overridden
        self.entries: list[Entry] = []

    def walk(self, spec: ModuleSpec | SourceSpec, name: str, depth: int) -> None:
        kind = _KINDS.get(type(spec))
        if kind is None:  # a part of a `parts(...)` source
            self.add(name, depth, "container", type(spec).__name__, spec.span)
        else:
            kind(self, spec, name, depth)

    def add(self, name: str, depth: int, kind: str, type_: str, span: Any, **more: Any) -> None:
        self.entries.append(Entry(name, depth, kind, type_, _where(span), **more))

    def leaf(self, spec: LeafSpec, name: str, depth: int) -> None:
        args = self.written_args(name, spec) + _default_args(spec)
        self.add(name, depth, "layer", spec.layer.name, spec.span, args=args)

    def written_args(self, name: str, spec: LeafSpec) -> list[Arg]:
        before = self.baseline.get(name)
        order = {n: i for i, n in enumerate(spec.layer.keyword_names)}
        args = []
        for key in sorted(
            spec.kwargs, key=lambda k: order.get(k, -1 if k.isdigit() else len(order))
        ):
            value = spec.kwargs[key]
            origin = INFERRED if key in spec.inferred else SPEC
            if self.overridden and (
                not isinstance(before, LeafSpec)
                or repr(before.kwargs.get(key, _MISSING)) != repr(value)
            ):
                origin = f"{origin}, {SET}" if origin == INFERRED else SET
            args.append(Arg(key, python_text(value), origin))
        return args

    def container(self, spec: ContainerSpec, name: str, depth: int) -> None:
        self.add(name, depth, "container", spec.kind, spec.span)
        for child_name, child in spec.children:
            self.walk(child, f"{name}.{child_name}" if name else child_name, depth + 1)

    def derived(self, spec: DerivedSpec, name: str, depth: int) -> None:
        base = spec.base.layer.name if isinstance(spec.base, LeafSpec) else type(spec.base).__name__
        note = f"derived from {base}, with {len(spec.ops)} change(s)"
        self.add(name, depth, "derived", base, spec.span, note=note)
        self.walk(spec.base, name, depth + 1)
        for op in spec.ops:
            if isinstance(op, ReplaceOp):
                self.walk(op.spec, f"{name}.{op.path}" if name else op.path, depth + 1)

    def graph(self, spec: GraphSpec, name: str, depth: int) -> None:
        if depth:
            self.add(name, depth, "block", spec.class_name, spec.span)
        for member_name, member in spec.members:
            qualified = f"{name}.{member_name}" if name else member_name
            if isinstance(member, AliasSpec):
                note = f"the same module as {member.target}"
                self.add(qualified, depth + 1, "alias", "", member.span, note=note)
            elif isinstance(member, TensorSpec):
                self.tensor(member, qualified, depth + 1)
            else:
                self.walk(member, qualified, depth + 1)

    def tensor(self, spec: TensorSpec, name: str, depth: int) -> None:
        init = (
            spec.init.text
            if isinstance(spec.init, ComputedTensor)
            else f"{spec.init.name}({', '.join([*map(repr, spec.init.args), *(f'{k}={v!r}' for k, v in spec.init.kwargs.items())])})"
            if spec.init
            else "zeros()"
        )
        note = f"[{', '.join(map(str, spec.shape))}] = {init}"
        dtype = str(spec.dtype).removeprefix("torch.")
        self.add(name, depth, spec.kind, dtype, spec.span, note=note)


_KINDS: dict[type, Callable[[_Lister, Any, str, int], None]] = {
    LeafSpec: _Lister.leaf,
    ContainerSpec: _Lister.container,
    DerivedSpec: _Lister.derived,
    GraphSpec: _Lister.graph,
}


def _default_args(spec: LeafSpec) -> list[Arg]:
    """The constructor's keyword defaults the spec leaves as torch has them."""
    signature = spec.layer.signature
    if signature is None:
        return []
    return [
        Arg(p.name, python_text(p.default), DEFAULT)
        for p in signature.parameters.values()
        if p.name not in spec.kwargs
        and p.default is not inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and not (p.name in ("device", "dtype") and p.default is None)
    ]


_MISSING = object()

_COLORS = {INFERRED: "36", SET: "33", f"{INFERRED}, {SET}": "33", DEFAULT: "2"}


def render(entries: list[Entry], *, color: bool = False, defaults: bool = True) -> str:
    def paint(text: str, code: str | None) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color and code else text

    def arg_text(arg: Arg) -> str:
        text = f"{arg.name}={arg.value}"
        if arg.origin in (SPEC, DEFAULT):
            return paint(text, _COLORS.get(arg.origin))
        return paint(f"{text} [{arg.origin}]", _COLORS.get(arg.origin))

    lines = []
    for entry in entries:
        indent = "  " * max(entry.depth - 1, 0)
        label = entry.name.rsplit(".", 1)[-1] or "base"
        where = paint(f"  # {entry.where}", "2") if entry.where else ""
        if entry.kind == "net":
            params = ", ".join(
                f"{a.name}={a.value}" + (f" [{a.origin}]" if a.origin == SET else "")
                for a in entry.args
            )
            lines.append(paint(f"net {entry.type}({params})", "1") + where)
        elif entry.kind == "layer":
            written = [arg_text(a) for a in entry.args if a.origin != DEFAULT]
            default = [arg_text(a) for a in entry.args if a.origin == DEFAULT] if defaults else []
            text = ", ".join(written)
            if default:
                text += ("; " if written else "") + paint("defaults: ", "2") + ", ".join(default)
            lines.append(f"{indent}{label}: {entry.type}({text})" + where)
        elif entry.kind == "derived":
            lines.append(f"{indent}{entry.note}" + where)
        elif entry.kind in ("block", "container"):
            lines.append(f"{indent}{label}: {entry.type}" + where)
        elif entry.kind == "alias":
            lines.append(f"{indent}{label}: {entry.note}" + where)
        else:
            lines.append(f"{indent}{entry.kind} {label}: {entry.type}{entry.note}" + where)
    lines.append("")
    lines.append(
        "[inferred]: read from the input's shape; [--set]: changed by --set; defaults: torch's own, not written in the spec"
    )
    return "\n".join(lines)


def render_json(entries: list[Entry]) -> str:
    return json.dumps([asdict(e) for e in entries], indent=2)
