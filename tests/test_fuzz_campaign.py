"""A fixed-seed campaign of the mutation fuzzer (tests/fuzz): mutated copies of every
shipped spec, each validated (and, where valid, built) in a worker process under a time
and a memory limit, give only DSLErrors — no other exception, no timeout, no memory
outlier. `python -m tests.fuzz --minutes N` runs a long campaign by hand."""

from __future__ import annotations

from tests.fuzz.campaign import run

INPUTS = 600  # about a minute on two cores
SEED = 20261206


def test_a_fixed_seed_campaign_finds_no_escape() -> None:
    report = run(seed=SEED, count=INPUTS, jobs=2)
    assert report.inputs >= INPUTS
    escapes = {s: detail for s, (kind, detail) in report.findings.items() if kind != "gap"}
    assert not escapes, "\n\n".join(f"{s}\n{d[:2000]}" for s, d in escapes.items())
    assert report.outcomes["rejected"] > 0 and report.outcomes["ok"] > 0  # it did mutate
