"""What `build_model` would refuse, `dsl.validate` finds first: initialisers that cannot
initialise their tensor, and `set()` of what is no constructor setting (issue 14)."""

from __future__ import annotations

import pytest
import torch

import dsl
from dsl.errors import ArgumentError, InitError, UnknownKeywordError


def _net(*lines: str) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"net N:\n    input x: [B, 4]\n{body}    return x\n"


def _ruled(rule: str) -> str:
    return f"net N:\n    input x: [B, 4]\n    fc = Linear(4)\n    init:\n        {rule}\n    return fc(x)\n"


def _derived(setting: str) -> str:
    base = "net M:\n    input x: [B, 4]\n    fc = Linear(4)\n    return fc(x)\n"
    return base + f'net N = M():\n    set("fc", {setting})\n'


INITIALISERS = {
    "orthogonal of a vector": (_net("param p: [3] = orthogonal()"), 3, "orthogonal()"),
    "eye of a vector": (_net("param p: [3] = eye()"), 3, "eye()"),
    "normal with a negative std": (_net("param p: [3] = normal(0, -1)"), 3, "std"),
    "normal of a long param": (_net("param p: long[3] = normal(0, 1)"), 3, "int64"),
    "uniform of an int param": (_net("param p: int[3] = uniform(-1, 1)"), 3, "int32"),
    "dirac with groups that do not divide": (
        _net("param p: [6, 4, 3] = dirac(4)"),
        3,
        "divisible",
    ),
    "a rule with a mode kaiming refuses": (
        _ruled('Linear.weight: kaiming_normal(mode="sideways")'),
        5,
        "sideways",
    ),
    "a rule whose initialiser refuses the rank": (_ruled("Linear.bias: orthogonal()"), 5, "[4]"),
    "a buffer's initialiser": (_net("buffer b: [3] = normal(0, -2)"), 3, "std"),
}


@pytest.mark.parametrize("case", sorted(INITIALISERS))
def test_validate_refuses_an_initialiser_that_build_would(case: str) -> None:
    text, line, words = INITIALISERS[case]
    for check in (dsl.validate, dsl.build_model):
        with pytest.raises(InitError) as caught:
            check(text)
        assert caught.value.span.line == line and words in caught.value.message


def test_checking_an_initialiser_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    dsl.validate(_net("param p: [300, 300] = orthogonal()"))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_large_param_is_checked_without_allocating_it() -> None:
    dsl.validate(_net("param p: [100000, 100000] = orthogonal()"))


@pytest.mark.parametrize(
    "setting", ["state_dict=1", "forward=1", "training=false", "to=1", "weight=1", "_parameters=1"]
)
def test_set_changes_only_constructor_settings(setting: str) -> None:
    with pytest.raises(UnknownKeywordError) as caught:
        dsl.validate(_derived(setting))
    assert caught.value.span.line == 6 and setting.split("=")[0] in caught.value.message


def test_set_of_a_constructor_setting_is_allowed() -> None:
    dsl.validate(_derived("in_features=4"))


@pytest.mark.parametrize(
    "call",
    [
        "softmax(x, dim=Linear)",
        "x.view(Linear)",
        "scaled_dot_product_attention(x, x, x, is_causal=Embedding)",
    ],
)
def test_a_layer_named_as_a_forward_argument_is_refused(call: str) -> None:
    """Found by the fuzzer: `is_causal=Embedding` validated, then the generated forward
    did not compile."""
    text = f"net N:\n    input x: [B, 4, 8]\n    y = {call}\n    return y\n"
    for check in (dsl.validate, dsl.build_model):
        with pytest.raises(ArgumentError) as caught:
            check(text)
        assert caught.value.span.line == 3
