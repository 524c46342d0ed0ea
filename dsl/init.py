"""Initialisers: the names a spec may use for its own `param`/`buffer` tensors.

Each one is the `torch.nn.init` function of the same name (with the trailing underscore),
so that a declared initialiser draws from the random stream exactly as the hand-written
call would.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import init as nn_init

INITIALISERS: dict[str, Callable[..., torch.Tensor]] = {
    "uniform": nn_init.uniform_,
    "normal": nn_init.normal_,
    "trunc_normal": nn_init.trunc_normal_,
    "constant": nn_init.constant_,
    "zeros": nn_init.zeros_,
    "ones": nn_init.ones_,
    "eye": nn_init.eye_,
    "dirac": nn_init.dirac_,
    "orthogonal": nn_init.orthogonal_,
    "xavier_uniform": nn_init.xavier_uniform_,
    "xavier_normal": nn_init.xavier_normal_,
    "kaiming_uniform": nn_init.kaiming_uniform_,
    "kaiming_normal": nn_init.kaiming_normal_,
    "sparse": nn_init.sparse_,
}
