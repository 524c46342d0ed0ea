"""IR -> resolved module tree: the entry point of elaboration.

Parameters are bound, expressions evaluated by our own evaluator (never `eval`), `if`/`for`
and blocks expanded, and every graph value carries a meta tensor, so that input sizes can
be inferred and `x.shape[1]` read while the network is being elaborated (the way Keras'
functional API builds a layer on its first call). Shapes come from `dsl.torchlib.shapes`;
this pass decides every module's constructor arguments and writes each graph body as a
`torch.fx` graph. The compiler only instantiates what this pass decided, in declaration order.

The pass, by module: `values` (the records it computes with), `evaluate` (expressions),
`conditions` (build-time decisions), `handles` (modules built on first application),
`graph_ops` (graph nodes), `bodies`/`graph_body`/`declarations` (statements), `params`,
`surgery` (derived nets) and `elaborator` (blocks, containers and nets, which recurse).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsl import ir
from dsl.elaborate import size_decisions, watch
from dsl.elaborate.context import Context, MetaBuild
from dsl.elaborate.elaborator import Elaborator
from dsl.elaborate.params import bind_params
from dsl.errors import LimitError, StructureError, UndefinedValueError, did_you_mean
from dsl.pauses import gc_paused
from dsl.plan import Resolved
from dsl.syntax.loader import Library, Unit, load
from dsl.torchlib import shapes


@gc_paused()
def resolve(
    spec: str | Path | ir.SpecFile,
    *,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
    root: Path | None = None,
    meta_build: MetaBuild,
) -> Resolved:
    """Elaborate one net of a spec into a resolved module tree with shapes.

    `meta_build` builds a resolved module on the meta device
    (`dsl.build.compile.build_on_meta`, passed down by `dsl.build.resolve`): derived nets
    follow shapes through it."""
    spec_file, path = load(spec)
    library = Library(root or (path.parent if path else Path.cwd()))
    unit = library.unit(spec_file, path)
    node = pick_net(spec_file, net)

    def elaborate(chosen: dict[str, int] | None) -> Resolved:
        context = Context(library, shapes.Symbols(chosen), meta_build)
        return _elaborate(context, unit, node, params or {})

    with size_decisions.recording() as decisions:
        resolved = elaborate(sizes)
    with watch.paused():
        size_decisions.refuse_symbolic_decisions(elaborate, resolved.symbols.sizes, decisions)
    return resolved


def _elaborate(context: Context, unit: Unit, node: ir.NetDef, params: dict[str, Any]) -> Resolved:
    elab = Elaborator(context)
    try:
        scope = bind_params(elab, node, None, None, unit, params)
        resolved = elab.resolve_net(unit, node, scope)
        resolved.weights = context.weights
        return resolved
    except RecursionError:
        raise LimitError("the spec nests too deeply to elaborate", node.span) from None


def bound_params(
    library: Library, unit: Unit, node: ir.NetDef, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The values of a net's parameters: `overrides`, else their defaults."""
    elab = Elaborator(Context(library, shapes.Symbols()))
    return bind_params(elab, node, None, None, unit, overrides)


def pick_net(spec_file: ir.SpecFile, name: str | None) -> ir.NetDef:
    nets = spec_file.nets()
    if name is not None:
        found = next((n for n in nets if n.name == name), None)
        if found is None:
            raise UndefinedValueError(
                f"no net named '{name}'",
                spec_file.span,
                hint=did_you_mean(name, [n.name for n in nets])
                or f"nets here: {', '.join(n.name for n in nets) or 'none'}",
            )
        return found
    if not nets:
        raise StructureError(
            "this spec defines no net to build",
            spec_file.span,
            hint="a file of blocks is imported by other specs; 'net Name(...):' defines something to build",
        )
    return nets[-1]


__all__ = ["bound_params", "pick_net", "resolve"]
