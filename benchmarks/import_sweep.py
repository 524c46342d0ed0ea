"""`python -m benchmarks.import_sweep [--only NAME ...] [--out FILE]`: import every
classification builder of `torchvision.models.list_models(module=torchvision.models)` with
`dsl.from_module` and print the README's "Importing torchvision" table.

Each model is built with its defaults (no weights) and imported with its check: the spec is
built, loads the model's state_dict strictly (same keys, same order), and gives equal
outputs in eval and training mode on a batch of 2 images (64x64; 224 where the model fixes
its size, 299 for Inception v3). Spec lines are the `.net` text's non-blank, non-comment
lines; Python lines count the same way the source of the model's own classes (every class
in its module tree outside torch), docstrings left out.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.line_counts import python_lines, spec_lines

FIXED_SIZE = {"inception_v3": 299, "maxvit_t": 224}


@dataclass
class Row:
    model: str
    parameters: int
    faithful: bool
    spec_lines: int
    python_lines: int
    seconds: float
    why: str = ""


def image_size(name: str) -> int:
    return FIXED_SIZE.get(name, 224 if name.startswith("vit_") else 64)


def model_python_lines(model: object) -> int:
    """Source lines of the model's own classes (those outside torch), grouped by file."""
    by_file: dict[str, list[str]] = {}
    for module in model.modules():  # type: ignore[attr-defined]
        cls = type(module)
        if cls.__module__.startswith("torch."):
            continue
        path = inspect.getsourcefile(cls)
        if path is not None and cls.__name__ not in by_file.setdefault(path, []):
            by_file[path].append(cls.__name__)
    return sum(python_lines(Path(path), names) for path, names in by_file.items())


def sweep_one(name: str, max_params: float | None) -> Row:
    import torch
    import torchvision

    import dsl

    try:  # cheap on meta; a builder that computes widths with tensors cannot run there
        with torch.device("meta"):
            count = sum(p.numel() for p in torchvision.models.get_model(name).parameters())
    except NotImplementedError:
        count = sum(p.numel() for p in torchvision.models.get_model(name).parameters())
    if max_params is not None and count > max_params * 1e6:
        why = f"not run: over {max_params:g}M parameters (--max-params)"
        return Row(name, count, False, 0, 0, 0.0, why)
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None)
    size = image_size(name)
    started = time.perf_counter()
    result = dsl.from_module(model, torch.randn(2, 3, size, size))
    seconds = time.perf_counter() - started
    unsupported = result.report.of_kind("unsupported")
    why = str(unsupported[0]) if unsupported else "; ".join(result.problems)
    return Row(
        name,
        sum(p.numel() for p in model.parameters()),
        result.faithful,
        spec_lines(result.text()),
        model_python_lines(model),
        round(seconds, 1),
        "" if result.faithful else why,
    )


def table(rows: list[Row]) -> str:
    faithful = sum(r.faithful for r in rows)
    run = [r for r in rows if r.spec_lines]
    lines = [
        f"{faithful} of {len(rows)} classification builders import faithfully "
        f"({len(rows) - len(run)} not run).",
        "",
        "| model | parameters | faithful | spec lines | Python lines | import + check (s) |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in run:
        mark = "yes" if r.faithful else "no (see below)"
        lines.append(
            f"| {r.model} | {r.parameters / 1e6:.1f}M | {mark} | {r.spec_lines} | "
            f"{r.python_lines} | {r.seconds} |"
        )
    failed = [r for r in rows if not r.faithful]
    if failed:
        lines.append("")
        lines += [f"- {r.model}: {r.why}" for r in failed]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_sweep", description=__doc__)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these builders only")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON (after each model)")
    parser.add_argument(
        "--max-params", type=float, help="skip models over this many million parameters"
    )
    parser.add_argument("--resume", action="store_true", help="keep the rows --out holds already")
    args = parser.parse_args(argv)
    import torchvision

    names = args.only or torchvision.models.list_models(module=torchvision.models)
    previous: dict[str, Row] = {}
    if args.resume and args.out is not None and args.out.exists():
        previous = {row["model"]: Row(**row) for row in json.loads(args.out.read_text())}
    done = {name: r for name, r in previous.items() if r.spec_lines}  # the rest run now
    rows: list[Row] = []
    for name in names:
        rows.append(done.get(name) or sweep_one(name, args.max_params))
        verdict = "faithful" if rows[-1].faithful else rows[-1].why or "NOT faithful"
        print(f"{name}: {verdict} ({rows[-1].seconds} s)", file=sys.stderr)
        if args.out is not None:  # the rows so far, and those of an earlier run still to come
            later = [previous[n] for n in names[len(rows) :] if n in previous]
            args.out.write_text(json.dumps([asdict(r) for r in [*rows, *later]], indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
