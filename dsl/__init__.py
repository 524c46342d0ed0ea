"""netdsl: a declarative language for PyTorch networks.

    import dsl
    model = dsl.build_model("examples/unet.net", params={"n_classes": 3}, seed=0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dsl.errors import DSLError
from dsl.ir import SpecFile
from dsl.registry import register
from dsl.resolve import Resolved

SpecLike = str | Path | SpecFile

__all__ = ["DSLError", "Resolved", "build_model", "load", "register", "validate"]


def load(path: str | Path) -> SpecFile:
    """Parse a `.net` or YAML file into the IR."""
    from dsl.loader import read_file

    return read_file(Path(path))


def validate(
    spec: SpecLike,
    *,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
) -> Resolved:
    """Check a spec completely (syntax, names, arguments, shapes) without allocating weights.

    Returns the resolved network, whose `output` holds the output's meta tensor(s).
    """
    from dsl.resolve import resolve

    return resolve(spec, net=net, params=params, sizes=sizes)


def build_model(
    spec: SpecLike,
    *,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    sizes: dict[str, int] | None = None,
) -> nn.Module:
    """Compile a spec (a path, `.net`/YAML text, or IR) into an ordinary `nn.Module`.

    `params` overrides the net's parameters; `seed` makes initialisation reproducible;
    `sizes` gives the symbolic input dims (B, H, ...) the sizes shapes are checked with.
    """
    from dsl.compile import compile_resolved

    resolved = validate(spec, net=net, params=params, sizes=sizes)
    if seed is not None:
        torch.manual_seed(seed)
    return compile_resolved(resolved, device=device, dtype=dtype)
