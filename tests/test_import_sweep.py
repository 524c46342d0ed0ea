"""The README's "Importing torchvision" table is `python -m benchmarks.import_sweep`'s
output: a sample of its rows is measured again here (all but the seconds), and the
reasons it gives for the models that do not import are the importer's."""

from __future__ import annotations

import re

import pytest

from benchmarks.import_sweep import sweep_one
from tests.test_docs import ROOT

SAMPLE = ["squeezenet1_1", "shufflenet_v2_x0_5", "regnet_x_400mf"]


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Importing torchvision", 1)[1].split("\n## ", 1)[0]


def _row(name: str) -> list[str]:
    found = re.search(rf"^\| {name} \|(.*)\|$", _section(), re.M)
    assert found is not None, name
    return [cell.strip() for cell in found.group(1).split("|")]


@pytest.mark.parametrize("name", SAMPLE)
def test_a_row_of_the_sweep_is_measured_again(name: str) -> None:
    row = sweep_one(name, max_params=30)
    parameters, faithful, spec, python, _ = _row(name)
    assert parameters == f"{row.parameters / 1e6:.1f}M"
    assert faithful == ("yes" if row.faithful else "no (see below)")
    assert (int(spec), int(python)) == (row.spec_lines, row.python_lines)
    if not row.faithful:
        assert f"- {name}: {row.why}" in _section()


def test_the_table_counts_its_rows() -> None:
    section = _section()
    rows = re.findall(r"^\| (\w+) \| [0-9.]+M \| (yes|no \(see below\)) \|", section, re.M)
    faithful = sum(verdict == "yes" for _, verdict in rows)
    assert f"{faithful} of 80 classification builders import faithfully (" in section
