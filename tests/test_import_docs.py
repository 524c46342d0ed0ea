"""docs/importing.md's before/after example is the importer's real output: the Python
model of its `python` block, imported, gives exactly the spec of the `net` block after it
(and that spec is faithful)."""

from __future__ import annotations

import re
import types

import torch

import dsl
from tests.test_docs import ROOT

PAGE = ROOT / "docs" / "importing.md"


def _example() -> tuple[str, str]:
    """The Python and the .net text of the page's "Before and after" section."""
    section = PAGE.read_text().split("## Before and after", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.S)
    net = re.search(r"```net\n(.*?)```", section, re.S)
    assert python is not None and net is not None
    return python.group(1), net.group(1)


def test_the_before_and_after_example_is_the_importers_output() -> None:
    python, net = _example()
    module = types.ModuleType("importing_example")
    exec(compile(python, str(PAGE), "exec"), module.__dict__)  # the page's own example code
    torch.manual_seed(0)
    result = dsl.from_module(module.SmallNet(), torch.randn(2, 3, 32, 32))
    assert result.faithful, result.problems
    assert result.text() == net
    assert not result.report.findings
