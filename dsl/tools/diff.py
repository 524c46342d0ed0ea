"""`dsl diff a.net b.net`: what changed between two architectures.

Both specs are compiled on the meta device (no weights allocated) and compared by module
name: modules added, removed, retyped or reshaped, the parameter delta, and what loading a
checkpoint of `a` into `b` would report (missing, unexpected and shape-mismatched keys).
"""

from __future__ import annotations

import json
from typing import Any

from torch import nn

from dsl.plan import Resolved
from dsl.records import asdict, field, record


@record
class ModuleChange:
    name: str
    a: str  # "Conv2d(in_channels=3, out_channels=64)" style description, "" if absent
    b: str


@record
class Diff:
    a: str
    b: str
    added: list[ModuleChange] = field(default_factory=list)
    removed: list[ModuleChange] = field(default_factory=list)
    changed: list[ModuleChange] = field(
        default_factory=list
    )  # another type, or other tensor shapes
    params_a: int = 0
    params_b: int = 0
    missing_keys: list[str] = field(default_factory=list)  # in b, not in a's checkpoint
    unexpected_keys: list[str] = field(default_factory=list)  # in a's checkpoint, not in b
    mismatched_keys: list[tuple[str, list[int], list[int]]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.missing_keys
            or self.unexpected_keys
            or self.mismatched_keys
        )

    @property
    def loads(self) -> bool:
        return not (self.missing_keys or self.unexpected_keys or self.mismatched_keys)

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "params_delta": self.params_b - self.params_a,
            "checkpoint_loads": self.loads,
        }


def _describe(module: nn.Module) -> str:
    shapes = ", ".join(
        f"{n}: [{', '.join(map(str, t.shape))}]"
        for n, t in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    )
    return f"{type(module).__name__}" + (f" ({shapes})" if shapes else "")


def _modules(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules(remove_duplicate=False) if name}


def compare(a: Resolved, b: Resolved, a_name: str = "a", b_name: str = "b") -> Diff:
    from dsl.tools.measure import meta_model

    model_a, model_b = meta_model(a), meta_model(b)
    out = Diff(a_name, b_name)
    out.params_a = sum(p.numel() for p in model_a.parameters())
    out.params_b = sum(p.numel() for p in model_b.parameters())
    mods_a, mods_b = _modules(model_a), _modules(model_b)
    for name, module in mods_b.items():
        if name not in mods_a:
            out.added.append(ModuleChange(name, "", _describe(module)))
    for name, module in mods_a.items():
        if name not in mods_b:
            out.removed.append(ModuleChange(name, _describe(module), ""))
        elif _describe(module) != _describe(mods_b[name]):
            out.changed.append(ModuleChange(name, _describe(module), _describe(mods_b[name])))
    # Hide the children of an added/removed module: the parent line says it.
    out.added = _outermost(out.added)
    out.removed = _outermost(out.removed)
    state_a = {k: list(v.shape) for k, v in model_a.state_dict().items()}
    state_b = {k: list(v.shape) for k, v in model_b.state_dict().items()}
    out.missing_keys = [k for k in state_b if k not in state_a]
    out.unexpected_keys = [k for k in state_a if k not in state_b]
    out.mismatched_keys = [
        (k, state_a[k], state_b[k]) for k in state_a if k in state_b and state_a[k] != state_b[k]
    ]
    return out


def _outermost(changes: list[ModuleChange]) -> list[ModuleChange]:
    names = {c.name for c in changes}
    return [c for c in changes if not any(c.name.startswith(p + ".") for p in names if p != c.name)]


def render(diff: Diff, *, color: bool = False) -> str:
    green = (lambda s: f"\x1b[32m{s}\x1b[0m") if color else (lambda s: s)
    red = (lambda s: f"\x1b[31m{s}\x1b[0m") if color else (lambda s: s)
    yellow = (lambda s: f"\x1b[33m{s}\x1b[0m") if color else (lambda s: s)
    lines = [f"--- {diff.a}", f"+++ {diff.b}"]
    if diff.same:
        lines.append(
            "the two networks have the same modules and the same checkpoint keys and shapes"
        )
        return "\n".join(lines)
    if diff.removed or diff.added or diff.changed:
        lines.append("modules:")
        lines += [red(f"  - {c.name}: {c.a}") for c in diff.removed]
        lines += [green(f"  + {c.name}: {c.b}") for c in diff.added]
        for c in diff.changed:
            lines.append(yellow(f"  ~ {c.name}: {c.a}  ->  {c.b}"))
    delta = diff.params_b - diff.params_a
    lines.append(
        f"parameters: {diff.params_a:,} -> {diff.params_b:,} ({'+' if delta >= 0 else ''}{delta:,})"
    )
    if diff.loads:
        lines.append(f"checkpoint: a state_dict of {diff.a} loads into {diff.b} with strict=True")
    else:
        lines.append(
            f"checkpoint: a state_dict of {diff.a} would not load into {diff.b} with strict=True:"
        )
        if diff.missing_keys:
            lines.append(
                f"  missing keys ({len(diff.missing_keys)}): " + ", ".join(diff.missing_keys)
            )
        if diff.unexpected_keys:
            lines.append(
                f"  unexpected keys ({len(diff.unexpected_keys)}): "
                + ", ".join(diff.unexpected_keys)
            )
        for key, sa, sb in diff.mismatched_keys:
            lines.append(f"  size mismatch: {key}: {sa} in {diff.a}, {sb} in {diff.b}")
    return "\n".join(lines)


def render_json(diff: Diff) -> str:
    return json.dumps(diff.to_json(), indent=2)
