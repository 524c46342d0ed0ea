"""torch.fx traces of one module's own forward: every submodule call stays one
`call_module` node, so each module class is read on its own and becomes its own block."""

from __future__ import annotations

import inspect
from typing import Any

import torch.fx as fx
from torch import nn

from dsl.importer.report import Finding, Report, source_of
from dsl.records import record


@record
class Traced:
    """A module's forward traced in training mode and in eval mode."""

    train: fx.Graph
    eval: fx.Graph


class _OwnForward(fx.Tracer):
    """Traces `traced.forward` only: every other module is a leaf."""

    def __init__(self, traced: nn.Module) -> None:
        super().__init__()
        self.traced = traced
        self.record_stack_traces = True  # each node's source line, for the report

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return m is not self.traced and not inlined(m)


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def inlined(module: nn.Module) -> type | None:
    """The container class a module is written as when its forward goes into its callers:
    a subclass of a container with a forward of its own and no tensors of its own
    (torchvision's `IntermediateLayerGetter`, DeepLab's `ASPPPooling`), or a container
    holding one (its children are then applied one by one)."""
    base: Any = next((c for c in _CONTAINERS if isinstance(module, c)), None)
    if base is None:
        return None
    own_forward = type(module).forward is not base.forward
    if own_forward and (module._parameters or module._buffers):
        return None
    return base if own_forward or any(inlined(c) for c in module.children()) else None


def _concrete_args(module: nn.Module, passed: int | None) -> dict[str, object] | None:
    """Forward arguments with defaults that no caller passes are traced as their default."""
    if passed is None:
        return None
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    concrete = {
        p.name: p.default
        for p in params[passed:]
        if p.default is not inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    return concrete or None


def trace(
    root: nn.Module, module: nn.Module, name: str, passed: int | None, report: Report
) -> Traced | None:
    """Both modes' graphs of `module.forward`, or None (reported) when fx cannot trace it."""
    was_training = root.training
    graphs = []
    try:
        for mode in (True, False):
            root.train(mode)
            tracer = _OwnForward(module)
            graphs.append(tracer.trace(module, concrete_args=_concrete_args(module, passed)))
    except Exception as exc:  # fx raises many kinds; each is reported
        report.add(
            Finding(
                "unsupported",
                type(module).__name__,
                name,
                source_of(type(module).forward),
                f"torch.fx cannot trace its forward ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); register the class "
                "with @dsl.register to use it as a layer",
            )
        )
        return None
    finally:
        root.train(was_training)
    return Traced(graphs[0], graphs[1])
