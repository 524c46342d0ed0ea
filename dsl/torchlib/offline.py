"""Specs never reach the network unless the caller says so.

torchvision's model builders download pretrained weights when asked
(`torchvision.models.resnet18(weights="DEFAULT")`, or the older `pretrained=True`), and
`validate` constructs every layer on the meta device: a spec alone could make netdsl
download. Builders are wrapped so that such arguments are refused unless the caller opted
in (`build_model(..., allow_download=True)`, `dsl build --allow-download`); `validate`
never does.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from dsl.errors import NetworkAccessError

# Keyword arguments with which torchvision's builders fetch pretrained weights.
DOWNLOADING_KEYWORDS = ("weights", "weights_backbone", "pretrained", "pretrained_backbone")

_DOWNLOADS_ALLOWED: ContextVar[bool] = ContextVar("netdsl_downloads_allowed", default=False)

Builder = TypeVar("Builder", bound=Callable[..., Any])


@contextlib.contextmanager
def downloads_allowed(allowed: bool) -> Iterator[None]:
    """Within the body (this thread or task only), builders may download when `allowed`."""
    token = _DOWNLOADS_ALLOWED.set(allowed)
    try:
        yield
    finally:
        _DOWNLOADS_ALLOWED.reset(token)


def refusing_downloads(builder: Builder, name: str) -> Builder:
    """`builder` (same signature), refusing arguments that name weights to download."""
    names = _parameter_names(builder)

    @functools.wraps(builder)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not _DOWNLOADS_ALLOWED.get():
            _refuse_downloads(name, {**dict(zip(names, args)), **kwargs})
        return builder(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def _parameter_names(builder: Callable[..., Any]) -> list[str]:
    """The names positional arguments bind to, in order. torchvision's builders take their
    keyword-only parameters positionally too (`kwonly_to_pos_or_kw`: `resnet18(True)` is
    `weights=True`, with a deprecation warning), so those count as well."""
    try:
        parameters = inspect.signature(builder).parameters.values()
    except (TypeError, ValueError):  # no signature to read: keywords are checked alone
        return []
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p.name for p in parameters if p.kind not in variadic]


def _refuse_downloads(name: str, kwargs: dict[str, Any]) -> None:
    for key in DOWNLOADING_KEYWORDS:
        value = kwargs.get(key)
        if value is not None and value is not False:
            raise NetworkAccessError(
                f"{name}({key}={_shown(value)}) would download pretrained weights",
                hint="netdsl works offline: pass allow_download=True to dsl.build_model "
                '(dsl build --allow-download), or load a local file with weights("file.pth")',
            )


def _shown(value: Any) -> str:
    # A torchvision weights enum member prints as its qualified name.
    return repr(value) if isinstance(value, str | bool) else str(value)
