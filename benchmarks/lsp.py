"""`python -m benchmarks.lsp [--rounds N]`: how fast a warm `dsl lsp` answers diagnostics
after an edit, as an editor sees it.

The server runs as a subprocess speaking LSP over stdio (pygls' client). Each example is
opened, checked once (the warm-up: imports, torch's registry, the standard library's
parse), then edited `rounds` times, one edit at a time: each edit gives a net parameter's
default a value it has not had before (so the net is elaborated again with a new width,
and no earlier check's result could answer) and the time is taken from sending
`didChange` to receiving the `publishDiagnostics` of that version. The debounce is set to
0 ms for the "server" rows (the check itself, and the messages there and back), one edit
right after the last one's diagnostics. The "editor" rows leave it at its default (50 ms,
on the leading edge) and pause 100 ms before each edit, as a user pauses in typing: what
a user waits for after a keystroke that follows a pause (a keystroke within 50 ms of the
last waits the debounce too, and only the last of a burst is checked). The server logs each
check's CPU time on its thread: on a busy machine that is the figure that does not count
waiting for a core.

`--against DIR` compares with the server of another checkout of netdsl (e.g. a `git
archive` of an older commit, with its `dsl/grammar` and `dsl/blocks` links): for each
example and setting, `--pairs` runs of each server alternate (which goes first alternates
too) and each pair gives the ratio of their medians, ours over theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from benchmarks.harness import ROOT, Row, summary

CASES = {  # example -> (text to edit, its replacement for edit n, target ms)
    "examples/unet.net": ("n_classes=2", "n_classes={}", 100.0),
    "examples/resnet50.net": ("num_classes=1000", "num_classes={}", 200.0),
}


_REPORT = re.compile(r"version (\d+)\b.*\(([\d.]+) ms CPU\)")


EDITOR_PAUSE_S = 0.1  # before each edit of the "editor" rows: twice the default debounce
SETTINGS = {"server": (0, 0.0), "editor": (None, EDITOR_PAUSE_S)}  # debounce ms, pause s


async def _latencies(
    case: str, rounds: int, debounce_ms: int | None, pause_s: float = 0.0, root: Path = ROOT
) -> tuple[list[float], list[float]]:
    """Milliseconds from each edit to its diagnostics on a warm server, and the CPU time of
    each check on the server's thread (from its log message)."""
    client = LanguageClient("netdsl-benchmark", "1")
    published: dict[int, asyncio.Future[None]] = {}
    cpu: dict[int, float] = {}

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def _logged(params: types.LogMessageParams) -> None:
        found = _REPORT.search(params.message)
        if found:
            cpu[int(found.group(1))] = float(found.group(2))

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _published(params: types.PublishDiagnosticsParams) -> None:
        if params.diagnostics:
            raise RuntimeError(f"{case} has diagnostics: {params.diagnostics[0].message}")
        waiting = published.get(params.version or 0)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    # `-m` imports dsl from the working directory first: the checkout at `root`.
    await client.start_io(sys.executable, "-m", "dsl.cli", "lsp", cwd=str(root))
    options = {"debounceMs": debounce_ms} if debounce_ms is not None else None
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=root.as_uri(),
            initialization_options=options,
        )
    )
    client.initialized(types.InitializedParams())
    path = root / case
    uri, text = path.as_uri(), path.read_text()
    old, new, _ = CASES[case]
    loop = asyncio.get_running_loop()
    published[1] = loop.create_future()
    item = types.TextDocumentItem(uri=uri, language_id="netdsl", version=1, text=text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
    await asyncio.wait_for(published[1], 120)
    samples = []
    for version in range(2, rounds + 3):
        edited = text.replace(old, new.format(version + 2))
        published[version] = loop.create_future()
        await asyncio.sleep(pause_s)
        start = time.perf_counter()
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=edited)],
            )
        )
        await asyncio.wait_for(published[version], 60)
        samples.append((time.perf_counter() - start) * 1000)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    # The first edit still warms the elaborator's paths.
    return samples[1:], [cpu[v] for v in range(3, rounds + 3) if v in cpu]


def run(rounds: int) -> list[Row]:
    """Per example: edit-to-diagnostics with the debounce off ("server") and at its default
    ("editor"), and the check's CPU time."""
    rows = []
    for case, (_, _, target) in CASES.items():
        server, cpu = asyncio.run(_latencies(case, rounds, *SETTINGS["server"]))
        editor, _ = asyncio.run(_latencies(case, rounds, *SETTINGS["editor"]))
        rows.append(_row(f"{case} (server, debounce 0 ms)", server, target))
        rows.append(_row(f"{case} (editor, default debounce, edits 100 ms apart)", editor, None))
        rows.append(_row(f"{case} (CPU time of the check)", cpu, None))
    return rows


def _row(case: str, values: list[float], target: float | None) -> Row:
    median, low, high = summary(values)
    return Row(
        section="lsp",
        case=case,
        unit="ms",
        median=median,
        min=low,
        max=high,
        n=len(values),
        target=f"< {target:.0f} ms" if target is not None else None,
        met=median < target if target is not None else None,
    )


def small_table(rows: list[Row]) -> str:
    """One line per example: the three measurements (median, min-max), the target, whether
    the server's median meets it."""
    head = "| example | server | editor | check CPU | target | met |"
    lines = [head, "| --- | --- | --- | --- | --- | --- |"]
    for server, editor, cpu in zip(rows[::3], rows[1::3], rows[2::3]):
        name = server.case.split(" ")[0]
        met = "yes" if server.met else "**no**"
        cells = " | ".join(_spread(row) for row in (server, editor, cpu))
        lines.append(f"| {name} | {cells} | {server.target} | {met} |")
    return "\n".join(lines)


def _spread(row: Row) -> str:
    return f"{row.median:.0f} ms ({row.min:.0f}-{row.max:.0f})"


def compare(against: Path, rounds: int, pairs: int) -> list[str]:
    """Per example and setting: the median of the per-pair ratios (ours / theirs), their
    spread, and each server's median of medians."""
    lines = []
    for case in CASES:
        for setting, (debounce, pause) in SETTINGS.items():
            medians: dict[Path, list[float]] = {ROOT: [], against: []}
            for pair in range(pairs):
                for root in (ROOT, against) if pair % 2 == 0 else (against, ROOT):
                    samples, _ = asyncio.run(_latencies(case, rounds, debounce, pause, root))
                    medians[root].append(statistics.median(samples))
            ratio, low, high = summary([a / b for a, b in zip(medians[ROOT], medians[against])])
            lines.append(
                f"| {case} | {setting} | {ratio:.2f} ({low:.2f}-{high:.2f}) "
                f"| {statistics.median(medians[ROOT]):.0f} ms "
                f"| {statistics.median(medians[against]):.0f} ms |"
            )
    head = "| example | setting | ours / theirs (min-max) | ours | theirs |"
    return [head, "| --- | --- | --- | --- | --- |", *lines]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lsp", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="edits per case (default 20)")
    parser.add_argument("--against", type=Path, help="another checkout's server to compare")
    parser.add_argument("--pairs", type=int, default=6, help="runs of each, with --against")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    if args.against is not None:
        print("\n".join(compare(args.against.resolve(), args.rounds, args.pairs)))
        command = f"--rounds {args.rounds} --against {args.against} --pairs {args.pairs}"
    else:
        print(small_table(run(args.rounds)))
        command = f"--rounds {args.rounds}"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"\npython -m benchmarks.lsp {command} on {stamp}, "
        f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
