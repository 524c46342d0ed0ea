"""Budgets that keep a spec from eating the machine.

`dsl.validate` never allocates (every module is built on the meta device), so a spec of any
size validates. `build_model` allocates real tensors; before it does, the resolved tree's
size is counted (each layer's count was taken on meta when the resolver built it) and a
model over `max_params` elements is refused with a `LimitError` instead of an out-of-memory
kill. Buffers count too: they take memory just as parameters do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dsl.errors import LimitError, Note

if TYPE_CHECKING:
    from torch import nn

    from dsl.plan import ModuleSpec, Resolved

DEFAULT_MAX_PARAMS = 10**10  # 40 GB of float32: generous, but far below absurd


def module_numel(module: nn.Module) -> tuple[int, int]:
    """(parameter elements, buffer elements) of a module; shared tensors count once."""
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    return params, buffers


def count(resolved: Resolved | ModuleSpec) -> tuple[int, int]:
    """(parameter elements, buffer elements) that compiling the resolved tree allocates."""
    params, buffers, _ = _count(resolved)
    return params, buffers


def _count(resolved: Resolved | ModuleSpec) -> tuple[int, int, tuple[int, Any]]:
    from dsl.plan import Resolved

    root = resolved.root if isinstance(resolved, Resolved) else resolved
    params = buffers = 0
    largest: tuple[int, Any] = (0, None)
    stack: list[Any] = [root]
    while stack:
        spec = stack.pop()
        p, b = _own(spec, stack)
        params += p
        buffers += b
        if p + b > largest[0]:
            largest = (p + b, spec)
    return params, buffers, largest


def _own(spec: Any, stack: list[Any]) -> tuple[int, int]:
    from dsl.plan import (
        AliasSpec,
        ContainerSpec,
        DerivedSpec,
        GraphSpec,
        LeafSpec,
        ReplaceOp,
        SourceSpec,
        TensorSpec,
    )
    from dsl.torchlib import shapes

    if isinstance(spec, LeafSpec):
        if spec.numel is None:
            spec.numel = module_numel(shapes.construct_on_meta(spec.layer, spec.kwargs, spec.span))
        return spec.numel
    if isinstance(spec, ContainerSpec):
        stack.extend(child for _, child in spec.children)
    elif isinstance(spec, GraphSpec):
        stack.extend(member for _, member in spec.members)
    elif isinstance(spec, TensorSpec):
        numel = 1
        for size in spec.shape:
            numel *= size
        return (numel, 0) if spec.kind == "param" else (0, numel)
    elif isinstance(spec, DerivedSpec):
        # The base is built, then replaced members are built: both are allocated.
        stack.append(spec.base)
        stack.extend(op.spec for op in spec.ops if isinstance(op, ReplaceOp))
    elif isinstance(spec, SourceSpec):
        stack.append(spec.spec)  # built whole; its parts (PartSpec) are references into it
    elif isinstance(spec, AliasSpec):
        pass  # the same module again: nothing new is allocated
    return 0, 0


def check_params(resolved: Resolved, max_params: int | None) -> None:
    """Refuse a build that would allocate more than `max_params` elements (None: no limit)."""
    if max_params is None:
        return
    params, buffers, (biggest, where) = _count(resolved)
    total = params + buffers
    if total <= max_params:
        return
    what = f"{_human(params)} parameters" + (
        f" and {_human(buffers)} buffer elements" if buffers else ""
    )
    notes = (
        [Note(f"the largest single part has {_human(biggest)} elements", where.span)]
        if where is not None and where.span
        else []
    )
    raise LimitError(
        f"{resolved.name} has {what}; the limit is {max_params:,} (max_params)",
        resolved.root.span,
        notes=notes,
        hint="check the sizes in the spec; to build it anyway pass build_model(..., max_params=N) with a "
        "larger N (or None), or build it on device='meta' and materialise it shard by shard",
    )


def _human(n: int) -> str:
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            return f"{n:,} ({n / scale:.1f}{unit})"
    return f"{n:,}"
