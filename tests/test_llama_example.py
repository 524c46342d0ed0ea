"""examples/llama.net against a LLaMA-style decoder written here in plain PyTorch (Meta's
module names): the same state_dict keys and initial weights for a seed, strict loading both
ways, equal outputs in train and eval mode under the same seed at several sequence lengths,
`torch.compile(fullgraph=True)`, and `torch.export` with a dynamic sequence length (issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dsl

SPEC = Path(__file__).resolve().parent.parent / "examples" / "llama.net"
CONFIG: dict[str, Any] = {
    "vocab": 256, "dim": 64, "n_layer": 2, "n_head": 4, "n_kv_head": 2, "hidden": 172
}  # fmt: skip


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return h.type_as(x) * self.weight


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


class Rotary(nn.Module):
    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        self.head_dim, self.theta = head_dim, theta

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = q.shape[2]
        steps = torch.arange(0, self.head_dim, 2, device=q.device).float() / self.head_dim
        inv_freq = 1.0 / self.theta**steps
        freqs = torch.outer(torch.arange(T, device=q.device).float(), inv_freq)
        angles = torch.cat([freqs, freqs], dim=-1)
        c, s = angles.cos().type_as(q), angles.sin().type_as(q)
        return q * c + rotate_half(q) * s, k * c + rotate_half(k) * s


class Attention(nn.Module):
    def __init__(self, dim: int, n_head: int, n_kv_head: int, dropout: float) -> None:
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, dim // n_head
        self.dropout = dropout
        self.wq = nn.Linear(dim, n_head * self.head_dim, bias=False)
        self.wk = nn.Linear(dim, n_kv_head * self.head_dim, bias=False)
        self.wv = nn.Linear(dim, n_kv_head * self.head_dim, bias=False)
        self.wo = nn.Linear(n_head * self.head_dim, dim, bias=False)
        self.rope = Rotary(self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = self.rope(q, k)
        groups = self.n_head // self.n_kv_head
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, n_head: int, n_kv_head: int, hidden: int, dropout: float):
        super().__init__()
        self.attention = Attention(dim, n_head, n_kv_head, dropout)
        self.feed_forward = FeedForward(dim, hidden)
        self.attention_norm = RMSNorm(dim)
        self.ffn_norm = RMSNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x))
        return h + self.feed_forward(self.ffn_norm(h))


class Llama(nn.Module):
    def __init__(
        self, vocab: int, dim: int, n_layer: int, n_head: int, n_kv_head: int, hidden: int,
        dropout: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(
            TransformerBlock(dim, n_head, n_kv_head, hidden, dropout) for _ in range(n_layer)
        )
        self.norm = RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tok_embeddings(tokens)
        for layer in self.layers:
            h = layer(h)
        return self.output(self.norm(h))


def tokens(length: int, batch: int = 2) -> torch.Tensor:
    return torch.randint(
        0, CONFIG["vocab"], (batch, length), generator=torch.Generator().manual_seed(length)
    )


def test_same_initial_weights_for_the_same_seed_and_strict_loading() -> None:
    model = dsl.build_model(SPEC, seed=5)
    torch.manual_seed(5)
    reference = Llama(**CONFIG)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (k, v.shape) for k, v in reference.state_dict().items()
    ]
    for key, theirs in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], theirs), key
    reference.load_state_dict(model.state_dict(), strict=True)
    model.load_state_dict(Llama(**CONFIG).state_dict(), strict=True)


@pytest.mark.parametrize("length", [1, 9, 40])
@pytest.mark.parametrize("training", [True, False])
def test_equal_outputs_in_train_and_eval_mode(length: int, training: bool) -> None:
    model = dsl.build_model(SPEC, seed=0, params={"dropout": 0.25})
    reference = Llama(**CONFIG, dropout=0.25)
    reference.load_state_dict(model.state_dict(), strict=True)
    model.train(training), reference.train(training)
    x = tokens(length)
    torch.manual_seed(11)
    ours = model(x)
    torch.manual_seed(11)
    theirs = reference(x)
    torch.testing.assert_close(ours, theirs)
    torch.manual_seed(12)
    again = model(x)
    if not training:  # no dropout in eval mode
        torch.testing.assert_close(again, ours)
    elif length > 1:  # attention dropout draws: another seed, another output
        assert not torch.allclose(again, ours)


def test_causal_grouped_query_attention_with_real_rotary_embeddings() -> None:
    model = dsl.build_model(SPEC, seed=0).eval()
    x = tokens(12)
    with torch.no_grad():
        full, prefix = model(x), model(x[:, :5])
    torch.testing.assert_close(full[:, :5], prefix)  # causal: a prefix sees only itself
    attention = model.layers[0].attention
    assert (attention.wq.out_features, attention.wk.out_features) == (64, 32)  # 4 q, 2 kv heads
    q = torch.randn(1, 1, 3, 16)
    rotated, _ = attention.rope(q, q)
    assert torch.allclose(rotated.norm(dim=-1), q.norm(dim=-1))  # a rotation keeps lengths
    assert torch.equal(rotated[:, :, 0], q[:, :, 0])  # position 0 is not turned
    angle = torch.tensor(1.0)  # position 1, the first pair of channels: angle 1 radian
    expected = q[0, 0, 1, 0] * angle.cos() - q[0, 0, 1, 8] * angle.sin()
    torch.testing.assert_close(rotated[0, 0, 1, 0], expected)


def test_torch_export_with_a_dynamic_sequence_length() -> None:
    model = dsl.build_model(SPEC, seed=0).eval()
    length = torch.export.Dim("length", min=2, max=64)
    program = torch.export.export(model, (tokens(8),), dynamic_shapes={"tokens": {1: length}})
    exported = program.module()
    for n in (5, 33):  # lengths other than the traced one
        with torch.no_grad():
            torch.testing.assert_close(exported(tokens(n)), model(tokens(n)))


def test_torch_compile_fullgraph_forward_and_backward() -> None:
    model = dsl.build_model(SPEC, seed=0, params={"dropout": 0.25})
    reference = Llama(**CONFIG, dropout=0.25)
    reference.load_state_dict(model.state_dict(), strict=True)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager", dynamic=True)
    for n in (6, 11):
        torch.manual_seed(n)
        ours = compiled(tokens(n))
        torch.manual_seed(n)
        torch.testing.assert_close(ours, reference(tokens(n)))
    ours.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
