"""`python -m tests.fuzz --minutes N [--count N] [--seed S] [--jobs J] [--out findings.txt]`.

Prints a progress line with the running totals every `--every` seconds and rewrites `--out`
each time, so a campaign that is killed (SIGTERM, SIGINT) still leaves its partial totals;
on SIGTERM or SIGINT it stops and prints the final totals it reached."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from tests.fuzz.campaign import Report, run


def _summary(report: Report, started: float) -> str:
    elapsed = time.monotonic() - started
    return (
        f"inputs: {report.inputs}  outcomes: {dict(report.outcomes)}\n"
        f"elapsed: {elapsed / 60:.1f} min ({report.inputs / max(elapsed, 1e-9):.1f} inputs/s)  "
        f"peak memory growth of one input: {report.peak_growth_mib:.0f} MiB  "
        f"worker growth: {report.residual_mib:.0f} MiB  "
        f"slowest input: {report.slowest_s:.2f} CPU s  findings: {len(report.findings)}"
    )


def _write(out: Path | None, report: Report, started: float) -> None:
    if out is None:
        return
    blocks = [f"### {s}\n{text}\n" for s, (_, text) in report.findings.items()]
    blocks += [
        f"### peak memory growth {report.peak_growth_mib:.0f} MiB, after:\n{report.heaviest}\n",
        f"### slowest input {report.slowest_s:.2f} CPU s:\n{report.slowest}\n",
    ]
    header = _summary(report, started).replace("\n", "  ")
    out.write_text(f"# {header}\n\n" + "\n".join(blocks))


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between progress lines")
    parser.add_argument(
        "--out", type=Path, default=None, help="write every finding and its input here"
    )
    args = parser.parse_args()
    if args.minutes is None and args.count is None:
        parser.error("give --minutes or --count")
    signal.signal(signal.SIGTERM, _stop)
    started, report = time.monotonic(), Report()

    def progress(partial: Report) -> None:
        print("progress", _summary(partial, started).replace("\n", "  "), flush=True)
        _write(args.out, partial, started)

    interrupted = False
    try:
        run(
            seed=args.seed,
            count=args.count,
            minutes=args.minutes,
            jobs=args.jobs,
            report=report,
            progress=progress,
            every_s=args.every,
        )
    except KeyboardInterrupt as stop:
        interrupted = True
        print(f"stopped by {stop or 'SIGINT'}; partial totals:")
    print(_summary(report, started))
    for signature in report.findings:
        print(" ", signature)
    _write(args.out, report, started)
    return 1 if report.escapes() or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
