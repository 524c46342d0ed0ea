"""Elaboration with what it needs from the build layer passed down: a derived net follows
shapes through a meta copy of its base, built exactly as the compiler builds the real one
(`build_on_meta`). Elaborate never imports build; callers above it resolve through here."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from dsl.elaborate import resolve as elaborate

if TYPE_CHECKING:
    from torch import nn

    from dsl.plan import ModuleSpec


def _build_on_meta(spec: ModuleSpec) -> nn.Module:
    """`dsl.build.compile.build_on_meta`, imported when a derived net first needs it:
    validating a spec without surgery or parts imports no compiler."""
    from dsl.build.compile import build_on_meta

    return build_on_meta(spec)


# `dsl.elaborate.resolve.resolve` with `meta_build=build_on_meta`.
resolve = functools.partial(elaborate.resolve, meta_build=_build_on_meta)
