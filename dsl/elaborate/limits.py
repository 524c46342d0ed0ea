"""Budgets that keep a spec from eating the machine.

Elaboration has a cost model: each statement, each layer and block instantiated, and each
item of a value the evaluator builds (a string's characters, a list's items, counted with
what nested lists hold) spends work units from a budget per spec, about a microsecond of
work each (`WorkBudget`); built strings and tensor shapes have size limits of their own.
Every limit raises a `LimitError` that names it and says how to raise it.

`dsl.validate` never allocates (every module is built on the meta device), so a spec of any
size validates. `build_model` allocates real tensors; before it does, the resolved tree's
size is counted (each layer's count was taken on meta when the resolver built it) and a
model over `max_params` elements is refused with a `LimitError` instead of an out-of-memory
kill. Buffers count too: they take memory just as parameters do.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dsl.errors import LimitError, Note, SizeLimitError, WorkLimitError
from dsl.source import Span

if TYPE_CHECKING:
    from torch import nn

    from dsl.plan import ModuleSpec, Resolved


def _available_memory() -> int | None:
    """Bytes of memory this machine can give now (/proc on Linux, psutil where installed,
    else sysconf); None where nothing says. /proc first: importing psutil costs ~3 ms of
    every start-up."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        import psutil  # type: ignore[import-untyped]

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def default_max_params(available: int | None) -> int:
    """Half the available memory in float32 elements (the other half is for what a model
    is built for), never below a ResNet-152's worth of room; 10**10 where memory is unknown."""
    if available is None:
        return 10**10
    return max(available // 8, 10**8)


DEFAULT_MAX_PARAMS = default_max_params(_available_memory())

# ----------------------------------------------------------------------------- elaboration

MAX_WORK = 30_000_000  # work units (about a microsecond each) one spec may spend elaborating
STATEMENT_COST = 5
LAYER_COST = 500  # a layer instantiated: its arguments bound, its shape rule or meta run
META_RUN_COST = 2000  # a module of a built model run on meta (torch's meta kernels are slow)
BLOCK_COST = 500  # a block instantiated: a frame, a graph, its members' checks
MAX_CALL_DEPTH = 32  # calls of `def` functions inside one another (recursion)
CALL_COST = 50  # a `def` called: its parameters bound, a frame, a body run
TENSOR_ARGUMENT_COST = 5  # a tensor passed to a torch function (cat of 4,000: ~3 us each)
MAX_STRING = 1_000_000  # characters of a string built or written in a spec
MAX_DIM = 2**48  # one dimension of a declared tensor
MAX_NUMEL = 2**60  # elements of a declared (meta) tensor
MAX_PIECES = 65_536  # tensors one split/chunk/unbind may make (~6 KB each while elaborating)
WORK_ENV = "NETDSL_MAX_WORK"


def max_work() -> int:
    """The work budget of one spec: MAX_WORK, or the environment's NETDSL_MAX_WORK."""
    text = os.environ.get(WORK_ENV, "")
    return int(text) if text.isdigit() else MAX_WORK


class WorkBudget:
    """The work one spec's elaboration may do (see the module's docstring)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = max_work() if limit is None else limit
        self.spent = 0
        self._counted: dict[int, int] = {}  # module_count's memo

    def spend(self, units: int, span: Span, what: str) -> None:
        self.spent += units
        if self.spent > self.limit:
            raise WorkLimitError(
                f"elaborating this spec takes more than its work budget of {self.limit:,} units "
                f"(about a microsecond each); the budget ran out at {what}",
                span,
                hint="a loop, a block tree or a built value is far too large; if the spec is "
                f"meant to be this large, set the environment variable {WORK_ENV} to a larger "
                "number",
            )

    def spend_on_value(self, value: Any, span: Span, what: str) -> int:
        """Spend for a value the evaluator built, by its size (nested items included);
        returns the size, counted up to what the budget has left."""
        if not isinstance(value, str | list | tuple | dict):
            return 0
        size = expanded_size(value, self.limit - self.spent + 1)  # a unit per item
        self.spend(size, span, what)
        return size

    def spend_on_copy(self, spec: Any, span: Span, what: str) -> None:
        """Spend for a block instance that reuses an identical one's result: elaborating
        it was free, but building, checking and walking it costs its every module."""
        self.spend(module_count(spec, self._counted) * LAYER_COST, span, what)

    def spend_on_arguments(self, builtin: str, args: list[Any], span: Span) -> None:
        """Before a builtin that walks its arguments in full (`str`, `sum`, `list`, ...):
        spend for them, and refuse a `str()` longer than MAX_STRING before it is built."""
        if builtin in _WALKING_BUILTINS:
            size = self.spend_on_value(args, span, f"{builtin}()")
            if builtin == "str":
                check_string_size(size, span, "the result of str()")


_WALKING_BUILTINS = frozenset(
    {"str", "sum", "list", "tuple", "zip", "enumerate", "min", "max", "sorted"}
)


def expanded_size(value: Any, limit: int) -> int:
    """How many items `value` holds, nested sequences counted in full (stops past `limit`):
    `[s] * n` is small in memory but `sum(..., [])` or `str()` would expand it."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, list | tuple | dict):
            total += len(item)
            stack.extend(item.values() if isinstance(item, dict) else item)
    return total


def check_string_size(size: int, span: Span, what: str) -> None:
    """Refuse a string of more than MAX_STRING characters (`size`: its length, or for
    `str()` of a list, the items it would spell out)."""
    if size > MAX_STRING:
        raise SizeLimitError(
            f"{what} would be over {size:,} characters long; the limit is {MAX_STRING:,} "
            "(MAX_STRING)",
            span,
            hint="strings in a spec name things; build long data outside the spec "
            "(dsl.elaborate.limits.MAX_STRING is the limit)",
        )


def check_dims(dims: list[int], span: Span, what: str) -> None:
    """Refuse a declared shape that no tensor, even on the meta device, can have."""
    numel = 1
    for size in dims:
        numel *= size
        if size > MAX_DIM or numel > MAX_NUMEL:
            raise SizeLimitError(
                f"{what} of shape {dims} is too large: dimensions are limited to {MAX_DIM:,} "
                f"and tensors to {MAX_NUMEL:,} elements",
                span,
                hint="check the sizes; a symbolic size (B, H) takes its value from sizes=",
            )


# How each splitting op's first argument counts its pieces: a piece size, a count, or none
# (unbind: one piece per index of `dim`).
_SPLITTING = {
    **dict.fromkeys(("split", "unsafe_split"), "size"),
    **dict.fromkeys(
        ("chunk", "unsafe_chunk", "tensor_split", "hsplit", "vsplit", "dsplit"), "count"
    ),
    "unbind": "dim",
}


def check_pieces(
    name: str, tensor: Any, rest: Sequence[Any], kwargs: dict[str, Any], span: Span
) -> None:
    """Refuse a split of `tensor` (`rest`: the other arguments) into more than MAX_PIECES
    tensors before torch makes them: `x.split(1, dim=1)` of a [B, 10**9] tensor would be a
    billion meta tensors and graph values. Arguments torch would refuse are left to torch."""
    how = _SPLITTING.get(name)
    if how is None or not hasattr(tensor, "shape"):
        return
    given = [*rest, *kwargs.values()]
    first = given[0] if given else 0
    dim = (rest[1] if len(rest) > 1 else kwargs.get("dim", 0)) if how != "dim" else first
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (first, dim)):
        return
    if not -tensor.dim() <= dim < max(tensor.dim(), 1):
        return
    size = tensor.shape[dim] if tensor.dim() else 1
    pieces = {"dim": size, "count": first, "size": math.ceil(size / first) if first > 0 else 0}
    if pieces[how] > MAX_PIECES:
        raise SizeLimitError(
            f"{name}() would make {pieces[how]:,} tensors; the limit is {MAX_PIECES:,} "
            "(MAX_PIECES)",
            span,
            hint="split into fewer, larger pieces, or keep the tensor whole and index it "
            "(dsl.elaborate.limits.MAX_PIECES is the limit)",
        )


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
    """(parameter, buffer) elements `spec` itself allocates; its parts go on `stack`."""
    from dsl.plan import LeafSpec, TensorSpec
    from dsl.torchlib import shapes

    if isinstance(spec, LeafSpec):
        if spec.numel is None:
            spec.numel = module_numel(shapes.construct_on_meta(spec.layer, spec.kwargs, spec.span))
        return spec.numel
    if isinstance(spec, TensorSpec):
        numel = 1
        for size in spec.shape:
            numel *= size
        return (numel, 0) if spec.kind == "param" else (0, numel)
    stack.extend(_parts(spec))
    return 0, 0


def _parts(spec: Any) -> list[Any]:
    """The specs that building `spec` builds too (an alias builds nothing new)."""
    from dsl.plan import ContainerSpec, DerivedSpec, GraphSpec, ReplaceOp, SourceSpec

    if isinstance(spec, ContainerSpec):
        return [child for _, child in spec.children]
    if isinstance(spec, GraphSpec):
        return [member for _, member in spec.members]
    if isinstance(spec, DerivedSpec):
        # The base is built, then replaced members are built: both are allocated.
        return [spec.base, *(op.spec for op in spec.ops if isinstance(op, ReplaceOp))]
    if isinstance(spec, SourceSpec):
        return [spec.spec]  # built whole; its parts (PartSpec) are references into it
    return []


def module_count(spec: Any, memo: dict[int, int]) -> int:
    """How many specs building `spec` builds, shared sub-trees counted each time they are
    used (`memo`, by id, makes that linear in the distinct specs, which must stay alive)."""
    found = memo.get(id(spec))
    if found is None:
        found = memo[id(spec)] = 1 + sum(module_count(part, memo) for part in _parts(spec))
    return found


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
