"""examples/swin.net against torchvision's SwinTransformer and swin_t (issue 13): a computed
relative-position index buffer, `roll` for shifted windows and an attention mask made from
comparisons. The same state_dict keys and initial weights for a seed, strict loading, equal
outputs in eval and in train mode (stochastic depth and dropout draw alike) under the same
seed. 64x64 images keep it cheap (the first two stages shift their windows); the key list
is checked at 224."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.swin_transformer import SwinTransformer

import dsl

SPEC = Path(__file__).resolve().parent.parent / "examples" / "swin.net"
SMALL = dict(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4])


def _assert_same_state(ours: nn.Module, theirs: nn.Module) -> None:
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(reference)
    for key, tensor in mine.items():
        assert torch.equal(tensor, reference[key]), key
    theirs.load_state_dict(mine, strict=True)


def _assert_same_outputs(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, seed: int) -> None:
    torch.manual_seed(seed)
    mine = ours(x)
    torch.manual_seed(seed)
    reference = theirs(x)
    torch.testing.assert_close(mine, reference)


@pytest.fixture(scope="module")
def swin_t() -> tuple[nn.Module, nn.Module]:
    model = dsl.build_model(SPEC, params={"image_size": 64}, seed=4)
    torch.manual_seed(4)
    return model, torchvision.models.swin_t()


def test_swin_t_has_torchvisions_initial_weights_and_loads_strictly(
    swin_t: tuple[nn.Module, nn.Module],
) -> None:
    model, reference = swin_t
    _assert_same_state(model, reference)
    assert sum(p.numel() for p in model.parameters()) == 28_288_354
    attention = model.features[1][0].attn
    assert "relative_position_index" in dict(attention.named_buffers())
    assert "arange" not in type(attention).dsl_source  # data, not recomputed in forward
    assert "torch.roll" in type(model.features[1][1].attn).dsl_source


@pytest.mark.parametrize("training", [False, True])
def test_swin_t_gives_torchvisions_outputs(
    swin_t: tuple[nn.Module, nn.Module], training: bool
) -> None:
    model, reference = swin_t
    model.train(training), reference.train(training)
    _assert_same_outputs(model, reference, torch.randn(2, 3, 64, 64), seed=9)


@pytest.mark.parametrize("size", [32, 44])
@pytest.mark.parametrize("training", [False, True])
def test_a_small_swin_matches_torchvisions_class(size: int, training: bool) -> None:
    """Dropout, attention dropout and stochastic depth on; 44 pads the windows."""
    options = dict(dropout=0.1, attention_dropout=0.2, stochastic_depth_prob=0.3, num_classes=7)
    params = {**SMALL, **options, "image_size": size}
    model = dsl.build_model(SPEC, net="SwinTransformer", params=params, seed=size)
    torch.manual_seed(size)
    reference = SwinTransformer(**SMALL, **options)  # type: ignore[arg-type]
    _assert_same_state(model, reference)
    model.train(training), reference.train(training)
    _assert_same_outputs(model, reference, torch.randn(2, 3, size, size), seed=1)


def test_swin_t_at_224_has_torchvisions_keys_and_shapes() -> None:
    model = dsl.build_model(SPEC, device="meta")
    with torch.device("meta"):
        reference = torchvision.models.swin_t()
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (k, v.shape) for k, v in reference.state_dict().items()
    ]
