"""A small progress display on stderr, shown only when stderr is a terminal.

A background thread redraws it a few times a second, so the elapsed time runs on through
a long step that reports nothing (writing a checkpoint, exporting to ONNX)."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import IO, Any

TICK_SECONDS = 0.2


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
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self._draw(force=True)
        if self.enabled:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stopped.wait(TICK_SECONDS):
            self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def stage(self, label: str) -> None:
        self.label = label
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < 0.1:
                return
            self._last = now
            self.stream.write("\r\x1b[2K" + self._text(now - self._start))
            self.stream.flush()

    def _text(self, elapsed: float) -> str:
        if self.total:
            width = 24
            filled = int(width * min(self.done, self.total) / self.total)
            bar = "#" * filled + "." * (width - filled)
            return f"{self.label} [{bar}] {self.done}/{self.total}  {elapsed:.1f}s"
        return f"{self.label}...  {elapsed:.1f}s"


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
