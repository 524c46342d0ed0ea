"""torch.export with the plan's dynamic dimensions, and what torch says about them.

torch checks every range it is given while it traces. Where the network needs a narrower
one it says so ("Suggested fixes: H = Dim('H', min=16)", "H = 16*_H"): the fix is applied
and the export runs again. Where it cannot keep a dimension dynamic at all (the network
fixes it at the size it was traced with: "C = 32"; or a guard no range expresses), the
export stops with a `SymbolicDecisionError` at the spec's `input` line that names the
symbol, torch's reason in the spec's words, and how to choose.

torch raises these as `torch._dynamo.exc.UserError`; they are recognised by their text
(a public format: `refine_dynamic_shapes_from_suggested_fixes` reads the same lines), so
no private torch module is imported here.
"""

from __future__ import annotations

import math
import re
from typing import Any

from torch import nn

from dsl.errors import ArgumentError, DSLError, Note, SymbolicDecisionError
from dsl.plan import LeafSpec, iter_modules
from dsl.tools.export_dynamic import DynamicPlan, SymbolRange

ATTEMPTS = 4  # exports tried while torch narrows the ranges

_HEADER = re.compile(r"(?:Constraints violated|Specializations unexpectedly required) \(([^)]*)\)!")
_DIM_FIX = re.compile(r"^(\w+) = Dim\('\w+'(?:, min=(\d+))?(?:, max=(\d+))?\)$")
_DERIVED_FIX = re.compile(r"^(\w+) = (\d+)\*(\w+)$")
_STATIC_FIX = re.compile(r"^(\w+) = (\d+)$")
_SIZE_REF = re.compile(r"L\['(\w+)'\]\.size\(\)\[(\d+)\]")


def export_program(model: nn.Module, plan: DynamicPlan, what: str) -> Any:
    """`torch.export.export` of `model` at the plan's trace sizes, its symbols dynamic."""
    import torch

    message = ""
    for _ in range(ATTEMPTS):
        shapes = plan.dynamic_shapes() if plan.ranges else None
        try:
            return torch.export.export(model, plan.inputs(), dynamic_shapes=shapes)
        except DSLError:
            raise
        except Exception as exc:  # torch's errors: constraints, or anything it cannot trace
            message = str(exc)
            if not _HEADER.search(message):
                raise _failed(message, plan, what) from None
            if not refine(plan, message):
                raise explain(plan, message) from None
    raise explain(plan, message)


def refine(plan: DynamicPlan, message: str) -> bool:
    """Narrow the plan's ranges as torch suggests; False where nothing can be narrowed
    (a dimension torch fixes, or a guard that no suggestion covers twice)."""
    fixes = suggested_fixes(message)
    if any(_STATIC_FIX.match(f) or not (_DIM_FIX.match(f) or _DERIVED_FIX.match(f)) for f in fixes):
        return False
    changed = False
    for fix in sorted(fixes, key=lambda f: not _DERIVED_FIX.match(f)):  # steps before roots
        changed |= _apply(plan, fix)
    if not fixes:  # a guard torch suggests nothing for (`H // 16 != 1`): the safe minimum
        for name in violated(message):
            r = plan.ranges.get(name)
            if r is not None and not r.stated and r.min < r.safe_min:
                r.min, changed = r.safe_min, True
    for r in plan.ranges.values():
        if not r.valid(r.trace):
            r.trace = _valid_from(r, max(r.trace, r.min))
    return changed


def suggested_fixes(message: str) -> list[str]:
    """The lines after "Suggested fixes:", up to the first empty line."""
    _, found, rest = message.partition("Suggested fixes:")
    if not found:
        return []
    lines = []
    for line in rest.strip("\n").splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    return lines


def violated(message: str) -> list[str]:
    """The symbols torch names in its header: `Constraints violated (H, W)!`."""
    match = _HEADER.search(message)
    return [s.strip() for s in match.group(1).split(",")] if match else []


