"""Tensor functions that netdsl adds to torch's own; each is plain, traceable torch code."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Zero-pad the last two dimensions of `x` to the size of `like`'s, splitting the
    difference left/right and top/bottom as U-Net's `Up` does."""
    diff_y = like.size(-2) - x.size(-2)
    diff_x = like.size(-1) - x.size(-1)
    return F.pad(x, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])


def when_training(p: float, training: bool) -> float:
    """A dropout probability that applies in training only: `p if self.training else 0.0`,
    as a hand-written module passes `dropout_p` to `scaled_dot_product_attention`."""
    return p if training else 0.0
