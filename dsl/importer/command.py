"""`dsl import DOTTED.PATH[:callable]`: find the model a dotted path names, make example
inputs, import it, and say what the check found."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch
from torch import nn

from dsl.errors import CommandLineError
from dsl.importer import Imported, from_module
from dsl.torchlib.symbols import DTYPES

DEFAULT_INPUT = "2x3x224x224"


def load_target(target: str, arguments: dict[str, Any]) -> nn.Module:
    """`torchvision.models:resnet18`, `torchvision.models.resnet18` or `pkg.mod:Class`,
    called with `arguments` unless it is a module already."""
    module_name, _, attribute = target.partition(":")
    if not attribute:
        module_name, _, attribute = target.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise CommandLineError(
            f"cannot find '{target}': {exc}",
            hint="write MODULE:CALLABLE or MODULE.CALLABLE, e.g. torchvision.models:resnet18",
        ) from None
    made = obj if isinstance(obj, nn.Module) else obj(**arguments) if callable(obj) else obj
    if not isinstance(made, nn.Module):
        what = "calling it gives" if callable(obj) or inspect.isclass(obj) else "it is"
        raise CommandLineError(f"'{target}' is no nn.Module: {what} a {type(made).__name__}")
    return made


def example_input(text: str) -> torch.Tensor:
    """`2x3x224x224` (random floats) or `long:2x16` (random integers below 2)."""
    kind, _, dims = text.rpartition(":")
    try:
        shape = [int(n) for n in dims.lower().split("x")]
    except ValueError:
        raise CommandLineError(f"--input {text}: expected sizes like 2x3x224x224") from None
    dtype = DTYPES.get(kind or "float")
    if dtype is None:
        raise CommandLineError(f"--input {text}: the dtype is one of {', '.join(DTYPES)}")
    generator = torch.Generator().manual_seed(0)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator)
    return torch.randint(0, 2, shape, generator=generator, dtype=dtype)


def import_target(
    target: str, arguments: dict[str, Any], inputs: list[str], check_spec: bool
) -> tuple[Imported, str]:
    """The import, and a line that says how the check went."""
    torch.manual_seed(0)
    model = load_target(target, arguments)
    tensors = [example_input(text) for text in (inputs or [DEFAULT_INPUT])]
    if check_spec and not inputs:
        try:
            with torch.no_grad():
                model.eval()(*tensors)
        except Exception as exc:  # the default input simply does not fit
            note = f"not checked: the model does not take a {DEFAULT_INPUT} input ({type(exc).__name__}); give --input"
            return from_module(model, tensors, check_spec=False), note
    result = from_module(model, tensors, check_spec=check_spec)
    if not result.checked:
        return result, "not checked (--no-check)"
    if result.faithful:
        return (
            result,
            "checked: same state_dict keys in the same order, strict load, equal outputs in eval and train",
        )
    return result, "check FAILED: " + "; ".join(result.problems)
