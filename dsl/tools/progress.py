"""A small progress display on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import IO, Any


class Progress:
    """`with Progress("building UNet", total=38) as p: ... p.advance()`; silent when piped."""

    def __init__(self, label: str, total: int | None = None, stream: IO[str] | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def stage(self, label: str) -> None:
        self.label = label
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        elapsed = now - self._start
        if self.total:
            width = 24
            filled = int(width * min(self.done, self.total) / self.total)
            bar = "#" * filled + "." * (width - filled)
            text = f"{self.label} [{bar}] {self.done}/{self.total}  {elapsed:.1f}s"
        else:
            text = f"{self.label}...  {elapsed:.1f}s"
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()


@contextmanager
def counting_modules(progress: Progress) -> Any:
    """Advance `progress` for each module registered as a child while the block runs
    (torch's global registration hook), so a long build shows how far it has come."""
    from torch.nn.modules.module import register_module_module_registration_hook

    if not progress.enabled:
        yield progress
        return

    def hook(module: Any, name: str, submodule: Any) -> None:
        progress.advance()

    handle = register_module_module_registration_hook(hook)
    try:
        yield progress
    finally:
        handle.remove()
