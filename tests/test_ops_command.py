"""`dsl ops` lists `catalog.op_names()` grouped by namespace; docs/language.md shows its
output, which tests/test_doc_outputs.py compares with the command's (the list in the docs
is generated, never written by hand)."""

from __future__ import annotations

import pytest

from dsl.cli import main
from dsl.torchlib import catalog
from tests.test_docs import ROOT


def test_ops_lists_every_op_once_by_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    names = catalog.op_names()
    assert out.startswith(f"{len(names)} ops a graph body may call\n")
    listed = [
        f"{header.split(' (')[0]}.{name}" if header.startswith("torch.") else name
        for header, _, body in (group.partition("\n") for group in out.split("\n\n")[1:])
        for name in body.split()
    ]
    assert sorted(listed) == sorted(names)
    assert {"sin", "cos", "einsum", "torch.linalg.norm", "torch.fft.fft"} <= set(listed)


def test_the_language_docs_show_the_generated_list() -> None:
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    assert "```text\n$ dsl ops\n" in text
