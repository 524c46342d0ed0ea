"""Scale: validate (and build) time per layer from 1,000 to 10,000 layers, written three
ways (a Sequential, named layers in a graph body, block instances), and 100,000 named
`Identity` members in a fresh process (issue 18: linear growth, < 60 s and < 1 GiB)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks import references as refs
from benchmarks.harness import Row, paired_row, run_child, summary


def named_spec(layers: int, layer: str = "Linear(16, 16)") -> str:
    """A graph body of `layers` named layers applied in a chain: `x = l0(x): Linear(16, 16)`."""
    lines = ["net Named:", "    input x: [N, 16]"]
    lines += [f"    x = l{i}(x): {layer}" for i in range(layers)]
    return "\n".join([*lines, "    return x"]) + "\n"


def blocks_spec(layers: int) -> str:
    """`layers` instances of a small block, each applied once."""
    head = ["block Lin(w):", "    input x", "    y = lin(x): Linear(w)", "    return relu(y)", ""]
    lines = [*head, "net Blocks:", "    input x: [N, 16]"]
    lines += [f"    x = b{i}(x): Lin(16)" for i in range(layers)]
    return "\n".join([*lines, "    return x"]) + "\n"


KINDS: dict[str, Callable[[int], str]] = {
    "Sequential (Linear/ReLU)": refs.stack_spec,
    "named layers (x = l{i}(x): Linear)": named_spec,
    "blocks (x = b{i}(x): Lin(16))": blocks_spec,
}

# 100,000 members take a `for` loop: a file holds at most 100,000 lines, and the work budget
# (E601) is raised for the run, as its hint tells a user to.
_IDENTITY_CHILD = """
import torch
import dsl
text = (
    "net Members:\\n    input x: [N, 16]\\n    for i in range({layers}):\\n"
    "        x = m{{i}}(x): Identity()\\n    return x\\n"
)
rss0 = status("VmRSS")
w0, c0 = time.perf_counter(), time.process_time()
resolved = dsl.validate(text)
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
assert len(resolved.root.members) == {layers}
print(json.dumps(dict(cpu=cpu, wall=wall, peak_mb=status("VmHWM") - rss0)))
"""


def scale(settings: Any, log: Callable[[str], None]) -> list[Row]:
    from dsl.build.compile import compile_resolved
    from dsl.build.resolve import resolve

    rows: list[Row] = []
    for kind, make in KINDS.items():
        per_layer: dict[int, list[float]] = {}
        for layers in (1_000, 10_000):
            text = make(layers)
            rounds = (
                (3 if layers == 1_000 else 1) if settings.quick else (5 if layers == 1_000 else 3)
            )
            cpu: list[float] = []
            wall: list[float] = []
            for _ in range(rounds):
                w0, c0 = time.perf_counter(), time.process_time()
                resolved = resolve(text)  # dsl.validate(text) is exactly this
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
            per_layer[layers] = [c / layers for c in cpu]
            row = paired_row("scale", f"validate {layers:,} {kind}: CPU", cpu, None, None)
            row.note = f"{row.median / layers * 1e3:.0f} us/layer; wall {summary(wall)[0]:.2f} s"
            rows.append(row)
            log(f"  validate {layers} {kind}: {row.note}")
            if kind.startswith("Sequential"):
                c0 = time.process_time()
                compile_resolved(resolved)
                build = paired_row(
                    "scale",
                    f"compile {layers:,} {kind}: CPU",
                    [time.process_time() - c0],
                    None,
                    None,
                )
                build.note = f"{build.median / layers * 1e3:.0f} us/layer"
                rows.append(build)
        rows.append(_growth(kind, per_layer))
    rows.extend(_identity(settings, log))
    return rows


def _growth(kind: str, per_layer: dict[int, list[float]]) -> Row:
    """Median CPU time per layer at 10,000 over the same at 1,000."""
    big, small = summary(per_layer[10_000])[0], summary(per_layer[1_000])[0]
    ratio = big / small
    row = Row(
        "scale",
        f"validate per layer, 10,000 vs 1,000: {kind}",
        "us/layer",
        big * 1e6,
        *(min(per_layer[10_000]) * 1e6, max(per_layer[10_000]) * 1e6),
        len(per_layer[10_000]),
    )
    row.ref_name = "1,000 layers"
    row.ref_median, row.ref_min, row.ref_max = (
        small * 1e6,
        min(per_layer[1_000]) * 1e6,
        max(per_layer[1_000]) * 1e6,
    )
    row.ratio, row.target, row.met = ratio, "ratio ≤ 1.2", ratio <= 1.2
    return row


def _identity(settings: Any, log: Callable[[str], None]) -> list[Row]:
    layers = 100_000
    work = {"NETDSL_MAX_WORK": str(10**9)}
    got = run_child(_IDENTITY_CHILD.format(layers=layers), timeout=600, env_extra=work)
    row = Row(
        "scale",
        f"validate {layers:,} named Identity, new process: CPU",
        "s",
        got["cpu"],
        got["cpu"],
        got["cpu"],
        1,
        note=f"wall {got['wall']:.1f} s",
    )
    row.target, row.met = "< 60 s (CPU)", got["cpu"] < 60
    memory = Row(
        "scale",
        f"validate {layers:,} named Identity: peak RSS beyond import torch",
        "MiB",
        got["peak_mb"],
        got["peak_mb"],
        got["peak_mb"],
        1,
    )
    memory.target, memory.met = "< 1024 MiB", got["peak_mb"] < 1024
    log(
        f"  {layers} Identity: {got['cpu']:.1f} s CPU, {got['wall']:.1f} s wall, {got['peak_mb']:.0f} MiB"
    )
    return [row, memory]
