"""The worker side: validate (and, if that passes, build) one mutated spec, classify the
outcome. Runs in its own process; the parent enforces time and memory limits."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIRS = ("examples", "blocks")  # every spec under these is a seed, found when a run starts
SPEC_SUFFIXES = (".net", ".yaml", ".yml")
BUILD_MAX_PARAMS = 2_000_000


def rss_mib(pid: int | str = "self", key: str = "VmRSS:") -> float:
    """Resident memory of a process (`VmHWM:`: its peak), from /proc (0 where it is missing)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int | str = "self") -> float:
    """CPU seconds (user + system) a process has used, from /proc (0 where it is missing).
    Time limits count these, not wall time: on a loaded machine a worker waits for a core."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak() -> str:
    """Start a new peak for VmHWM (Linux's clear_refs) and name the key that reads it; where
    that is refused, the memory after the input stands in for its peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return "VmRSS:"
    return "VmHWM:"


def _signature(exc: BaseException) -> str:
    """The exception's type and the innermost frame of ours that raised it."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/dsl/" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    message = str(getattr(exc, "message", exc)).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__} at {where}: {message}"


def _rendered_ok(error: Any, path: Path) -> str | None:
    """A DSLError must render, locate itself in a file and show no traceback."""
    text = error.render()
    if "Traceback" in text or not text.splitlines()[0].startswith(str(error.span.file)):
        return f"badly rendered {type(error).__name__}: {text.splitlines()[0][:200]}"
    return None


def check(path: Path) -> tuple[str, str]:
    """('ok' | 'rejected' | 'gap' | 'escape', detail) for the spec at `path`."""
    import dsl
    from dsl.tools.validate import validate_spec

    try:
        errors = validate_spec(path, every_net=True).errors
    except Exception as exc:
        return "escape", "validate: " + _signature(exc)
    if errors:
        bad = next((b for b in (_rendered_ok(e, path) for e in errors) if b), None)
        return ("escape", bad) if bad else ("rejected", errors[0].code)
    if not dsl.load(path).nets():
        return "ok", "no net to build"
    try:
        dsl.build_model(path, seed=0, max_params=BUILD_MAX_PARAMS)
    except dsl.DSLError as exc:
        return ("ok", "too large to build") if exc.code == "E600" else ("gap", _signature(exc))
    except Exception as exc:
        return "escape", "build: " + _signature(exc)
    return "ok", ""


def _corpus_copy() -> Path:
    """The shipped spec folders, copied, so that a mutated file keeps its relative imports."""
    scratch = Path(tempfile.mkdtemp(prefix="netdsl-fuzz-"))
    for name in CORPUS_DIRS:
        shutil.copytree(ROOT / name, scratch / name)
    return scratch


def _warm_up(scratch: Path) -> None:
    """Check every shipped spec once, so the one-time costs are paid before the baseline:
    imports, caches, and torch's lazy imports on the first Python meta kernel or the first
    torchvision model (torch._dynamo, sympy: ~160 MiB, once per process)."""
    for name in CORPUS_DIRS:
        for path in sorted((scratch / name).rglob("*")):
            if path.suffix in SPEC_SUFFIXES:
                check(path)


def serve(conn: Connection) -> None:
    """Answer (relative path, text) requests until the parent closes the pipe."""
    os.environ.setdefault("NETDSL_CACHE_DIR", "")
    scratch = _corpus_copy()
    _warm_up(scratch)
    conn.send(("ready", rss_mib()))
    while True:
        try:
            relative, text = conn.recv()
        except EOFError:
            break
        target = scratch / relative
        original = target.read_text()
        target.write_text(text)
        peak_key = _reset_peak()
        before, started = rss_mib(), time.process_time()
        try:
            outcome = check(target)
        finally:
            target.write_text(original)
        peak = rss_mib(key=peak_key) - before
        conn.send((*outcome, time.process_time() - started, rss_mib(), peak))
    shutil.rmtree(scratch, ignore_errors=True)
