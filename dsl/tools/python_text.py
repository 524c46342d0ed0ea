"""A constructor argument as Python source: `repr`, except that a layer class passed to a
constructor (`activation_layer=ReLU6`) is written as the code that names it (`nn.ReLU6`)."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn


def python_text(value: Any) -> str:
    if not inspect.isclass(value):
        return repr(value)
    name = value.__name__
    if getattr(nn, name, None) is value:
        return f"nn.{name}"
    import torchvision.ops

    if getattr(torchvision.ops, name, None) is value:
        return f"torchvision.ops.{name}"
    return f"{value.__module__}.{value.__qualname__}"
