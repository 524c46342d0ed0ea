"""A parameter whose default is a layer type is set from outside (`--set act=ReLU`,
`params={"act": torch.nn.ReLU}`), and a torch layer class is passed to a constructor that
takes one (`torchvision.ops.Conv2dNormActivation(..., activation_layer=ReLU6)`), as
torchvision's own models do (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import dsl
from dsl.cli import main
from dsl.syntax.parse_net import parse_net
from dsl.syntax.parse_yaml import parse_yaml
from dsl.syntax.printer import print_net
from dsl.syntax.yaml_printer import print_yaml
from dsl.tools.export import eject

SPEC = """
block Mlp(width, act=GELU):
    input x
    fc = Linear(width)
    a = act()
    return a(fc(x))

block Gate(width):
    input x
    fc = Linear(width)
    return sigmoid(fc(x)) * x

net Act(act=GELU, block=Mlp, width=8):
    input x: [N, 4]
    one = Mlp(width, act=act)
    two = block(width)
    conv = torchvision.ops.Conv2dNormActivation(1, 2, kernel_size=1, activation_layer=act, inplace=none)
    y = conv(two(one(x)).view(-1, 1, 2, 4))
    return y
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "act.net"
    path.write_text(SPEC, encoding="utf-8")
    return path


def test_the_default_layer_type(spec: Path) -> None:
    model = dsl.build_model(spec)
    assert type(model.one.a) is nn.GELU and type(model.conv[2]) is nn.GELU
    assert type(model.two).__name__ == "Mlp"


@pytest.mark.parametrize("act", [nn.ReLU, "ReLU"])
def test_params_set_a_layer_type_by_class_or_name(spec: Path, act: object) -> None:
    model = dsl.build_model(spec, params={"act": act, "block": "Gate"})
    assert type(model.one.a) is nn.ReLU and type(model.conv[2]) is nn.ReLU
    assert type(model.two).__name__ == "Gate"
    model(torch.randn(3, 4))


def test_cli_set_act(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", str(spec), "--set", "act=SiLU", "--set", "block=Gate"]) == 0
    out = capsys.readouterr().out
    assert "net Act(act=SiLU [--set], block=Gate [--set], width=8)" in out
    assert "a: SiLU(" in out
    assert "activation_layer=nn.SiLU" in out


def test_cli_set_an_unknown_layer_is_a_command_line_error(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(spec), "--set", "act=Relu"]) == 2
    err = capsys.readouterr().err
    assert "argument --set: act takes a layer (its default is GELU), not 'Relu'" in err
    assert "did you mean 'ReLU'" in err
    assert main(["validate", str(spec), "--set", "act=3"]) == 2


def test_params_with_an_unknown_name_or_unregistered_class(spec: Path) -> None:
    with pytest.raises(dsl.DSLError, match=r"'act' takes a layer .* 'Relu' names none") as found:
        dsl.build_model(spec, params={"act": "Relu"})
    assert found.value.hint is not None and "ReLU" in found.value.hint

    class Mine(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(dsl.DSLError, match="no layer netdsl knows") as found:
        dsl.build_model(spec, params={"act": Mine})
    assert found.value.hint is not None and "@dsl.register" in found.value.hint


def test_a_torch_class_passed_to_a_torchvision_op_matches_torchvision() -> None:
    text = """
net Stem(act=ReLU6):
    input x: [N, 3, 16, 16]
    stem = torchvision.ops.Conv2dNormActivation(3, 16, stride=2, activation_layer=act)
    return stem(x)
"""
    for act, cls in ((None, nn.ReLU6), (nn.Hardswish, nn.Hardswish)):
        model = dsl.build_model(text, seed=2, params={"act": act} if act else None)
        torch.manual_seed(2)
        theirs = torchvision.ops.Conv2dNormActivation(3, 16, stride=2, activation_layer=cls)
        assert str(model.stem) == str(theirs)
        for key, value in theirs.state_dict().items():
            assert torch.equal(model.state_dict()["stem." + key], value), key
        x = torch.randn(2, 3, 16, 16) * 4
        torch.testing.assert_close(model.eval()(x), theirs.eval()(x))


def test_an_ejected_file_names_the_class(spec: Path) -> None:
    source = eject(dsl.validate(spec, params={"act": "Hardswish"}))
    assert "activation_layer=nn.Hardswish" in source
    namespace: dict[str, object] = {"__name__": "ejected"}
    exec(compile(source, "ejected.py", "exec"), namespace)
    ejected = namespace["Act"]()  # type: ignore[operator]
    assert type(ejected.conv[2]) is nn.Hardswish


def test_the_yaml_form_round_trips_and_takes_the_same_overrides(tmp_path: Path) -> None:
    spec = parse_net(SPEC, "act.net")
    yaml_text = print_yaml(spec)
    assert "{act: '${GELU}'}" in yaml_text and "activation_layer: ${act}" in yaml_text
    assert parse_yaml(yaml_text, "act.yaml") == spec
    assert parse_net(print_net(spec), "again.net") == spec
    path = tmp_path / "act.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    model = dsl.build_model(path, params={"act": "SiLU"})
    assert type(model.one.a) is nn.SiLU and type(model.conv[2]) is nn.SiLU
