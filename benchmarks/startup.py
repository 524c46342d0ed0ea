"""Start-up: what a user pays in a new process, beyond `import torch` (issue 18).

Each case runs in fresh interpreters (bytecode cached, as installed, and the parses of
unchanged spec files kept, as netdsl keeps them: dsl/syntax/parse_cache.py; one case reads
a file edited since, whose parse is not kept), ours and the
reference in turn, in paired rounds whose order alternates; a row's ratio is the median of
the per-round ratios, with their spread. Times are CPU time of the process (what the
machine's load disturbs least) with wall beside it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.harness import Row, run_child, set_ratio, summary

_CHILD = """

import torch  # the baseline: everything below is beyond `import torch`
{setup}
reset_peak()
rss0 = status("VmRSS")
w0, c0 = time.perf_counter(), time.process_time()
{body}
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
print(json.dumps(dict(cpu=cpu, wall=wall, peak_mb=status("VmHWM") - rss0)))
"""

# unet.net with a comment no run wrote before, always at one path: its parse is not kept.
_EDITED_COPY = """
import pathlib, tempfile, uuid
edited = pathlib.Path(tempfile.gettempdir()) / "netdsl-benchmark-edited.net"
edited.write_text(open("examples/unet.net").read() + f"# edit {uuid.uuid4()}\\n")
"""

GPT_175B = dict(n_layer=96, d_model=12288, n_head=96, vocab=50257, block_size=2048)

# name, (setup, body) of ours, (setup, body) of the reference or None, target ms, ratio limit
CASES: list[tuple[str, tuple[str, str], tuple[str, str] | None, float | None, float | None]] = [
    (
        "import dsl + first validate of examples/unet.net",
        ("", "import dsl\ndsl.validate('examples/unet.net')"),
        None,
        60.0,
        None,
    ),
    (
        "import dsl + first validate of examples/unet.net, edited since (its parse not kept)",
        (_EDITED_COPY, "import dsl\ndsl.validate(str(edited))"),
        None,
        None,
        None,
    ),
    (
        "import dsl + first build_model of the MNIST MLP",
        ("", "import dsl\ndsl.build_model('examples/mnist_mlp.net')"),
        ("from tests.references import MnistMLP", "MnistMLP()"),
        None,
        10.0,
    ),
    (
        "import dsl + validate GPT 175B (whole process)",
        ("", f"import dsl\ndsl.validate('examples/gpt.net', params={GPT_175B!r})"),
        None,
        None,
        None,
    ),
]


def startup(settings: Any, log: Callable[[str], None]) -> list[Row]:
    rounds = 3 if settings.quick else 7
    rows: list[Row] = []
    for name, ours, ref, target_ms, limit in CASES:
        run_child(_CHILD.format(setup=ours[0], body=ours[1]))  # writes bytecode, keeps parses
        got: dict[str, list[dict[str, float]]] = {"ours": [], "ref": []}
        for r in range(rounds):
            order = [("ours", ours), ("ref", ref)]
            for key, case in order if r % 2 == 0 else order[::-1]:
                if case is not None:
                    got[key].append(run_child(_CHILD.format(setup=case[0], body=case[1])))
        rows.extend(_rows(name, got, ref is not None, target_ms, limit))
        log(f"  {name}: {rows[-2].median:.0f} ms CPU, {rows[-1].median:.1f} MiB")
    return rows


def _rows(
    name: str,
    got: dict[str, list[dict[str, float]]],
    has_ref: bool,
    target_ms: float | None,
    limit: float | None,
) -> list[Row]:
    cpu = [r["cpu"] * 1e3 for r in got["ours"]]
    wall = [r["wall"] * 1e3 for r in got["ours"]]
    row = Row("startup", f"{name}: CPU", "ms", *summary(cpu), len(cpu))
    row.note = f"wall {summary(wall)[0]:.0f} ms"
    if has_ref:
        ref = [r["cpu"] * 1e3 for r in got["ref"]]
        row.ref_name = "hand-written constructor, new process"
        row.ref_median, row.ref_min, row.ref_max = summary(ref)
        walls = [r["wall"] for r in got["ref"]]
        set_ratio(
            row,
            [a / b for a, b in zip(cpu, ref) if b],
        )
        row.extra["wall_ratios"] = [a["wall"] / b for a, b in zip(got["ours"], walls) if b]
    if target_ms is not None:
        row.target, row.met = f"≤ {target_ms:.0f} ms", row.median <= target_ms
    if limit is not None and row.ratio is not None:
        row.target, row.met = f"ratio ≤ {limit:g}", row.ratio <= limit
    peak = [r["peak_mb"] for r in got["ours"]]
    memory = Row(
        "startup", f"{name}: peak RSS beyond import torch", "MiB", *summary(peak), len(peak)
    )
    return [row, memory]
