"""No build-time decision on a symbolic size (docs/language.md, "Decisions on sizes").

A size read from a shape is a `Dim`: a plain int while the model is built. A decision that
reads one (a comparison, a condition, a builtin such as `range`, an index into a list) is
noted with what it saw. When a spec decided anything on sizes, it is elaborated a second
time with every symbolic size doubled: a decision that saw something else the second time
read a symbolic size. Such a model would keep the representative size's answer for every
input, so the spec is refused at the decision, naming the dimension.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any, NamedTuple

from dsl.elaborate.values import Dim, ShapeView
from dsl.errors import DSLError, SymbolicDecisionError
from dsl.source import Span

# Builtins whose answer depends on a shape's rank only, never on its sizes.
RANK_ONLY_BUILTINS = frozenset({"len"})


class Decision(NamedTuple):
    span: Span
    seen: Any


_LOG: ContextVar[list[Decision] | None] = ContextVar("size_decisions", default=None)


def reads_size(*values: Any) -> bool:
    """Whether any of `values` (nested in lists, tuples and dicts) is a size read from a shape."""
    for value in values:
        if isinstance(value, Dim | ShapeView):
            return True
        if isinstance(value, list | tuple) and reads_size(*value):
            return True
        if isinstance(value, dict) and reads_size(*value.values()):
            return True
    return False


def note(span: Span, seen: Any) -> None:
    """Record a decision that read a size (a no-op outside `recording`)."""
    log = _LOG.get()
    if log is not None:
        log.append(Decision(span, seen))


def current() -> list[Decision] | None:
    """The decisions noted so far by the `recording` in force (None outside one)."""
    return _LOG.get()


@contextmanager
def recording() -> Iterator[list[Decision]]:
    log: list[Decision] = []
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)


Elaborate = Callable[[dict[str, int]], object]


def refuse_symbolic_decisions(
    elaborate: Elaborate, sizes: dict[str, int], decisions: list[Decision]
) -> None:
    """Elaborate again with every symbolic size doubled and refuse the first decision that saw
    something else. `elaborate(sizes)` runs the pass with those representative sizes."""
    if not decisions or not sizes:
        return
    index = _first_difference(decisions, _decisions_at(elaborate, _doubled(sizes, sizes)))
    if index is None:
        return
    names = [
        name
        for name in sizes
        if _first_difference(decisions, _decisions_at(elaborate, _doubled(sizes, [name]))) == index
    ] or list(sizes)
    raise _refusal(decisions[index].span, names, sizes)


def _doubled(sizes: dict[str, int], names: Any) -> dict[str, int]:
    return {name: value * 2 if name in names else value for name, value in sizes.items()}


def _decisions_at(elaborate: Elaborate, sizes: dict[str, int]) -> list[Decision]:
    """The decisions of a run at `sizes`, up to where it failed if it did (a size the net
    cannot take is not this check's business: the decisions before it still count)."""
    with recording() as log, suppress(DSLError):
        elaborate(sizes)
    return log


def _first_difference(first: list[Decision], second: list[Decision]) -> int | None:
    for index, (a, b) in enumerate(zip(first, second)):
        if a.span != b.span or a.seen != b.seen:
            return index
    return None


def _refusal(span: Span, names: list[str], sizes: dict[str, int]) -> SymbolicDecisionError:
    listed = " and ".join(f"'{name}'" for name in names)
    plural = "s" if len(names) > 1 else ""
    checked = ", ".join(f"{name}={sizes[name]}" for name in names)
    return SymbolicDecisionError(
        f"this build-time decision depends on the symbolic size{plural} {listed} "
        f"(checked with {checked}): the model would keep that answer for every input",
        span,
        hint=f"write {listed} as a number where the input declares it (a concrete shape), "
        "or make the choice a parameter of the net; sizes may still be used in forward "
        "and as layer arguments",
    )
