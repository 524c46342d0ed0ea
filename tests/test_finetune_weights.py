"""Fine-tuning: a torchvision checkpoint loads into examples/finetune.net, whose new head
has another shape, with `allow_mismatch=["fc.*"]` (the checkpoint is written here: no
downloads)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torchvision

import dsl
from dsl.errors import WeightsError

ROOT = Path(__file__).resolve().parent.parent
FINETUNE = ROOT / "examples" / "finetune.net"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("ckpt") / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def test_a_new_head_of_another_shape_is_skipped(
    checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = torch.load(checkpoint, weights_only=True)
    model = dsl.build_model(FINETUNE, weights=checkpoint, allow_mismatch=["fc.*"], seed=0)
    report = capsys.readouterr().err
    assert "120 of 122 model tensors loaded" in report
    assert "skipped (shape)" in report and "fc.weight" in report
    assert torch.equal(model.state_dict()["conv1.weight"], state["conv1.weight"])
    assert model.fc.weight.shape == (100, 512)
    fresh = dsl.build_model(FINETUNE, seed=0)
    assert torch.equal(model.fc.weight, fresh.fc.weight)  # the head keeps its initial values


def test_without_allow_mismatch_the_hint_names_it(checkpoint: Path) -> None:
    with pytest.raises(WeightsError) as info:
        dsl.build_model(FINETUNE, weights=checkpoint, strict=False, allow_missing=["fc.*"])
    assert "allow_mismatch=" in (info.value.hint or "")


def test_a_mismatch_outside_the_patterns_is_still_an_error(checkpoint: Path) -> None:
    with pytest.raises(WeightsError):
        dsl.build_model(FINETUNE, weights=checkpoint, allow_mismatch=["layer1.*"])


def test_the_spec_names_allow_mismatch(checkpoint: Path, tmp_path: Path) -> None:
    shutil.copy(checkpoint, tmp_path / "resnet18.pth")
    spec = tmp_path / "tuned.net"
    spec.write_text(
        "net Tuned = torchvision.models.resnet18():\n"
        "    input x: [B, 3, H, W]\n"
        "    fc = Linear(10)\n"
        '    weights("resnet18.pth", allow_mismatch=["fc.*"])\n'
    )
    model = dsl.build_model(spec)
    assert model.fc.weight.shape == (10, 512)
