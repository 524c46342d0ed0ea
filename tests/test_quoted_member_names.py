"""Member names torch allows that are no identifiers (RegNet's stages name their blocks
"block1-0", "block1-1", ...) are written in `.net` as strings, in loops with `{expr}`
parts too, and survive `dsl fmt` and `dsl convert` both ways (issue 13)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.regnet import AnyStage

import dsl
from dsl.cli import main
from dsl.syntax.parse_net import parse_net
from dsl.syntax.parse_yaml import parse_yaml
from dsl.syntax.printer import print_net
from dsl.syntax.yaml_printer import print_yaml

SPEC = """\
net Trunk(depths=[2, 1]):
    input x: [N, 8]
    trunk_output = Sequential:
        for s in range(len(depths)):
            block{s + 1} = Sequential:
                for i in range(depths[s]):
                    "block{s + 1}-{i}" = Linear(8, 8)
    heads = ModuleDict:
        "head-a" = Linear(8, 2)
        "head-b" = Linear(8, 3)
    y = trunk_output(x)
    return heads(y)
"""


def _stage(index: int, depth: int) -> nn.Module:
    """torchvision's RegNet stage, with a Linear for each block: it names them itself."""
    return AnyStage(
        8, 8, 1, depth, lambda w_in, w_out, *_: nn.Linear(w_in, w_out), nn.BatchNorm2d, nn.ReLU,
        8, 1.0, stage_index=index,
    )  # fmt: skip


class Reference(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk_output = nn.Sequential(
            OrderedDict([("block1", _stage(1, 2)), ("block2", _stage(2, 1))])
        )
        self.heads = nn.ModuleDict({"head-a": nn.Linear(8, 2), "head-b": nn.Linear(8, 3)})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.trunk_output(x)
        return {key: head(y) for key, head in self.heads.items()}


def test_keys_weights_and_outputs_equal_torchvisions_naming() -> None:
    model = dsl.build_model(SPEC, seed=1)
    torch.manual_seed(1)
    reference = Reference()
    assert list(model.state_dict()) == list(reference.state_dict())
    assert "trunk_output.block1.block1-0.weight" in model.state_dict()
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    reference.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 8)
    ours, theirs = model(x), reference(x)
    assert list(ours) == ["head-a", "head-b"]
    for key in theirs:
        torch.testing.assert_close(ours[key], theirs[key])


def test_fmt_and_convert_keep_the_quoted_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = parse_net(SPEC, "trunk.net")
    assert print_net(spec) == SPEC  # canonical: quoted where no identifier, bare elsewhere
    assert parse_yaml(print_yaml(spec), "trunk.yaml") == spec
    source = tmp_path / "trunk.net"
    source.write_text(SPEC, encoding="utf-8")
    assert main(["convert", str(source), "-o", str(tmp_path / "trunk.yaml")]) == 0
    yaml_text = (tmp_path / "trunk.yaml").read_text(encoding="utf-8")
    assert "let: block{s + 1}-{i}" in yaml_text and "let: head-a" in yaml_text
    assert main(["convert", str(tmp_path / "trunk.yaml"), "-o", str(tmp_path / "back.net")]) == 0
    assert (tmp_path / "back.net").read_text(encoding="utf-8") == SPEC
    assert main(["fmt", "--check", str(tmp_path / "back.net")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ('"a.b" = Linear(8, 8)', "'a.b' cannot name a member: torch's names are not empty"),
        ('"" = Linear(8, 8)', "'' cannot name a member"),
        ('"for" = Linear(8, 8)', "'for' cannot name a member: it is a Python keyword"),
    ],
)
def test_names_torch_refuses_are_errors_where_written(statement: str, message: str) -> None:
    text = f"net Bad:\n    input x: [N, 8]\n    s = Sequential:\n        {statement}\n    return s(x)\n"
    with pytest.raises(dsl.DSLError, match=message) as found:
        dsl.validate(text)
    assert (found.value.span.line, found.value.span.col) == (4, 9)
