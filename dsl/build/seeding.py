"""Seeded builds that leave torch's global random state as they found it.

Initialisation draws from torch's global generators, as a hand-written model does, so a
seeded build seeds them exactly as `torch.manual_seed(seed)` would (the same weights, bit
for bit), but inside a fork that restores the caller's state afterwards. The global
generators are shared by every thread: seeded sections take one lock, so builds from
several threads at once draw the same streams as serial builds.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_SEEDED_SECTION = threading.RLock()  # re-entrant: a build may build parts of itself


@contextlib.contextmanager
def seeded(
    seed: int | None, device: str | torch.device | None = None, *, reseed: bool = True
) -> Iterator[None]:
    """Run the body with torch's generators seeded by `seed` (when `reseed`), restoring
    their previous state on exit. Without a seed the body draws from the global stream."""
    if seed is None:
        yield
        return
    on_cuda = device is not None and torch.device(device).type == "cuda"
    cuda_devices = list(range(torch.cuda.device_count())) if on_cuda else []
    with _SEEDED_SECTION, torch.random.fork_rng(devices=cuda_devices):
        if reseed:
            torch.random.default_generator.manual_seed(seed)
            if on_cuda:
                torch.cuda.manual_seed_all(seed)
        yield