def _apply(plan: DynamicPlan, fix: str) -> bool:
    derived = _DERIVED_FIX.match(fix)
    if derived:
        r = plan.ranges.get(derived.group(1))
        if r is None:
            return False
        step = math.lcm(r.multiple, int(derived.group(2)))
        changed, r.multiple = step != r.multiple, step
        r.min = _valid_from(r, r.min)
        return changed
    match = _DIM_FIX.match(fix)
    assert match is not None
    name, low, high = match.group(1), match.group(2), match.group(3)
    root = name.startswith("_") and name[1:] in plan.ranges
    r = plan.ranges.get(name[1:] if root else name)
    if r is None:
        return False
    scale = r.multiple if root else 1
    before = (r.min, r.max)
    if low is not None:
        r.min = max(r.min, int(low) * scale)
    if high is not None:
        r.max = int(high) * scale if r.max is None else min(r.max, int(high) * scale)
    return (r.min, r.max) != before


def _valid_from(r: SymbolRange, size: int) -> int:
    return -(-size // r.multiple) * r.multiple


def explain(plan: DynamicPlan, message: str) -> SymbolicDecisionError:
    """The located error for a dimension torch cannot keep dynamic."""
    names = [n for n in violated(message) if n in plan.ranges] or list(plan.ranges)
    fixed = {
        m.group(1): int(m.group(2)) for m in map(_STATIC_FIX.match, suggested_fixes(message)) if m
    }
    reasons = [_in_spec_words(line, plan) for line in _reasons(message)]
    listed = " and ".join(f"'{n}'" for n in names)
    if fixed:
        what = "; ".join(f"the network fixes '{n}' at {v}" for n, v in fixed.items())
    else:
        what = "the exported graph needs " + "; ".join(reasons[:3] or ["a guard torch reports"])
    keep = [s for s in plan.ranges if s not in names]
    choice = f"--dynamic {','.join(keep)}" if keep else "--static"
    python = f"dynamic={keep!r}" if keep else "dynamic=False"
    return SymbolicDecisionError(
        f"torch.export cannot keep {listed} dynamic: {what}",
        plan.symbol_spans.get(names[0], plan.span) if names else plan.span,
        hint=(
            f"write the size as a number where the input declares it, or export with {listed} "
            f"static: {choice} ({python} in Python)"
            + ("" if fixed else "; or state a range the network takes: --dynamic NAME:MIN..MAX")
        ),
        notes=_fixed_by(plan, fixed),
    )


def _fixed_by(plan: DynamicPlan, fixed: dict[str, int]) -> list[Note]:
    """The layers whose size argument, read from the input, is a fixed symbol's size."""
    if plan.root is None or not fixed:
        return []
    notes = []
    for _, spec in iter_modules(plan.root):
        if not isinstance(spec, LeafSpec):
            continue
        for arg in spec.inferred:
            for name, size in fixed.items():
                if spec.kwargs.get(arg) == size:
                    notes.append(
                        Note(
                            f"{spec.layer.name}({arg}={size}) read its size from the input "
                            f"here; its weights fix '{name}'",
                            spec.span,
                        )
                    )
    return notes[:3]


def _reasons(message: str) -> list[str]:
    return [line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ")]


def _in_spec_words(line: str, plan: DynamicPlan) -> str:
    """torch's `L['x'].size()[2]` as the spec's `H`, and its boilerplate cut."""
    line = _SIZE_REF.sub(lambda m: plan.located(m.group(1), int(m.group(2))) or m.group(0), line)
    line = re.sub(
        r"^Not all values of (\w+) = \1 in the specified range satisfy", r"\1 must satisfy", line
    )
    return line.replace("IntInfinity()", "inf").split(". If you're using")[0].rstrip(".")


def _failed(message: str, plan: DynamicPlan, what: str) -> ArgumentError:
    first = next((line for line in message.splitlines() if line.strip()), message)
    return ArgumentError(
        f"torch.export could not export {what}: {first.strip()}",
        plan.span,
        hint="export it as torchscript, or with fixed sizes (--static)",
    )
