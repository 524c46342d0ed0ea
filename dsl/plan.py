"""What resolve produces and every later pass reads: the resolved module tree.

Each module of the network is fixed here: its constructor and final arguments (`LeafSpec`),
a torch container (`ContainerSpec`), a graph body with its fx graph (`GraphSpec`), a model
derived from another by name (`DerivedSpec`), or a part of another model (`PartSpec`).
The compiler instantiates these in declaration order; summary, export, diff and limits read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx

from dsl.records import field, record
from dsl.source import Span
from dsl.torchlib import init
from dsl.torchlib.init import InitCall
from dsl.torchlib.registry import Layer
from dsl.torchlib.symbols import Symbols


@record
class LeafSpec:
    """One module from a registered constructor, with every argument by keyword."""

    layer: Layer
    kwargs: dict[str, Any]
    span: Span
    numel: tuple[int, int] | None = (
        None  # (parameter, buffer) elements, counted on meta (dsl.elaborate.limits)
    )
    inferred: tuple[str, ...] = ()  # the input-size arguments read from the input's shape


@record
class ContainerSpec:
    kind: str  # Sequential, ModuleList, ModuleDict
    children: list[tuple[str, ModuleSpec]]
    span: Span
    init_rules: list[init.Rule] = field(default_factory=list)  # `block X = Sequential:`'s own
    # A container block's own `forward:`: the graph of a subclass of the torch container,
    # named `class_name`, whose forward reads the children as its attributes.
    forward: fx.Graph | None = None
    class_name: str = ""


@record
class ComputedTensor:
    """A buffer's value computed when the model is built (`buffer index = arange(n) ...`):
    the expression's own graph, which reads no input, parameter or module."""

    graph: fx.Graph
    text: str  # the expression as written
    span: Span

    def apply(self, tensor: torch.Tensor) -> None:
        """Fill the buffer: the graph runs where the model is being built (meta included)."""
        value = fx.GraphModule(torch.nn.Module(), self.graph)()
        with torch.no_grad():
            tensor.copy_(value)


@record
class TensorSpec:
    """An own `param` or `buffer` of a graph module."""

    kind: str  # "param" or "buffer"
    shape: tuple[int, ...]
    dtype: torch.dtype
    init: InitCall | ComputedTensor | None
    persistent: bool
    requires_grad: bool
    span: Span


@record
class AliasSpec:
    """The same module registered under a second name (`f3 = fc`)."""

    target: str
    span: Span


@record
class GraphSpec:
    """A net or block with named children and a generated `forward`."""

    class_name: str
    members: list[tuple[str, ModuleSpec | TensorSpec | AliasSpec | SourceSpec]]
    graph: fx.Graph
    span: Span
    init_rules: list[init.Rule] = field(default_factory=list)


@record
class ReplaceOp:
    """`fc = Sequential: ...` in a derived net: the member at `path` is replaced."""

    path: str
    spec: ModuleSpec
    span: Span


@record
class FreezeOp:
    """`freeze("layer1.*")` / `unfreeze("fc.*")`: requires_grad of matching parameters."""

    pattern: str
    trainable: bool
    span: Span


@record
class SetOp:
    """`set("layer3.*.conv2", dilation=(2, 2))`: attributes of matching modules."""

    pattern: str
    attrs: dict[str, Any]
    span: Span


@record
class DerivedSpec:
    """`net Name = Base(args):` — the base module, then its body's changes in order."""

    base: ModuleSpec
    ops: list[ReplaceOp | FreezeOp | SetOp]
    span: Span
    init_rules: list[init.Rule] = field(default_factory=list)


@record
class SourceSpec:
    """`resnet = parts(torchvision.models.resnet18())`: built where it is written (so the
    random stream is drawn as in hand-written code) but never registered; members take
    parts of it (`layer1 = resnet.layer1`)."""

    key: str
    spec: ModuleSpec
    span: Span


@record
class PartSpec:
    """A submodule of a `parts(...)` source, registered where the spec puts it."""

    key: str
    path: str
    span: Span


ModuleSpec = LeafSpec | ContainerSpec | GraphSpec | DerivedSpec | PartSpec
Node = ModuleSpec | TensorSpec | AliasSpec  # what `iter_modules` visits


def iter_modules(spec: ModuleSpec, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """Every module of the tree under `spec` with its qualified name, and each graph body's
    own tensors and aliases; children before their parent, siblings in declaration order.

    A derived net shares its name with its base and comes after it, and the modules that
    replace parts of the base come after those parts: keyed by name, the last visit is what
    the built model holds there. `parts(...)` sources are never registered, so not visited.
    """
    children = _CHILDREN.get(type(spec))
    for name, child in children(spec) if children is not None else ():
        path = f"{prefix}.{name}" if prefix and name else prefix or name
        if isinstance(child, TensorSpec | AliasSpec):
            yield path, child
        else:
            yield from iter_modules(child, path)
    yield prefix, spec


def _container_children(spec: ContainerSpec) -> Iterator[tuple[str, Node]]:
    return iter(spec.children)


def _graph_children(spec: GraphSpec) -> Iterator[tuple[str, Node]]:
    return ((name, m) for name, m in spec.members if not isinstance(m, SourceSpec))


def _derived_children(spec: DerivedSpec) -> Iterator[tuple[str, Node]]:
    yield "", spec.base  # the same name as the derived net
    yield from ((op.path, op.spec) for op in spec.ops if isinstance(op, ReplaceOp))


_CHILDREN: dict[type, Callable[[Any], Iterator[tuple[str, Node]]]] = {
    ContainerSpec: _container_children,
    GraphSpec: _graph_children,
    DerivedSpec: _derived_children,
}


def has_init_rules(spec: ModuleSpec) -> bool:
    """Whether any module of the tree under `spec` has init rules."""
    return any(
        isinstance(node, ContainerSpec | GraphSpec | DerivedSpec) and node.init_rules
        for _, node in iter_modules(spec)
    )


@record
class Resolved:
    """What `build_model` compiles: the module tree and the shapes seen while elaborating."""

    name: str
    root: ModuleSpec
    inputs: list[tuple[str, torch.Tensor]]
    output: Any
    symbols: Symbols
    weights: list[WeightsSpec] = field(default_factory=list)


@record(frozen=True)
class WeightsSpec:
    """`weights("resnet18.pth", prefix="module.")` in a net: loaded after the build."""

    path: Path
    options: dict[str, Any]
    span: Span
