"""What resolve produces and every later pass reads: the resolved module tree.

Each module of the network is fixed here: its constructor and final arguments (`LeafSpec`),
a torch container (`ContainerSpec`), a graph body with its fx graph (`GraphSpec`), a model
derived from another by name (`DerivedSpec`), or a part of another model (`PartSpec`).
The compiler instantiates these in declaration order; summary, export, diff and limits read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx

from dsl.source import Span
from dsl.torchlib import init
from dsl.torchlib.init import InitCall
from dsl.torchlib.registry import Layer
from dsl.torchlib.symbols import Symbols


@dataclass
class LeafSpec:
    """One module from a registered constructor, with every argument by keyword."""

    layer: Layer
    kwargs: dict[str, Any]
    span: Span
    numel: tuple[int, int] | None = (
        None  # (parameter, buffer) elements, counted on meta (dsl.elaborate.limits)
    )
    inferred: tuple[str, ...] = ()  # the input-size arguments read from the input's shape


@dataclass
class ContainerSpec:
    kind: str  # Sequential, ModuleList, ModuleDict
    children: list[tuple[str, ModuleSpec]]
    span: Span


@dataclass
class TensorSpec:
    """An own `param` or `buffer` of a graph module."""

    kind: str  # "param" or "buffer"
    shape: tuple[int, ...]
    dtype: torch.dtype
    init: InitCall | None
    persistent: bool
    requires_grad: bool
    span: Span


@dataclass
class AliasSpec:
    """The same module registered under a second name (`f3 = fc`)."""

    target: str
    span: Span


@dataclass
class GraphSpec:
    """A net or block with named children and a generated `forward`."""

    class_name: str
    members: list[tuple[str, ModuleSpec | TensorSpec | AliasSpec | SourceSpec]]
    graph: fx.Graph
    span: Span
    init_rules: list[init.Rule] = field(default_factory=list)


@dataclass
class ReplaceOp:
    """`fc = Sequential: ...` in a derived net: the member at `path` is replaced."""

    path: str
    spec: ModuleSpec
    span: Span


@dataclass
class FreezeOp:
    """`freeze("layer1.*")` / `unfreeze("fc.*")`: requires_grad of matching parameters."""

    pattern: str
    trainable: bool
    span: Span


@dataclass
class SetOp:
    """`set("layer3.*.conv2", dilation=(2, 2))`: attributes of matching modules."""

    pattern: str
    attrs: dict[str, Any]
    span: Span


@dataclass
class DerivedSpec:
    """`net Name = Base(args):` — the base module, then its body's changes in order."""

    base: ModuleSpec
    ops: list[ReplaceOp | FreezeOp | SetOp]
    span: Span
    init_rules: list[init.Rule] = field(default_factory=list)


@dataclass
class SourceSpec:
    """`resnet = parts(torchvision.models.resnet18())`: built where it is written (so the
    random stream is drawn as in hand-written code) but never registered; members take
    parts of it (`layer1 = resnet.layer1`)."""

    key: str
    spec: ModuleSpec
    span: Span


@dataclass
class PartSpec:
    """A submodule of a `parts(...)` source, registered where the spec puts it."""

    key: str
    path: str
    span: Span


ModuleSpec = LeafSpec | ContainerSpec | GraphSpec | DerivedSpec | PartSpec


@dataclass
class Resolved:
    """What `build_model` compiles: the module tree and the shapes seen while elaborating."""

    name: str
    root: ModuleSpec
    inputs: list[tuple[str, torch.Tensor]]
    output: Any
    symbols: Symbols
    weights: list[WeightsSpec] = field(default_factory=list)


@dataclass(frozen=True)
class WeightsSpec:
    """`weights("resnet18.pth", prefix="module.")` in a net: loaded after the build."""

    path: Path
    options: dict[str, Any]
    span: Span
