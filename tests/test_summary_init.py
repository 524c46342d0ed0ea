"""`dsl summary --init`: for every parameter, the init rule (or default) that set it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dsl
from dsl.build.compile import BUILT
from dsl.build.resolve import resolve
from dsl.cli import main
from dsl.tools.summary import init_rows

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
KAIMING = 'kaiming_normal(mode="fan_out", nonlinearity="relu")'


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def recipe_line() -> int:
    lines = (ROOT / "blocks" / "resnet.net").read_text(encoding="utf-8").splitlines()
    return next(
        i for i, line in enumerate(lines, 1) if line.strip().startswith("resnet(zero_init_residual")
    )


def test_resnet_json_names_the_recipe_rule_for_every_parameter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "summary", EXAMPLES / "resnet18.net", "--init", "--format", "json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)["init"]}
    model = dsl.build_model(EXAMPLES / "resnet18.net", device="meta")
    assert list(rows) == [name for name, _ in model.named_parameters()]
    where = f"resnet.net:{recipe_line()}"
    for name in ("conv1.weight", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight"):
        assert rows[name]["init"] == KAIMING
        assert rows[name]["rule"] == "Conv2d.weight"
        assert rows[name]["recipe"] == "resnet"
        assert rows[name]["spec"] == where
    assert rows["bn1.weight"]["init"] == "constant(1)"
    assert rows["layer4.1.bn2.bias"]["init"] == "constant(0)"
    assert rows["layer4.1.bn2.bias"]["rule"] == "BatchNorm2d.bias"
    for name in ("fc.weight", "fc.bias"):  # no rule for Linear: its own reset_parameters
        assert rows[name]["init"] == "default (reset_parameters)"
        assert (
            rows[name]["rule"] == "" and rows[name]["recipe"] is None and rows[name]["spec"] == ""
        )
    assert rows["conv1.weight"]["shape"] == [64, 3, 7, 7]


def test_resnet_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", EXAMPLES / "resnet18.net", "--init", "--depth", "1")
    assert code == 0
    table = out[out.index("Initialised by") :]
    conv = next(line for line in table.splitlines() if line.startswith("conv1.weight "))
    assert (
        KAIMING in conv
        and "Conv2d.weight (resnet() recipe)" in conv
        and conv.endswith(f"resnet.net:{recipe_line()}")
    )
    fc = next(line for line in table.splitlines() if line.startswith("fc.weight "))
    assert fc.split()[-2:] == ["default", "(reset_parameters)"]


def test_without_flag_there_is_no_init_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", EXAMPLES / "resnet18.net", "--depth", "0")
    assert code == 0 and "Initialised by" not in out
    code, out, _ = run(
        capsys, "summary", EXAMPLES / "resnet18.net", "--depth", "0", "--format", "json"
    )
    assert "init" not in json.loads(out)


def test_declared_params_show_their_initialiser(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "summary", EXAMPLES / "custom_layer.net", "--init", "--format", "json"
    )
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)["init"]}
    assert set(rows) == {"w", "b"}
    assert rows["w"]["init"] == "declared: normal(0, 0.01)"
    assert rows["w"]["spec"].startswith("custom_layer.net:")


def test_rules_of_a_spec_and_derived_torchvision_defaults(tmp_path: Path) -> None:
    spec = tmp_path / "tanh.net"
    spec.write_text(
        "net Tanh:\n"
        "    input x: [N, 8]\n"
        "    fc1 = Linear(16)\n"
        "    fc2 = Linear(4)\n"
        "    init:\n"
        '        "fc1.weight": xavier_uniform(gain=calculate_gain("tanh"))\n'
        "        Linear.bias: zeros()\n"
        "    return fc2(tanh(fc1(x)))\n",
        encoding="utf-8",
    )
    resolved = resolve(spec)
    model = dsl.build_model(spec, seed=0)  # a real build: the same winners as on meta
    rows = {row.name: row for row in init_rows(model, resolved)}
    assert rows["fc1.weight"].init.startswith("xavier_uniform(gain=1.66")
    assert rows["fc1.weight"].rule == "fc1.weight" and rows["fc1.weight"].spec == "tanh.net:6"
    assert rows["fc2.weight"].init == "default (reset_parameters)"
    assert rows["fc1.bias"].init == rows["fc2.bias"].init == "zeros()"
    assert set(BUILT[model][1]) == {"fc1.weight", "fc1.bias", "fc2.bias"}


def test_finetune_backbone_keeps_torchvision_init(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", EXAMPLES / "finetune.net", "--init", "--format", "json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)["init"]}
    assert rows["conv1.weight"]["init"] == "default (torchvision.models.resnet18() constructor)"
    assert rows["fc.weight"]["init"] == "default (reset_parameters)"
