"""The language commands of `dsl`: fmt, convert, schema and blocks, checked by content."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dsl.cli import main
from dsl.syntax.loader import read_file

ROOT = Path(__file__).parent.parent
MESSY = """# a doc comment
net  A( n = 4 ):
    input x : [B, n]   # the input
    fc = Linear( 2,bias = False )
    return fc( x )
"""


def test_fmt_check_passes_on_the_shipped_specs(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in [*ROOT.glob("examples/*.net"), *ROOT.glob("blocks/*.net")]]
    assert main(["fmt", "--check", *files]) == 0
    assert f"0 files would reformat, {len(files)} unchanged" in capsys.readouterr().out


def test_fmt_rewrites_canonically_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "messy.net"
    path.write_text(MESSY)
    before = read_file(path)
    assert main(["fmt", "--check", str(path)]) == 1
    assert main(["fmt", str(path)]) == 0
    text = path.read_text()
    assert "net A(n=4):" in text and "fc = Linear(2, bias=false)" in text
    assert "# a doc comment" in text and "# the input" in text
    assert read_file(path) == before
    assert main(["fmt", "--check", str(path)]) == 0


def test_convert_both_ways_is_lossless(tmp_path: Path) -> None:
    source = tmp_path / "unet.net"
    shutil.copy(ROOT / "examples/unet.net", source)
    assert main(["convert", str(source), "-o", str(tmp_path / "unet.yaml")]) == 0
    assert "defs:" in (tmp_path / "unet.yaml").read_text()
    assert main(["convert", str(tmp_path / "unet.yaml"), "-o", str(tmp_path / "back.net")]) == 0
    assert (
        read_file(tmp_path / "back.net") == read_file(source) == read_file(tmp_path / "unet.yaml")
    )


def test_convert_of_a_broken_spec_is_a_diagnostic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.net"
    path.write_text("net A:\n    input x: [B, 4\n")
    assert main(["convert", str(path), "-o", str(tmp_path / "bad.yaml")]) == 1
    assert "bad.net:" in capsys.readouterr().err and not (tmp_path / "bad.yaml").exists()


def test_schema_describes_the_yaml_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["properties"]) == {"imports", "defs"}
    definitions = json.dumps(schema["$defs"])
    for key in ("let", "input", "return", "param", "buffer", "init", "base"):
        assert f'"{key}"' in definitions
    assert "__span__" not in definitions


def test_blocks_lists_the_library_and_shows_docs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["blocks"]) == 0
    listing = capsys.readouterr().out
    for name in (
        "DoubleConv",
        "Bottleneck",
        "ResNet",
        "VGG",
        "ConvBNAct",
        "MLP",
        "TransformerBlock",
    ):
        assert name in listing
    assert main(["blocks", "Bottleneck"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("from resnet import Bottleneck") and "groups, base_width" in shown
    assert main(["blocks", "Bottlenek"]) == 1
    assert "did you mean 'Bottleneck'?" in capsys.readouterr().err
