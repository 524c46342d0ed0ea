"""Timing, memory and reporting helpers shared by the benchmark sections."""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One line of the table: a measurement of ours, and the reference measured beside it."""

    section: str
    case: str
    unit: str  # "ms", "MB", "lines/s", "ms/layer"
    median: float
    min: float
    max: float
    n: int
    ref_name: str | None = None
    ref_median: float | None = None
    ref_min: float | None = None
    ref_max: float | None = None
    # ours / reference: the median of the per-round ratios (each round times both, back to
    # back), with their spread; for lines/s: reference / ours, so > 1 is slower
    ratio: float | None = None
    ratio_min: float | None = None
    ratio_max: float | None = None
    cpu_ratio: float | None = None  # the same from CPU time (time.process_time), beside wall
    target: str | None = None
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def calibrate(fn: Callable[[], Any], budget_s: float) -> int:
    """How many calls fit in about `budget_s` (at least one)."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, int(budget_s / max(once, 1e-7)))


def interleaved(
    fns: Mapping[str, Callable[[], Any]],
    rounds: int,
    inner: int | dict[str, int] = 1,
    setup: Callable[[], Any] | None = None,
    warmup: int = 1,
    cpu: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Wall seconds per call of each function, one sample per round; within a round every
    function runs `inner` times back to back, and the order alternates between rounds so
    that drift on the machine falls on all of them alike. Sample i of every function comes
    from round i, so ratios pair up by round. `cpu`, if given, receives the process's CPU
    seconds per call (all its threads) for the same samples."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            count = inner[name] if isinstance(inner, dict) else inner
            if setup is not None:
                setup()
            gc.collect()
            gc.disable()
            try:
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(count):
                    fns[name]()
                elapsed, used = time.perf_counter() - start, time.process_time() - start_cpu
            finally:
                gc.enable()
            samples[name].append(elapsed / count)
            if cpu is not None:
                cpu.setdefault(name, []).append(used / count)
    return samples


def round_ratios(ours: list[float], ref: list[float]) -> list[float]:
    """Ours / reference, round by round (the samples of one round were taken back to back)."""
    return [a / b for a, b in zip(ours, ref) if b]


def set_ratio(row: Row, ratios: list[float], cpu_ratios: list[float] | None = None) -> None:
    """The row's ratio: the median of per-round ratios, with their spread."""
    if ratios:
        row.ratio, row.ratio_min, row.ratio_max = summary(ratios)
    if cpu_ratios:
        row.cpu_ratio = summary(cpu_ratios)[0]


def paired_row(
    section: str,
    case: str,
    ours: list[float],
    ref: list[float] | None,
    ref_name: str | None,
    *,
    scale: float = 1e3,
    unit: str = "ms",
    limit: float | None = None,
    target: str | None = None,
    note: str = "",
    cpu: dict[str, list[float]] | None = None,
) -> Row:
    """A row for times in seconds (shown in ms). The ratio ours/reference is the median of
    the per-round ratios (samples paired by round, as `interleaved` takes them); `cpu`
    (keys "ours" and "ref") adds the same ratio from CPU time."""
    med, lo, hi = summary([v * scale for v in ours])
    row = Row(section, case, unit, med, lo, hi, len(ours), note=note, target=target)
    if ref is not None:
        rmed, rlo, rhi = summary([v * scale for v in ref])
        row.ref_name, row.ref_median, row.ref_min, row.ref_max = ref_name, rmed, rlo, rhi
        cpu_ratios = round_ratios(cpu["ours"], cpu["ref"]) if cpu else None
        set_ratio(row, round_ratios(ours, ref), cpu_ratios)
        if limit is not None and row.ratio is not None:
            row.met = row.ratio <= limit
    return row


# ----------------------------------------------------------------------------- peak memory


def forward_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes held by tensors allocated during one call, from the CPU allocator's events
    as torch.profiler records them (profile_memory=True): the running sum of allocations and
    frees in time order. The same accounting for the built and the reference model."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
        del out
    allocations = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and str(node.extra_fields.device) == "cpu":
            allocations.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    allocations.sort(key=lambda a: a[0])
    current = peak = 0
    for _, size in allocations:
        current += size
        peak = max(peak, current)
    return peak


# ----------------------------------------------------------------------------- subprocesses


# What every child script starts with: json, time, `status(key)`, a /proc/self/status
# figure in MiB (VmRSS, VmHWM), and `reset_peak()`, which sets VmHWM to VmRSS.
_CHILD_PRELUDE = """
import json, time

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ":")) / 1024

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS to the current RSS
    except OSError:
        pass
"""


def run_child(
    code: str, timeout: float = 300, env_extra: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run Python `code` in a fresh interpreter (repo root on the path), after
    `_CHILD_PRELUDE`; it prints one JSON line last."""
    env = {**os.environ, **(env_extra or {})}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # start-up as installed: bytecode cached
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD_PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the table


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "lines/s":
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(row: Row) -> str:
    if row.ratio is None:
        return ""
    spread = (
        f" ({row.ratio_min:.2f}-{row.ratio_max:.2f})"
        if row.ratio_min is not None and row.ratio_max is not None and row.n > 1
        else ""
    )
    return f"{row.ratio:.3f}{spread}"


def table(rows: list[Row]) -> str:
    """A Markdown table: ours (median, min-max), the reference likewise, the ratio (median
    of per-round ratios, their min-max), the CPU-time ratio, the target."""
    head = (
        "| section | case | unit | ours: median (min-max) | reference | ref: median (min-max) "
        "| ratio: median of rounds (min-max) | CPU ratio | target | met |"
    )
    lines = [head, "| " + " | ".join("---" for _ in range(10)) + " |"]
    for r in rows:
        ours = f"{_fmt(r.median, r.unit)} ({_fmt(r.min, r.unit)}-{_fmt(r.max, r.unit)})"
        ref = (
            f"{_fmt(r.ref_median, r.unit)} ({_fmt(r.ref_min, r.unit)}-{_fmt(r.ref_max, r.unit)})"
            if r.ref_median is not None
            else ""
        )
        cpu = f"{r.cpu_ratio:.3f}" if r.cpu_ratio is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        case = r.case + (f" — {r.note}" if r.note else "")
        lines.append(
            f"| {r.section} | {case} | {r.unit} | {ours} | {r.ref_name or ''} | {ref} "
            f"| {_ratio(r)} | {cpu} | {r.target or ''} | {met} |"
        )
    return "\n".join(lines)


def load_warning(cpus: int | None = None) -> str | None:
    """A warning when the machine is busy: the 1-minute load average above 3/4 of the CPUs
    means other processes share them, and timings (wall more than CPU) suffer."""
    cpus = cpus or os.cpu_count() or 1
    load = os.getloadavg()[0]
    if load > 0.75 * cpus:
        return (
            f"WARNING: load average {load:.1f} on {cpus} CPUs: other processes compete for "
            "them; trust the paired ratios and CPU times more than absolute wall times"
        )
    return None


def write_results(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")


README_START, README_END = "<!-- benchmarks:table -->", "<!-- /benchmarks:table -->"


def write_readme(path: Path, text: str) -> None:
    """Replace what stands between the README's table markers with `text`."""
    readme = path.read_text()
    head, start, rest = readme.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not (start and end):
        raise SystemExit(f"{path} has no {README_START} ... {README_END} markers")
    path.write_text(f"{head}{start}\n{text}{end}{tail}")
