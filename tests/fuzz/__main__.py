"""`python -m tests.fuzz --minutes N [--seed S] [--jobs J] [--out findings.txt]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.fuzz.campaign import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=None, help="write every finding and its input here"
    )
    args = parser.parse_args()
    if args.minutes is None and args.count is None:
        parser.error("give --minutes or --count")
    report = run(seed=args.seed, count=args.count, minutes=args.minutes, jobs=args.jobs)
    print(f"inputs: {report.inputs}  outcomes: {dict(report.outcomes)}")
    print(
        f"peak memory growth: {report.peak_growth_mib:.0f} MiB  slowest input: {report.slowest_s:.2f} s"
    )
    for signature in report.findings:
        print(" ", signature)
    if args.out:
        blocks = [f"### {s}\n{text}\n" for s, (_, text) in report.findings.items()]
        args.out.write_text("\n".join(blocks))
    return 1 if report.escapes() else 0


if __name__ == "__main__":
    sys.exit(main())
