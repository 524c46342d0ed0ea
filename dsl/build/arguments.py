"""The Python API's own arguments (`build_model(seed=, device=, dtype=, sizes=)`), checked
before anything is built, so a wrong one is a `CallArgumentError` naming it instead of an
exception from deep inside torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dsl.errors import CallArgumentError, DSLError
from dsl.source import Span

# torch.manual_seed takes any integer that fits in 64 bits, signed or unsigned.
SEED_RANGE = (-(2**63), 2**64 - 1)


def check_call_arguments(caller: str, **arguments: Any) -> None:
    """Check each given argument (None: not given) by its name's rule; an error's location
    is the function called (`dsl.build_model`)."""
    for name, value in arguments.items():
        if value is not None:
            try:
                _CHECKS[name](value)
            except DSLError as error:
                raise error.with_span(Span(file=caller)) from None


def _check_seed(seed: Any) -> None:
    low, high = SEED_RANGE
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise CallArgumentError(
            f"seed must be an integer, not {type(seed).__name__} {seed!r}", hint="e.g. seed=0"
        )
    if not low <= seed <= high:
        raise CallArgumentError(
            f"seed={seed} does not fit in 64 bits",
            hint=f"give a seed from {low} to {high} (2**64 - 1)",
        )


def _check_device(device: Any) -> None:
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise CallArgumentError(
            f"device={device!r} is not a torch device: {str(exc).splitlines()[0]}",
            hint="e.g. device='cpu', 'cuda', 'cuda:1' or 'meta'",
        ) from None
    available, count = _availability(parsed.type)
    if not available:
        raise CallArgumentError(
            f"device={device!r}: this machine has no {parsed.type} device",
            hint="build on 'cpu' (or 'meta' to allocate nothing)",
        )
    if parsed.index is not None and count is not None and parsed.index >= count:
        raise CallArgumentError(
            f"device={device!r}: this machine has {count} {parsed.type} device(s)",
            hint=f"give an index from 0 to {count - 1}",
        )


def _availability(kind: str) -> tuple[bool, int | None]:
    """Whether torch can use devices of this kind here, and how many there are if it says."""
    if kind in ("cpu", "meta"):
        return True, None
    module = getattr(torch, kind, None)
    is_available = getattr(module, "is_available", None)
    if is_available is None:
        return False, None
    count = getattr(module, "device_count", None)
    return bool(is_available()), (count() if callable(count) else None)


def _check_dtype(dtype: Any) -> None:
    if not isinstance(dtype, torch.dtype):
        raise CallArgumentError(
            f"dtype must be a torch.dtype, not {type(dtype).__name__} {dtype!r}",
            hint="e.g. dtype=torch.float16",
        )
    if not (dtype.is_floating_point or dtype.is_complex):
        raise CallArgumentError(
            f"dtype={dtype}: a model's parameters must be floating point (or complex)",
            hint="e.g. dtype=torch.float32, torch.float16 or torch.bfloat16",
        )


def _check_sizes(sizes: Any) -> None:
    if not isinstance(sizes, dict):
        raise CallArgumentError(
            f"sizes must be a dict of dimension names to sizes, not {type(sizes).__name__}",
            hint='e.g. sizes={"B": 2, "H": 32}',
        )
    for name, size in sizes.items():
        if not isinstance(name, str) or not isinstance(size, int) or isinstance(size, bool):
            raise CallArgumentError(
                f"sizes[{name!r}]={size!r}: sizes map names to integers",
                hint='e.g. sizes={"B": 2, "H": 32}',
            )
        if size < 1:
            raise CallArgumentError(
                f"sizes[{name!r}]={size}: a dimension's size is at least 1",
                hint=f'e.g. sizes={{"{name}": 1}}',
            )


_CHECKS: dict[str, Callable[[Any], None]] = {
    "seed": _check_seed,
    "device": _check_device,
    "dtype": _check_dtype,
    "sizes": _check_sizes,
}
