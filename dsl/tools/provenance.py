"""`dsl resolve`: the fully expanded network, and where each constructor argument came from.

Every module is listed with its final constructor arguments, each one marked as written in
the spec, torch's default, changed by `--set`, or inferred from the input's shape. "Changed
by --set" is found by resolving the spec a second time without the overrides and comparing
value by value, so a `--set` that reaches a layer through block arguments is seen too.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dsl.build.resolve import resolve
from dsl.errors import DSLError
from dsl.plan import (
    AliasSpec,
    ContainerSpec,
    DerivedSpec,
    GraphSpec,
    LeafSpec,
    ModuleSpec,
    ReplaceOp,
    Resolved,
    TensorSpec,
)

SPEC, DEFAULT, SET, INFERRED = "spec", "default", "--set", "inferred"


@dataclass
class Arg:
    name: str
    value: str
    origin: str  # spec, default, --set, inferred


@dataclass
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


def _leaves(
    spec: ModuleSpec, prefix: str = "", out: dict[str, ModuleSpec] | None = None
) -> dict[str, ModuleSpec]:
    out = {} if out is None else out
    out[prefix] = spec
    if isinstance(spec, ContainerSpec):
        for name, child in spec.children:
            _leaves(child, f"{prefix}.{name}" if prefix else name, out)
    elif isinstance(spec, GraphSpec):
        for name, member in spec.members:
            if isinstance(member, LeafSpec | ContainerSpec | GraphSpec):
                _leaves(member, f"{prefix}.{name}" if prefix else name, out)
    return out


def _where(span: Any) -> str:
    return f"{Path(span.file).name}:{span.line}" if span else ""


def explain(
    path: str | Path, *, net: str | None = None, overrides: dict[str, Any] | None = None
) -> tuple[Resolved, list[Entry]]:
    overrides = overrides or {}
    resolved = resolve(path, net=net, params=overrides)
    baseline: dict[str, ModuleSpec] = {}
    if overrides:
        try:
            baseline = _leaves(resolve(path, net=net).root)
        except DSLError:
            baseline = {}
    entries = [
        Entry(
            resolved.name,
            0,
            "net",
            resolved.name,
            _where(resolved.root.span),
            net_params(path, net, overrides),
        )
    ]

    def leaf_args(name: str, spec: LeafSpec) -> list[Arg]:
        before = baseline.get(name)
        args = []
        order = {n: i for i, n in enumerate(spec.layer.keyword_names)}
        for key in sorted(
            spec.kwargs, key=lambda k: order.get(k, -1 if k.isdigit() else len(order))
        ):
            value = spec.kwargs[key]
            origin = INFERRED if key in spec.inferred else SPEC
            if overrides and (
                not isinstance(before, LeafSpec)
                or repr(before.kwargs.get(key, _MISSING)) != repr(value)
            ):
                origin = f"{origin}, {SET}" if origin == INFERRED else SET
            args.append(Arg(key, repr(value), origin))
        signature = spec.layer.signature
        if signature is not None:
            for p in signature.parameters.values():
                if (
                    p.name in spec.kwargs
                    or p.default is inspect.Parameter.empty
                    or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                ):
                    continue
                if p.name in ("device", "dtype") and p.default is None:
                    continue
                args.append(Arg(p.name, repr(p.default), DEFAULT))
        return args

    def walk(spec: ModuleSpec, name: str, depth: int) -> None:
        if isinstance(spec, LeafSpec):
            entries.append(
                Entry(
                    name, depth, "layer", spec.layer.name, _where(spec.span), leaf_args(name, spec)
                )
            )
        elif isinstance(spec, ContainerSpec):
            entries.append(Entry(name, depth, "container", spec.kind, _where(spec.span)))
            for child_name, child in spec.children:
                walk(child, f"{name}.{child_name}" if name else child_name, depth + 1)
        elif isinstance(spec, DerivedSpec):
            base = (
                spec.base.layer.name
                if isinstance(spec.base, LeafSpec)
                else type(spec.base).__name__
            )
            entries.append(
                Entry(
                    name,
                    depth,
                    "derived",
                    base,
                    _where(spec.span),
                    note=f"derived from {base}, with {len(spec.ops)} change(s)",
                )
            )
            walk(spec.base, name, depth + 1)
            for op in spec.ops:
                if isinstance(op, ReplaceOp):
                    walk(op.spec, f"{name}.{op.path}" if name else op.path, depth + 1)
        elif not isinstance(spec, GraphSpec):
            entries.append(
                Entry(
                    name,
                    depth,
                    "container",
                    type(spec).__name__,
                    _where(getattr(spec, "span", None)),
                )
            )
        else:
            if depth:
                entries.append(Entry(name, depth, "block", spec.class_name, _where(spec.span)))
            for member_name, member in spec.members:
                qualified = f"{name}.{member_name}" if name else member_name
                if isinstance(member, AliasSpec):
                    entries.append(
                        Entry(
                            qualified,
                            depth + 1,
                            "alias",
                            "",
                            _where(member.span),
                            note=f"the same module as {member.target}",
                        )
                    )
                elif isinstance(member, TensorSpec):
                    init = (
                        f"{member.init.name}({', '.join([*map(repr, member.init.args), *(f'{k}={v!r}' for k, v in member.init.kwargs.items())])})"
                        if member.init
                        else "zeros()"
                    )
                    dtype = str(member.dtype).removeprefix("torch.")
                    entries.append(
                        Entry(
                            qualified,
                            depth + 1,
                            member.kind,
                            dtype,
                            _where(member.span),
                            note=f"[{', '.join(map(str, member.shape))}] = {init}",
                        )
                    )
                else:
                    walk(member, qualified, depth + 1)

    if isinstance(resolved.root, GraphSpec):
        walk(resolved.root, "", 0)
    elif isinstance(resolved.root, DerivedSpec):
        walk(resolved.root, "", 1)
    else:
        for child_name, child in resolved.root.children:
            walk(child, child_name, 1)
    return resolved, entries


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
