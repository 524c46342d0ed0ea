"""Elaboration with what it needs from the build layer passed down: a derived net follows
shapes through a meta copy of its base, built exactly as the compiler builds the real one
(`build_on_meta`). Elaborate never imports build; callers above it resolve through here."""

from __future__ import annotations

import functools

from dsl.build.compile import build_on_meta
from dsl.elaborate import resolve as elaborate

# `dsl.elaborate.resolve.resolve` with `meta_build=build_on_meta`.
resolve = functools.partial(elaborate.resolve, meta_build=build_on_meta)
