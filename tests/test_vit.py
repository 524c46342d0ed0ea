"""examples/vit.net against torchvision's VisionTransformer and vit_b_16 (issue 13): the same
state_dict keys and initial weights for a seed (the MLP blocks initialise themselves when
they are built, the net's rules run last), strict loading, equal outputs in eval and in
train mode under the same seed. Small images keep it cheap; the key list is checked at 224."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

import dsl

SPEC = Path(__file__).resolve().parent.parent / "examples" / "vit.net"
SMALL = dict(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128)


def _assert_same_state(ours: nn.Module, theirs: nn.Module) -> None:
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(reference)
    for key, tensor in mine.items():
        assert torch.equal(tensor, reference[key]), key
    theirs.load_state_dict(mine, strict=True)


@pytest.fixture(scope="module")
def vit_b_16() -> tuple[nn.Module, nn.Module]:
    model = dsl.build_model(SPEC, params={"image_size": 32, "dropout": 0.1}, seed=7)
    torch.manual_seed(7)
    return model, torchvision.models.vit_b_16(image_size=32, dropout=0.1)


def test_vit_b_16_has_torchvisions_initial_weights_and_loads_strictly(
    vit_b_16: tuple[nn.Module, nn.Module],
) -> None:
    model, reference = vit_b_16
    _assert_same_state(model, reference)
    assert (
        sum(p.numel() for p in model.parameters()) == 86_567_656 - (197 - 5) * 768
    )  # 5 tokens, not 197
    block = model.encoder.layers.encoder_layer_0
    assert "need_weights = False" in block.dsl_source


@pytest.mark.parametrize("training", [False, True])
def test_vit_b_16_gives_torchvisions_outputs(
    vit_b_16: tuple[nn.Module, nn.Module], training: bool
) -> None:
    model, reference = vit_b_16
    with torch.no_grad():  # the head starts at zero: give it weights worth comparing
        torch.manual_seed(1)
        model.heads.head.weight.normal_()
    reference.load_state_dict(model.state_dict(), strict=True)
    model.train(training), reference.train(training)
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(11)
    ours = model(x)
    torch.manual_seed(11)
    theirs = reference(x)
    torch.testing.assert_close(ours, theirs)
    assert ours.shape == (2, 1000) and ours.abs().sum() > 0


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("training", [False, True])
def test_a_small_vision_transformer_matches_torchvisions_class(seed: int, training: bool) -> None:
    options = dict(dropout=0.2, attention_dropout=0.1, num_classes=10)
    model = dsl.build_model(SPEC, net="VisionTransformer", params={**SMALL, **options}, seed=seed)
    torch.manual_seed(seed)
    reference = VisionTransformer(**SMALL, **options)  # type: ignore[arg-type]
    _assert_same_state(model, reference)
    with torch.no_grad():
        model.heads.head.weight.normal_()
    reference.load_state_dict(model.state_dict(), strict=True)
    model.train(training), reference.train(training)
    x = torch.randn(3, 3, 32, 32)
    torch.manual_seed(seed + 100)
    ours = model(x)
    torch.manual_seed(seed + 100)
    theirs = reference(x)
    torch.testing.assert_close(ours, theirs)


def test_vit_b_16_at_224_has_torchvisions_keys_and_shapes() -> None:
    model = dsl.build_model(SPEC, device="meta")
    with torch.device("meta"):
        reference = torchvision.models.vit_b_16()
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (k, v.shape) for k, v in reference.state_dict().items()
    ]
    assert model.encoder.pos_embedding.shape == (1, 197, 768)
