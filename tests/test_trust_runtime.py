"""Run-time trust (issue 14): seeded builds leave global state alone and work from threads,
build_model's own arguments are checked, errors quote their own source, specs stay offline."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import dsl

MLP = """
net Mlp(width=16):
    input x: [B, 8]
    fc1 = Linear(8, width)
    fc2 = Linear(width, 4)
    return fc2(fc1(x))
"""


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- seeding


def test_seeded_build_leaves_the_global_rng_state_alone() -> None:
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    dsl.build_model(MLP, seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_seeded_build_draws_what_manual_seed_draws() -> None:
    torch.manual_seed(0)
    expected = torch.nn.Linear(8, 16).weight.detach().clone()
    torch.manual_seed(99)
    assert torch.equal(dsl.build_model(MLP, seed=0).fc1.weight, expected)


def test_per_module_seeded_build_leaves_the_global_rng_state_alone() -> None:
    before = torch.random.get_rng_state()
    dsl.build_model(MLP, seed=3, init_stream="per-module")
    assert torch.equal(torch.random.get_rng_state(), before)


def test_unseeded_build_still_draws_from_the_global_stream() -> None:
    torch.manual_seed(5)
    a = _weights(dsl.build_model(MLP))
    torch.manual_seed(5)
    assert _same(a, _weights(dsl.build_model(MLP)))


def test_seeded_builds_from_threads_match_serial_builds() -> None:
    seeds = list(range(12))
    serial = [_weights(dsl.build_model(MLP, seed=s, params={"width": 64})) for s in seeds]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(
            pool.map(lambda s: _weights(dsl.build_model(MLP, seed=s, params={"width": 64})), seeds)
        )
    assert [_same(a, b) for a, b in zip(serial, threaded)] == [True] * len(seeds)
