"""`dsl.summary(...)`: a table object (rows as data, `str()`, `.to_json()`), the columns it
shows, shapes that stay symbolic through the whole net, and FLOPs per sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dsl
from dsl.cli import main
from dsl.errors import ArgumentError
from dsl.tools.summary import Summary

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def test_summary_is_a_table_object() -> None:
    table = dsl.summary(EXAMPLES / "unet.net", depth=1)
    assert isinstance(table, Summary)
    by_name = {row.name: row for row in table.rows}
    assert by_name["down1"].output == "[B, 128, H/2, W/2]"
    assert by_name["down4"].output == "[B, 512, H/16, W/16]"
    assert by_name["down1"].params == 221_696
    text = str(table)
    assert "down1" in text and "down1.maxpool_conv" not in text  # depth=1
    assert json.loads(json.dumps(table.to_json()))["rows"][0]["name"] == "UNet"


def test_columns_pick_what_str_shows() -> None:
    table = dsl.summary(EXAMPLES / "mnist_mlp.net", columns=["output", "flops"], depth=0)
    header = str(table).splitlines()[0].split()
    assert header == ["Module", "Output", "shape", "FLOPs"]
    with pytest.raises(ArgumentError, match="no summary column 'flop'"):
        dsl.summary(EXAMPLES / "mnist_mlp.net", columns=["flop"])


def test_cli_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(EXAMPLES / "unet.net"), "--columns", "params", "--depth", "0"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["Module", "Params"]
    assert main(["summary", str(EXAMPLES / "unet.net"), "--columns", "shape"]) == 2
    assert "argument --columns: no summary column 'shape'" in capsys.readouterr().err


def test_input_and_a_built_model() -> None:
    table = dsl.summary(EXAMPLES / "resnet50.net", input=(1, 3, 224, 224), depth=1)
    assert {r.name: r.output for r in table.rows}["layer4"] == "[1, 2048, 7, 7]"
    model = dsl.build_model(EXAMPLES / "mnist_mlp.net", seed=0)
    measured = dsl.summary(model, input=[5, 1, 28, 28])
    assert measured.output == "[5, 10]" and measured.batch == 5


def test_symbolic_shapes_through_the_whole_net() -> None:
    resnet = {r.name: r.output for r in dsl.summary(EXAMPLES / "resnet50.net").rows}
    assert resnet["layer4"] == "[B, 2048, H/32, W/32]"
    assert resnet["avgpool"] == "[B, 2048, 1, 1]"
    gpt = dsl.summary(EXAMPLES / "gpt.net", depth=2)
    outputs = {r.name: r.output for r in gpt.rows}
    assert outputs["h.0"].startswith("[B, T, ") and gpt.output.startswith("[B, T, ")


def test_an_unpadded_convolution_is_a_difference(tmp_path: Path) -> None:
    spec = tmp_path / "valid.net"
    spec.write_text(
        "net Valid:\n    input x: [B, 3, H, W]\n    c = Conv2d(8, 3)\n    f = Flatten()\n"
        "    return f(c(x))\n"
    )
    outputs = {r.name: r.output for r in dsl.summary(spec).rows}
    assert outputs["c"] == "[B, 8, H-2, W-2]"
    assert outputs["f"] == "[B, 11040]"  # 8*(H-2)*(W-2) has no formula of one symbol


def test_flops_are_per_sample_with_the_batch_stated() -> None:
    one = dsl.summary(EXAMPLES / "resnet18.net", input=(1, 3, 224, 224))
    four = dsl.summary(EXAMPLES / "resnet18.net", input=(4, 3, 224, 224))
    assert four.flops == 4 * one.flops
    assert four.flops_per_sample == one.flops_per_sample == one.flops
    assert "FLOPs per sample:     3.63G" in str(four) and "the batch of 4 measured" in str(four)
