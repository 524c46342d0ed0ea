"""`python -m benchmarks [--quick] [--only SECTION ...]`: run the suite, print the table."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds and cases (under 10 minutes)"
    )
    parser.add_argument("--only", nargs="+", metavar="SECTION", help="run only these sections")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results.json"
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="write the table, with the command, date, commit and load, into README.md's "
        "Performance section (between its benchmarks:table markers)",
    )
    args = parser.parse_args(argv)

    import torch

    from benchmarks.harness import ROOT, load_warning, table, write_readme, write_results
    from benchmarks.suite import SECTIONS, Settings

    names = args.only or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
    settings = Settings(quick=args.quick)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python -m benchmarks"
        + (" --quick" if args.quick else "")
        + (f" --only {' '.join(names)}" if args.only else ""),
        "quick": args.quick,
        "commit": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "default_threads": torch.get_num_threads(),
        "loadavg_start": os.getloadavg(),
    }

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows = []
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        warning = load_warning()
        if warning:
            meta.setdefault("load_warnings", []).append(f"[{name}] {warning}")
        log(f"[{name}]" + (f" {warning}" if warning else ""))
        try:
            rows.extend(SECTIONS[name](settings, log))
        except Exception as exc:  # one broken section must not lose the others' numbers
            meta.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
            log(f"[{name}] failed: {type(exc).__name__}: {exc}")
        log(f"[{name}] {time.perf_counter() - t0:.0f} s")
        write_results(args.out, rows, meta)  # after every section, so a late failure keeps the rest
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["loadavg_end"] = os.getloadavg()
    write_results(args.out, rows, meta)
    said = (
        f"`{meta['command']}` on {meta['date']} at commit {commit}, {meta['seconds']} s; "
        f"torch {meta['torch']}, {meta['cpu_count']} CPUs, default threads "
        f"{meta['default_threads']}, load average {meta['loadavg_start'][0]:.1f} -> "
        f"{meta['loadavg_end'][0]:.1f}"
    )
    print(table(rows))
    print(f"\n{said}; results in {args.out}")
    for warning in meta.get("load_warnings", []):
        print(warning)
    if args.readme:
        write_readme(ROOT / "README.md", f"{said}.\n\n{table(rows)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
