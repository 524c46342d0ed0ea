"""A derived net (surgery) is validated by running its base on meta with the shape rules
answering (issue 18): modules by their class's rule, `a + b` and the other functions by
theirs, so that torch's Python meta kernels (sympy, torch._dynamo: 1-2 s, 150 MB) stay out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import dsl
from dsl.errors import ShapeError
from dsl.torchlib import shapes

ROOT = Path(__file__).resolve().parent.parent


def test_validating_surgery_imports_no_meta_kernels() -> None:
    code = (
        "import sys, dsl\n"
        "dsl.validate('examples/dilation.net')\n"  # torchvision's own import brings both
        "heavy = [m for m in ('torch._dynamo', 'sympy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_whole_meta_model_runs_by_its_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    forward = nn.BatchNorm2d.forward

    def counted(self: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        calls.append("bn")
        return forward(self, x)

    monkeypatch.setattr(nn.BatchNorm2d, "forward", counted)
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    x = torch.empty(2, 3, 9, 9, device="meta")
    with shapes.fast_meta(model):
        out = model(x)
        total = out + out
    assert out.shape == total.shape == (2, 8, 7, 7)
    assert calls == []  # the rule answered; BatchNorm's forward never ran
    assert model(x).shape == out.shape and calls == ["bn"]  # and is itself again after


def test_surgery_still_reports_a_shape_mistake() -> None:
    text = (
        "from resnet import ResNet, Bottleneck\n\n"
        "net Broken = ResNet(Bottleneck, [1, 1, 1, 1]):\n"
        '    set("layer2.0.conv2", stride=(1, 1))\n'
    )
    with pytest.raises(ShapeError):
        dsl.validate(text)  # the main path is no longer downsampled: the add cannot broadcast


def test_a_meta_copy_copies_its_leaves_and_runs_no_init_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The meta copy surgery and `parts(...)` follow shapes through is made of copies of the
    meta layers elaboration already built (no constructor runs), and skips init rules, which
    change no shape (validate matches them in a build of its own)."""
    from dsl.build.compile import build_on_meta
    from dsl.torchlib import init

    resolved = dsl.validate(ROOT / "examples" / "resnet18.net")
    constructed: list[str] = []
    conv_init = nn.Conv2d.__init__

    def counted(self: nn.Conv2d, *args: object, **kwargs: object) -> None:
        constructed.append("conv")
        conv_init(self, *args, **kwargs)  # type: ignore[arg-type]

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("init rules ran on a meta copy")

    monkeypatch.setattr(nn.Conv2d, "__init__", counted)
    monkeypatch.setattr(init, "initialise", refused)
    model = build_on_meta(resolved.root)
    assert constructed == []
    assert model.layer1[0].conv1.weight.is_meta
    assert model.layer1[0].conv1 is not model.layer1[1].conv1
    x = torch.empty(2, 3, 32, 32, device="meta")
    assert model(x).shape == (2, 1000)
