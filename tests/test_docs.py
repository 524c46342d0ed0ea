"""Every spec in the docs is checked: each ```net block of docs/*.md and README.md is a
complete spec (it defines a net or a block) that parses and passes `dsl validate`, and each
```yaml block that has `defs:` is a spec that parses and validates the same way.

Fragments (a few statements, an abridged spec with `...`) are written in plain ``` or
```text blocks, never ```net, so that every block tagged as a spec is one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsl.cli import validate_file
from dsl.syntax.parse_net import parse_net
from dsl.syntax.parse_yaml import parse_yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
DEFINITION = re.compile(r"^(net|block)\s+[A-Za-z_]", re.MULTILINE)


def blocks(tag: str) -> list[tuple[str, str]]:
    """(id, text) of every fenced block tagged `tag`: the id is file:line."""
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) == tag:
                line = text.count("\n", 0, match.start()) + 1
                out.append((f"{doc.relative_to(ROOT)}:{line}", match.group(2)))
    return out


NET_BLOCKS = blocks("net")
YAML_SPECS = [
    (where, text) for where, text in blocks("yaml") if re.search(r"^defs:", text, re.MULTILINE)
]


def test_the_docs_have_specs() -> None:
    assert len(NET_BLOCKS) >= 10
    assert YAML_SPECS


def _validate(tmp_path: Path, name: str, text: str) -> None:
    # Written to a temporary directory: `from resnet import ...` resolves to the standard
    # library (blocks/) from anywhere.
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    errors = validate_file(path, {})
    assert not errors, "\n\n".join(e.render() for e in errors)


@pytest.mark.parametrize(("where", "text"), NET_BLOCKS, ids=[w for w, _ in NET_BLOCKS])
def test_net_block_is_a_complete_valid_spec(tmp_path: Path, where: str, text: str) -> None:
    assert DEFINITION.search(text), (
        f"{where}: a ```net block must be a complete spec (define a net or block); tag fragments ```text"
    )
    parse_net(text, f"{where}.net")
    _validate(tmp_path, "doc.net", text)


@pytest.mark.parametrize(("where", "text"), YAML_SPECS, ids=[w for w, _ in YAML_SPECS])
def test_yaml_block_is_a_valid_spec(tmp_path: Path, where: str, text: str) -> None:
    parse_yaml(text, f"{where}.yaml")
    _validate(tmp_path, "doc.yaml", text)


def test_fence_pattern_finds_tagged_blocks() -> None:
    sample = "x\n```net\nnet A = Sequential:\n    input x: [N, 2]\n    Linear(2)\n```\n```text\nfoo\n```\n"
    found = [(m.group(1), m.group(2)) for m in FENCE.finditer(sample)]
    assert found == [
        ("net", "net A = Sequential:\n    input x: [N, 2]\n    Linear(2)\n"),
        ("text", "foo\n"),
    ]
