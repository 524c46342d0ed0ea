"""The standard library in blocks/: each block builds, names its members as documented, and
matches a reference written in plain PyTorch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import dsl

ROOT = Path(__file__).parent.parent


def _net(body: str) -> str:
    return f"from common import ConvBNAct, MLP\nfrom transformer import TransformerBlock\n\n{body}"


def test_parametrised_unet_equals_the_example_bit_for_bit() -> None:
    library = dsl.build_model(ROOT / "blocks/unet.net", seed=0)
    example = dsl.build_model(ROOT / "examples/unet.net", seed=0)
    a, b = library.state_dict(), example.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(1, 3, 37, 45)
    torch.testing.assert_close(library.eval()(x), example.eval()(x), rtol=0, atol=0)


@pytest.mark.parametrize("bilinear", [True, False])
def test_unet_depth_and_width(bilinear: bool) -> None:
    model = dsl.build_model(
        ROOT / "blocks/unet.net",
        params={"depth": 3, "base": 8, "bilinear": bilinear, "n_classes": 5},
    )
    assert [n for n, _ in model.named_children()] == [
        "inc",
        "down1",
        "down2",
        "down3",
        "up1",
        "up2",
        "up3",
        "outc",
    ]
    assert model.down3.maxpool_conv[1].double_conv[0].out_channels == (64 // 2 if bilinear else 64)
    assert model(torch.randn(2, 3, 41, 30)).shape == (2, 5, 41, 30)


def test_conv_bn_act() -> None:
    model = dsl.build_model(
        _net(
            'net N = Sequential:\n    input x: [B, 3, H, W]\n    ConvBNAct(16, stride=2, act="silu")\n    ConvBNAct(8, kernel_size=1, act="none")\n'
        )
    )
    first, second = model[0], model[1]
    assert [type(m) for m in first] == [nn.Conv2d, nn.BatchNorm2d, nn.SiLU]
    assert [type(m) for m in second] == [nn.Conv2d, nn.BatchNorm2d]
    assert first[0].stride == (2, 2) and first[0].padding == (1, 1) and first[0].bias is None
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 8, 16, 16)


def test_mlp() -> None:
    model = dsl.build_model(
        _net(
            'net N = Sequential:\n    input x: [B, 20]\n    MLP(hidden=[32, 16], out=4, act="gelu", dropout=0.1)\n'
        )
    )
    mlp = model[0]
    assert [type(m) for m in mlp] == [
        nn.Linear,
        nn.GELU,
        nn.Dropout,
        nn.Linear,
        nn.GELU,
        nn.Dropout,
        nn.Linear,
    ]
    assert (mlp[0].in_features, mlp[0].out_features, mlp[6].out_features) == (20, 32, 4)


class RefBlock(nn.Module):
    """The pre-norm block as one would write it by hand (same names, same order)."""

    def __init__(self, c: int, n_head: int, causal: bool) -> None:
        super().__init__()
        self.n_head, self.causal = n_head, causal
        self.ln_1 = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.drop = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(c)
        self.mlp = nn.Sequential(
            nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c), nn.Dropout(0.0)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        x = x + self.drop(self.proj(y.transpose(1, 2).contiguous().view(b, t, c)))
        return x + self.mlp(self.ln_2(x))


@pytest.mark.parametrize("causal", [False, True])
def test_transformer_block_matches_reference(causal: bool) -> None:
    spec = _net(
        f"net N:\n    input x: [B, T, 32]\n    return block(x): TransformerBlock(4, causal={str(causal).lower()})\n"
    )
    model = dsl.build_model(spec, seed=0).eval()
    torch.manual_seed(0)
    ref = RefBlock(32, 4, causal).eval()
    block = model.block
    assert list(block.state_dict()) == list(ref.state_dict())
    assert all(
        torch.equal(a, b) for a, b in zip(block.state_dict().values(), ref.state_dict().values())
    )
    x = torch.randn(2, 7, 32)
    torch.testing.assert_close(model(x), ref(x))
