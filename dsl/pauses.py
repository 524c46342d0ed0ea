"""Python's cyclic garbage collector, paused while a spec is read, elaborated or built.

Reading, elaboration and construction allocate hundreds of thousands of small, long-lived objects
(IR nodes, spans, fx nodes, modules). Each of them counts towards the collector's
thresholds, and every collection walks the objects that are alive so far: with 10,000
layers that was half of validation time and two thirds of a build, and the cost per layer
grew with the size of the spec. Nothing made here needs the collector to be freed early,
and it resumes as soon as the call returns.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause cyclic collection (reference counting still frees everything at once); nests."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
