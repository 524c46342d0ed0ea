"""Elaboration with what it needs from the build layer passed down: a derived net follows
shapes through a meta copy of its base, built exactly as the compiler builds the real one
(`build_on_meta`). Elaborate never imports build; callers above it resolve through here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsl import ir
from dsl.build.compile import build_on_meta
from dsl.elaborate import resolve as elaborate
from dsl.plan import Resolved


def resolve(
    spec: str | Path | ir.SpecFile,
    *,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
    root: Path | None = None,
) -> Resolved:
    """`dsl.elaborate.resolve.resolve` with `meta_build=build_on_meta`."""
    return elaborate.resolve(
        spec, net=net, params=params, sizes=sizes, root=root, meta_build=build_on_meta
    )
