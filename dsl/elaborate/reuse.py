"""Block elaborations kept from one elaboration to the next, for a caller that checks the
same spec again and again (the language server, after each edit): off unless a caller
asks (`reusing`).

Within one elaboration the elaborator already shares identical block instances (same
definition, arguments, input shapes and settings). Across elaborations the definition is
a new object whenever its file was parsed again, and what it calls may have changed, so a
kept result is used only after checking what it was made from:

- the block's definition, equal and written at the same places (a result holds spans),
  in the file at the same path;
- every name its elaboration (nested blocks and functions included) looked up, by file:
  it still means the same definition, equal and at the same places, or still nothing
  of the file's (then the registry's, which a spec cannot change);
- the representative sizes, the nesting depth, the arguments and settings (block
  arguments by identity: the entry keeps them, so that no other object takes their id).

An elaboration that changed anything outside its result (a `weights()` statement, a
`parts()` source, a symbol's size) is not kept. Using a kept result replays what the
elaboration did to the run around it: the size decisions it noted (the symbolic-size
check compares them), the work it spent, the names it looked up (for an enclosing block's
own entry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from dsl import ir
from dsl.elaborate import size_decisions
from dsl.elaborate.context import Context
from dsl.elaborate.values import BlockRef
from dsl.records import record
from dsl.syntax.loader import Definition, Unit

T = TypeVar("T")
MAX_ENTRIES = 4096


class Read(NamedTuple):
    """A name looked up in a file, and the definition it meant (None: none of the file's)."""

    file: Path
    name: str
    where: Path | None
    node: ir.Node | None


@record
class Entry:
    node: ir.Node
    keep: Any  # what the key names by id (block arguments, settings)
    reads: list[Read]
    decisions: list[size_decisions.Decision]
    spent: int
    result: Any


class Kept:
    """The kept elaborations of one caller (one thread at a time)."""

    def __init__(self) -> None:
        self.entries: dict[tuple, Entry] = {}
        self.hits = 0
        self._paths: dict[Path, Path] = {}
        # Within one elaboration: node pairs compared (held, so that their ids stay theirs).
        self.compared: dict[tuple[int, int], tuple[ir.Node, ir.Node, bool]] = {}

    def same(self, kept: ir.Node, now: ir.Node) -> bool:
        """The same node, or one equal to it and written at the same places."""
        if kept is now:
            return True
        key = (id(kept), id(now))
        found = self.compared.get(key)
        if found is None:
            found = self.compared[key] = (kept, now, _same_value(kept, now))
        return found[2]

    def path(self, unit: Unit) -> Path | None:
        if unit.path is None:
            return None
        found = self._paths.get(unit.path)
        if found is None:
            found = self._paths[unit.path] = unit.path.resolve()
        return found


_KEPT: ContextVar[Kept | None] = ContextVar("kept_elaborations", default=None)


@contextmanager
def reusing(kept: Kept) -> Iterator[Kept]:
    """Elaborations inside keep their blocks' results in `kept` and use those still valid."""
    token = _KEPT.set(kept)
    try:
        yield kept
    finally:
        _KEPT.reset(token)
        kept.compared.clear()


def block(
    context: Context, definition: Definition, key: tuple, keep: Any, elaborate: Callable[[], T]
) -> T:
    """`elaborate()`'s result for a block instance, or a kept one that is still valid.
    `key`: the elaborator's own key less the definition's id, with the nesting depth and
    the member's name; `keep`: what it names by id."""
    kept = _KEPT.get()
    path = kept.path(definition.unit) if kept is not None else None
    if kept is None or path is None:
        return elaborate()
    full = (path, definition.node.name, key, tuple(context.symbols.sizes.items()))
    entry = kept.entries.get(full)
    if (
        entry is not None
        and kept.same(entry.node, definition.node)
        and _replayed(kept, context, entry)
    ):
        kept.hits += 1
        return entry.result
    if context.reads is None:
        context.reads = []
    return _recorded(kept, full, context, definition.node, keep, elaborate)


def _recorded(
    kept: Kept, full: tuple, context: Context, node: ir.Node, keep: Any, elaborate: Callable[[], T]
) -> T:
    assert context.reads is not None
    reads_from = len(context.reads)
    log = size_decisions.current()
    decisions_from = len(log) if log is not None else 0
    before = _outside(context)
    result = elaborate()
    if _outside(context)[1:] != before[1:]:
        return result
    reads = _reads(kept, context.reads[reads_from:])
    if reads is None:
        return result
    if len(kept.entries) >= MAX_ENTRIES:
        kept.entries.clear()
    spent = context.budget.spent - before[0]
    decisions = log[decisions_from:] if log is not None else []
    kept.entries[full] = Entry(node, keep, reads, decisions, spent, result)
    return result


def _outside(context: Context) -> tuple:
    """The work spent, and what an elaboration may change outside its result."""
    return (
        context.budget.spent,
        len(context.weights),
        context.sources,
        context.symbols.fingerprint(),
    )


def _reads(kept: Kept, looked_up: list[tuple[Unit, str, Any]]) -> list[Read] | None:
    """The distinct names looked up; None where one was in a file without a path."""
    found: dict[tuple[Path, str], Read] = {}
    for unit, name, value in looked_up:
        path = kept.path(unit)
        if path is None:
            return None
        if (path, name) not in found:
            definition = value.definition if isinstance(value, BlockRef) else None
            where = kept.path(definition.unit) if definition is not None else None
            node = definition.node if definition is not None else None
            found[path, name] = Read(path, name, where, node)
    return list(found.values())


def _replayed(kept: Kept, context: Context, entry: Entry) -> bool:
    """Whether every name the entry read means the same now; if so, what its elaboration
    did to the run around it, done again."""
    library = context.library
    now: list[tuple[Unit, str, Any]] = []
    for read in entry.reads:
        unit = library.loaded(read.file)
        if unit is None:
            return False
        definition = unit.names.get(read.name)
        if not _same_definition(kept, read, definition):
            return False
        now.append((unit, read.name, BlockRef(definition) if definition is not None else None))
    if context.reads is not None:
        context.reads.extend(now)
    log = size_decisions.current()
    if log is not None:
        log.extend(entry.decisions)
    context.budget.spend(entry.spent, entry.node.span, f"block {getattr(entry.node, 'name', '')}")
    return True


def _same_definition(kept: Kept, read: Read, definition: Definition | None) -> bool:
    if definition is None or read.node is None:
        return definition is None and read.node is None
    return kept.path(definition.unit) == read.where and kept.same(read.node, definition.node)


def _same_value(a: Any, b: Any) -> bool:
    """Equal, nodes written at the same places too (`ir.Node.__eq__` leaves places out)."""
    if isinstance(a, ir.Node):
        if type(a) is not type(b):
            return False
        return a.__dict__.keys() == b.__dict__.keys() and all(
            _same_value(v, b.__dict__[k]) for k, v in a.__dict__.items()
        )
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_value, a, b))
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_same_value(v, b[k]) for k, v in a.items())
        )
    return bool(a == b)
