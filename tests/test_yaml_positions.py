"""The YAML reader records where keywords and imported names are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import ir
from dsl.errors import UnknownNameError
from dsl.source import Span
from dsl.syntax.loader import Library, read_file
from dsl.syntax.parse_yaml import parse_yaml


def _layer(text: str) -> ir.Call:
    spec = parse_yaml(f"defs:\n  - net: X\n    body:\n      - layer: {text}\n", "t.yaml")
    layer = spec.defs[0].body[0]
    assert isinstance(layer, ir.Layer) and isinstance(layer.layer, ir.Call)
    return layer.layer


def test_a_misspelt_keyword_is_located_at_its_key() -> None:
    call = _layer("{Conv2d: {args: [3, 8], kernel_szie: 3}}")
    assert call.kwarg_spans == {"kernel_szie": Span("t.yaml", 4, 40, 4, 51)}


def test_keyword_spans_cover_every_keyword_even_quoted_ones() -> None:
    call = _layer('{Conv2d: {"padding": 1, stride: 2}}')
    assert call.kwarg_spans == {
        "padding": Span("t.yaml", 4, 27, 4, 34),
        "stride": Span("t.yaml", 4, 40, 4, 46),
    }


def test_keyword_spans_in_block_style() -> None:
    text = "defs:\n  - net: X\n    body:\n      - layer:\n          Linear:\n            in_features: 3\n"
    call = parse_yaml(text, "t.yaml").defs[0].body[0].layer
    assert call.kwarg_spans["in_features"][1:3] == (6, 13)


def test_imported_names_are_located() -> None:
    text = "imports:\n  - {from: parts, import: [Stem, Head]}\n  - from: other\n    import: Tail\n"
    first, second = parse_yaml(text, "t.yaml").imports
    assert first.name_spans == [Span("t.yaml", 2, 28, 2, 32), Span("t.yaml", 2, 34, 2, 38)]
    assert second.name_spans == [Span("t.yaml", 4, 13, 4, 17)]


def test_a_name_the_imported_file_lacks_is_reported_where_it_is_written(tmp_path: Path) -> None:
    (tmp_path / "parts.yaml").write_text("defs:\n  - block: Stem\n    body: []\n")
    main = tmp_path / "main.yaml"
    main.write_text("imports:\n  - from: parts\n    import:\n      - Stem\n      - Steam2\n")
    with pytest.raises(UnknownNameError) as caught:
        Library(tmp_path).unit(read_file(main, "main.yaml"), main)
    assert caught.value.span[1:5] == (5, 9, 5, 15)
