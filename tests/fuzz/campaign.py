"""The parent side: generate mutated inputs from every shipped spec, hand them to worker
processes, enforce the time and memory limits, and tally the outcomes."""

from __future__ import annotations

import multiprocessing
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from tests.fuzz.mutate import mutate
from tests.fuzz.worker import CORPUS_DIRS, ROOT, SPEC_SUFFIXES, cpu_s, rss_mib, serve

SIGNATURE = re.compile(r"^(?:\w+: )?\w+ at [\w.?]+(?::\d+)?")
TIME_LIMIT_S = 20.0  # CPU seconds of the worker on one input
WALL_LIMIT_S = 10 * TIME_LIMIT_S  # a worker that waits without computing (a lock, a read)
MEMORY_LIMIT_MIB = 1024.0  # resident memory above the warm worker's: killed at once
MEMORY_OUTLIER_MIB = 256.0  # one input's peak above the memory it started with: a finding


@dataclass
class Report:
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    seeds: Counter[str] = field(default_factory=Counter)  # inputs mutated from each spec
    findings: dict[str, tuple[str, str]] = field(default_factory=dict)  # signature -> (kind, input)
    peak_growth_mib: float = 0.0  # the most one input's peak rose above its start
    residual_mib: float = 0.0  # the most the warm worker's memory grew, over the run
    slowest_s: float = 0.0  # CPU seconds
    heaviest: str = ""  # the input with the peak memory growth, and the slowest one
    slowest: str = ""

    def add(self, kind: str, detail: str, text: str, relative: str) -> None:
        self.inputs += 1
        self.outcomes[kind] += 1
        self.seeds[relative] += 1
        if kind in ("escape", "gap", "timeout", "memory"):
            where = SIGNATURE.match(detail)  # one finding per exception type and place
            self.findings.setdefault(
                f"{kind}: {where.group() if where else detail}",
                (kind, f"{detail}\nmutated from {relative}:\n{text}"),
            )

    def measure(self, growth_mib: float, seconds: float, described: str) -> None:
        if growth_mib > MEMORY_OUTLIER_MIB:
            self.findings.setdefault(
                f"memory: one input's peak {growth_mib:.0f} MiB", ("memory", described)
            )
        if growth_mib > self.peak_growth_mib:
            self.peak_growth_mib, self.heaviest = growth_mib, described
        if seconds > self.slowest_s:
            self.slowest_s, self.slowest = seconds, described

    def escapes(self) -> list[str]:
        return [s for s, (kind, _) in self.findings.items() if kind != "gap"]


def corpus() -> list[tuple[str, str]]:
    """(path relative to the repository, text) of every shipped spec, as found now: a spec
    added to examples/ or blocks/ is a seed of the next run, with no list to update."""
    paths = sorted(
        p for d in CORPUS_DIRS for p in (ROOT / d).rglob("*") if p.suffix in SPEC_SUFFIXES
    )
    return [(str(p.relative_to(ROOT)), p.read_text()) for p in paths]


class Worker:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child,), daemon=True)
        self.process.start()
        _, self.baseline = self.conn.recv()
        # (mutated file, input text, wall and CPU time at the start)
        self.job: tuple[str, str, float, float] | None = None

    def send(self, relative: str, text: str) -> None:
        self.conn.send((relative, text))
        assert self.process.pid is not None
        self.job = (relative, text, time.monotonic(), cpu_s(self.process.pid))

    def over_limit(self) -> str | None:
        assert self.job is not None and self.process.pid is not None
        if cpu_s(self.process.pid) - self.job[3] > TIME_LIMIT_S:
            return "timeout"
        if time.monotonic() - self.job[2] > WALL_LIMIT_S:
            return "timeout"
        if rss_mib(self.process.pid) - self.baseline > MEMORY_LIMIT_MIB:
            return "memory"
        return None

    def kill(self) -> None:
        self.process.kill()
        self.process.join()


def _poll(workers: list[Worker], report: Report) -> list[Worker]:
    """Collect finished jobs and kill runaway ones; returns the idle workers."""
    ready = wait([w.conn for w in workers if w.job], timeout=0.05)
    for i, worker in enumerate(workers):
        if worker.job is None:
            continue
        relative, text, _, _ = worker.job
        if worker.conn in ready:
            kind, detail, seconds, rss, peak = worker.conn.recv()
            report.residual_mib = max(report.residual_mib, rss - worker.baseline)
            report.measure(peak, seconds, f"mutated from {relative}:\n{text}")
            report.add(kind, detail, text, relative)
            worker.job = None
        elif limit := worker.over_limit():
            report.add(limit, f"input of {len(text)} characters", text, relative)
            worker.kill()
            workers[i] = Worker()
    return [w for w in workers if w.job is None]


def run(
    *,
    seed: int,
    count: int | None = None,
    minutes: float | None = None,
    jobs: int = 2,
    report: Report | None = None,
    progress: Callable[[Report], None] | None = None,
    every_s: float = 60.0,
) -> Report:
    """Run the campaign into `report` (a new one unless given, so that a caller keeps the
    partial totals of a run that is interrupted); `progress` is called every `every_s`."""
    rng = random.Random(seed)
    specs = corpus()
    report = Report() if report is None else report
    workers = [Worker() for _ in range(jobs)]
    deadline = time.monotonic() + 60 * minutes if minutes else None
    next_progress = time.monotonic() + every_s
    sent = 0
    try:
        while True:
            idle = _poll(workers, report)
            if progress and time.monotonic() > next_progress:
                progress(report)
                next_progress = time.monotonic() + every_s
            done = (count is not None and sent >= count) or (
                deadline and time.monotonic() > deadline
            )
            if done:
                if len(idle) == len(workers):
                    return report
                continue
            for worker in idle:
                # each shipped spec first (so a short run covers a new one), then at random
                relative, text = specs[sent] if sent < len(specs) else rng.choice(specs)
                mutated, _ = mutate(rng, text, relative.endswith(".yaml"))
                worker.send(relative, mutated)
                sent += 1
    finally:
        for worker in workers:
            worker.kill()
