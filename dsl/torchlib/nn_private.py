"""The torch.nn internals netdsl uses, and only here: each has no public equivalent.

- The base classes of the norm and conv layers (`_BatchNorm`, `_InstanceNorm`, `_ConvNd`):
  the shape rules ask "is this a batch/instance norm, a conv?" of every subclass at once.
- `_check_input_dim` / `_get_no_batch_dim`: the norm layers' own input checks, so a shape
  rule refuses exactly what the layer's `forward` would (with torch's own message).
- `_global_module_registration_hooks`, `_modules`, `_parameters`, `_buffers`: the compiler
  registers a child straight into `_modules` when no registration hook is installed and the
  name cannot clash; `add_module`'s own check costs ~3 µs a child (most of the call).
- A module's `__dict__` as a whole: `leaf_copy` copies a module without submodules.

`tests/test_nn_private.py` fails when torch renames or changes any of them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

BatchNorm = nn.modules.batchnorm._BatchNorm
InstanceNorm = nn.modules.instancenorm._InstanceNorm
ConvNd = nn.modules.conv._ConvNd

# torch's hooks run on every child module registered (none unless a program adds one);
# None where this torch has no such hooks.
MODULE_REGISTRATION_HOOKS: dict[int, Any] | None = getattr(
    nn.modules.module, "_global_module_registration_hooks", None
)


def check_input_dim(norm: nn.Module, input: torch.Tensor) -> None:
    """A batch or instance norm's own check of its input's rank: torch's ValueError if wrong."""
    norm._check_input_dim(input)  # type: ignore[operator]


def no_batch_dim(norm: nn.Module) -> int:
    """The rank of an unbatched input to an instance norm (2 for InstanceNorm1d)."""
    return int(norm._get_no_batch_dim())  # type: ignore[operator]


def owns_tensor(module: nn.Module, name: str) -> bool:
    """Whether `module` has a parameter or buffer (None included) registered as `name`."""
    return name in module._parameters or name in module._buffers


def set_child(module: nn.Module, name: str, child: nn.Module) -> None:
    """Register `child` without `add_module`'s checks: the caller has made them."""
    module._modules[name] = child


def leaf_copy(module: nn.Module) -> nn.Module | None:
    """A copy of a module without submodules (None for one with), sharing its tensors and
    nothing else: its own attribute, hook and parameter tables and its own Parameter
    objects, so that setting an attribute, a hook or `requires_grad` on one leaves the
    other as it was. On meta, where tensors hold no values, it stands for a new instance
    at a fraction of a constructor's cost."""
    if module._modules:
        return None
    copy = type(module).__new__(type(module))
    state = {
        key: value.copy() if isinstance(value, dict | list | set) else value
        for key, value in module.__dict__.items()
    }
    state["_parameters"] = {
        name: None if p is None else nn.Parameter(p, requires_grad=p.requires_grad)
        for name, p in module._parameters.items()
    }
    copy.__dict__.update(state)
    return copy
