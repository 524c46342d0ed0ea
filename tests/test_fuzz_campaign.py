"""A fixed-seed campaign of the mutation fuzzer (tests/fuzz): mutated copies of every
shipped spec, each validated (and, where valid, built) in a worker process under a time
and a memory limit, give only DSLErrors — no other exception, no timeout, no memory
outlier. `python -m tests.fuzz --minutes N` runs a long campaign by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz import campaign
from tests.fuzz.campaign import corpus, run

INPUTS = 600  # about a minute on two cores
SEED = 20261206


def test_a_fixed_seed_campaign_finds_no_escape() -> None:
    report = run(seed=SEED, count=INPUTS, jobs=2)
    assert report.inputs >= INPUTS
    escapes = {s: detail for s, (kind, detail) in report.findings.items() if kind != "gap"}
    assert not escapes, "\n\n".join(f"{s}\n{d[:2000]}" for s, d in escapes.items())
    assert report.outcomes["rejected"] > 0 and report.outcomes["ok"] > 0  # it did mutate
    assert set(report.seeds) == {name for name, _ in corpus()}  # every shipped spec


def test_the_seed_corpus_is_every_spec_shipped_when_a_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = campaign.ROOT
    assert {"examples/gpt.net", "examples/unet.yaml", "blocks/resnet.net"} <= {
        name for name, _ in corpus()
    }
    every = {
        str(p.relative_to(shipped))
        for d in ("examples", "blocks")
        for p in (shipped / d).rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc", ".md")
    }
    assert every == {name for name, _ in corpus()}  # nothing in them but specs, all seeds
    for name in ("examples/added_today.net", "examples/more/deep.yml", "blocks/new.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("net N:\n    input x: [B, 2]\n    return x\n")
    (tmp_path / "examples" / "notes.txt").write_text("not a spec")
    monkeypatch.setattr(campaign, "ROOT", tmp_path)
    assert [name for name, _ in corpus()] == [
        "blocks/new.yaml",
        "examples/added_today.net",
        "examples/more/deep.yml",
    ]
