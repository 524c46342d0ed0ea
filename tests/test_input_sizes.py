"""The sizes of a net's symbolic input dims: `--input` for `dsl summary` and `dsl validate`
(derived nets included), `sizes=` for the API, and representative sizes that fit an
ImageNet net (or an error saying which dims to set)."""

from __future__ import annotations

from pathlib import Path

import pytest

import dsl
from dsl.cli import main
from dsl.errors import ShapeError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
IMAGENET = ["resnet50", "resnet18", "vgg16_bn", "dilation"]

ALEXNET_LIKE = """\
net Alex:
    input x: [B, 3, H, W]
    features = Sequential:
        Conv2d(64, 11, stride=4, padding=2)
        MaxPool2d(3, stride=2)
        Conv2d(192, 5, padding=2)
        MaxPool2d(3, stride=2)
        Conv2d(256, 3, padding=1)
        MaxPool2d(3, stride=2)
{more}    return features(x)
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", IMAGENET)
def test_summary_input_reaches_a_derived_nets_base(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, out, err = run(
        capsys, "summary", EXAMPLES / f"{name}.net", "--input", "1x3x224x224", "--depth", "0"
    )
    assert code == 0, err
    assert "x: [1, 3, 224, 224]" in out
    assert "Output:               [1, 1000]" in out


def test_validate_takes_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", EXAMPLES / "resnet50.net", "--input", "1x3x224x224")
    assert (code, out.strip()) == (0, "1 file checked: ok"), err
    code, _, err = run(capsys, "validate", EXAMPLES / "resnet50.net", "--input", "1x3x224")
    assert code == 1
    assert "--input gives 3 dimensions, but input 'x' has 4" in err
    assert "<string>" not in err and "resnet.net:" in err


def test_a_fixed_size_is_reported_at_the_input_in_its_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "summary", EXAMPLES / "small_conv.net", "--input", "2x1x32x32")
    assert code == 1
    assert "small_conv.net:6:" in err
    assert "the spec fixes it at 1" in err


def test_build_model_sizes_reach_a_derived_nets_base() -> None:
    model = dsl.build_model(
        EXAMPLES / "resnet50.net", sizes={"B": 1, "H": 224, "W": 224}, device="meta"
    )
    assert sum(p.numel() for p in model.parameters()) == 25_557_032


def test_an_imagenet_net_validates_with_sizes_that_fit(tmp_path: Path) -> None:
    spec = tmp_path / "alex.net"
    spec.write_text(ALEXNET_LIKE.format(more="        AdaptiveAvgPool2d(6)\n"))
    resolved = dsl.validate(spec)  # 32x48 leaves nothing for the third pool; 224x256 fits
    assert resolved.symbols.sizes["H"] >= 224
    assert dsl.build_model(spec, device="meta") is not None


def test_a_net_too_deep_for_any_size_says_which_dims_to_set(tmp_path: Path) -> None:
    spec = tmp_path / "alex.net"
    spec.write_text(ALEXNET_LIKE.format(more="        MaxPool2d(3, stride=2)\n" * 3))
    with pytest.raises(ShapeError) as info:
        dsl.validate(spec)
    assert str(info.value).startswith(str(spec))
    assert "--input 2x3x224x256" in info.value.hint
    assert "sizes={'H': ..., 'W': ...}" in info.value.hint


def test_a_mistake_at_every_size_gets_no_sizes_hint(tmp_path: Path) -> None:
    spec = tmp_path / "bad.net"
    spec.write_text(
        "net Bad:\n    input x: [B, 3, H, W]\n    c = Conv2d(3, 8, 3)\n    l = Linear(5, 2)\n"
        "    return l(c(x))\n"
    )
    with pytest.raises(ShapeError) as info:
        dsl.validate(spec)
    assert "--input" not in (info.value.hint or "")
