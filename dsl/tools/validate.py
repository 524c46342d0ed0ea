"""One validation for the API (`dsl.validate`) and the command (`dsl validate`): the static
checks of every definition in the file (blocks no net uses included), then nets elaborated
with shapes and their init rules matched on meta."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsl import ir
from dsl.elaborate.check import check_unit
from dsl.elaborate.resolve import pick_net
from dsl.errors import DSLError, LimitError
from dsl.pauses import gc_paused
from dsl.plan import Resolved, has_init_rules
from dsl.records import field, record
from dsl.source import Span
from dsl.syntax.loader import Library, load
from dsl.tools.sizes import resolve_fitting, sizes_for_input


@record
class Validation:
    """Every diagnostic found (the static checks' all, else the first of each net), and the
    last net resolved without error."""

    errors: list[DSLError] = field(default_factory=list)
    resolved: Resolved | None = None


def validate_spec(
    spec: str | Path | ir.SpecFile,
    *,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
    shape: tuple[int, ...] | None = None,
    every_net: bool = False,
) -> Validation:
    """Check `spec` completely without allocating weights: `net` (default: the last one),
    or with `every_net` each net of the file (`net` then picks one; a file of blocks only
    has none to elaborate). `shape` (`--input`) gives the first input's sizes, as `sizes`
    gives its symbols'."""
    result = Validation()
    try:
        with gc_paused():
            spec_file, path = load(spec)
            unit = Library(path.parent if path else Path.cwd()).unit(spec_file, path)
            result.errors = check_unit(unit)
            if not result.errors:
                for name in _nets_to_check(spec_file, net, every_net):
                    chosen = sizes_for_input(spec, shape, name) if shape else sizes
                    result.resolved = resolve_fitting(spec, net=name, params=params, sizes=chosen)
                    _check_init_rules(result.resolved)
    except DSLError as exc:
        result.errors = [exc]
    except RecursionError:
        result.errors = [LimitError("the spec nests too deeply to check", _start_of(spec))]
    return result


def _check_init_rules(resolved: Resolved) -> None:
    """Init rules are matched against the module tree built on meta; a spec without any
    needs no compiler, which validate then leaves unimported."""
    if has_init_rules(resolved.root):
        from dsl.build.compile import check_init_rules

        check_init_rules(resolved)


def _nets_to_check(spec_file: ir.SpecFile, net: str | None, every_net: bool) -> list[str]:
    if not every_net or net is not None:
        return [pick_net(spec_file, net).name]  # raises "no net named" / "no net to build"
    return [n.name for n in spec_file.nets()]


def _start_of(spec: str | Path | ir.SpecFile) -> Span:
    return Span(file=str(spec) if isinstance(spec, Path) else "<string>", line=1, col=1)
