"""`dsl import` / `dsl.from_module`: an existing `nn.Module` written as an idiomatic spec.

torch.fx traces each module's own forward (every submodule call stays one node); leaves are
torch.nn layers, torchvision's random ops and registered classes. Every other class becomes
a block, its differing constructor values its parameters; containers stay containers,
repeats become loops. The result is checked by building it, loading the original's
state_dict strictly and comparing outputs in eval and training mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from dsl import ir
from dsl.importer.check import check
from dsl.importer.report import Finding, Report
from dsl.importer.spec import write_spec
from dsl.records import field, record
from dsl.syntax.printer import print_net
from dsl.syntax.yaml_printer import print_yaml


@record
class Imported:
    """An imported spec, what it could not say, and what the check found."""

    spec: ir.SpecFile
    report: Report
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    checked: bool = False
    problems: list[str] = field(default_factory=list)
    difference: float = 0.0

    @property
    def faithful(self) -> bool:
        """Checked, and nothing differs."""
        return self.checked and not self.problems

    def text(self, format: str = "net") -> str:
        """The spec as `.net` (canonical, as `dsl fmt` writes it) or YAML."""
        return print_yaml(self.spec) if format == "yaml" else print_net(self.spec)


def from_module(
    module: nn.Module,
    example_inputs: Sequence[torch.Tensor] | torch.Tensor | None = None,
    *,
    check_spec: bool = True,
    seed: int = 0,
) -> Imported:
    """Write `module` as a spec. With `example_inputs` (a tensor or a tuple of them) the
    net's inputs get their shapes and, with `check_spec`, the spec is built and compared
    with `module`: same state_dict keys in the same order, strict load, equal outputs in
    eval and training mode under `seed`. Input sizes are left to inference where the check
    confirms it, else written out."""
    inputs = (
        (example_inputs,)
        if isinstance(example_inputs, torch.Tensor)
        else tuple(example_inputs or ())
    )
    attempt = _attempt(module, inputs, True, check_spec and bool(inputs), seed)
    if attempt.checked and attempt.problems:
        explicit = _attempt(module, inputs, False, True, seed)
        if not explicit.problems:
            return explicit
    return attempt


def _attempt(
    module: nn.Module, inputs: tuple[torch.Tensor, ...], omit: bool, checking: bool, seed: int
) -> Imported:
    report = Report()
    spec, functions, complete = write_spec(module, inputs, report, omit)
    result = Imported(spec, report, functions)
    if not checking:
        return result
    result.checked = True
    if not complete:
        result.problems = ["parts of the module cannot be expressed (see the report)"]
        return result
    result.problems, result.difference = check(print_net(spec), module, inputs, functions, seed)
    for problem in result.problems:
        report.add(Finding("check", problem, ""))
    return result


__all__ = ["Imported", "from_module"]
