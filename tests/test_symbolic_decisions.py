"""A build-time decision never depends on a symbolic size (rule (a) of issue 13).

`input x: [B, C]` promises a model for every C. A condition that reads C's representative
value would bake one branch into the model, and a C on the other side of the condition would
silently take the wrong one; such a spec is refused at validate time (E311), pointing at the
decision and naming the dimension. Conditions on concrete sizes, and symbolic sizes used as
values in forward or as layer arguments, stay allowed."""

from __future__ import annotations

import pytest
import torch

import dsl
from dsl.errors import DSLError, SymbolicDecisionError
from dsl.syntax.loader import parse_text


def _spec(body: str, shape: str = "[B, C]") -> object:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return parse_text(f"net Probe:\n    input x: {shape}\n{lines}\n", "probe.net")


def _refusal(body: str, shape: str = "[B, C]") -> SymbolicDecisionError:
    with pytest.raises(SymbolicDecisionError) as caught:
        dsl.validate(_spec(body, shape))
    return caught.value


def test_an_if_on_a_symbolic_channel_count_is_refused_at_the_condition() -> None:
    error = _refusal("if x.shape[1] > 48:\n    x = x * 2\nreturn x")
    assert error.code == "E311"
    assert (error.span.line, error.span.col) == (3, 8)
    rendered = error.render()
    assert "'C'" in rendered and "x.shape[1] > 48" in rendered
    assert "a concrete shape" in (error.hint or "")


def test_build_model_refuses_it_too() -> None:
    with pytest.raises(SymbolicDecisionError):
        dsl.build_model(_spec("if x.shape[1] > 48:\n    x = x * 2\nreturn x"))


def test_the_same_condition_on_a_concrete_size_is_decided() -> None:
    spec = _spec("if x.shape[1] > 48:\n    x = x * 2\nreturn x", "[B, 64]")
    model = dsl.build_model(spec)
    x = torch.randn(3, 64)
    torch.testing.assert_close(model(x), x * 2)


def test_a_ternary_on_a_symbolic_size_is_refused() -> None:
    error = _refusal("return x * 2 if x.shape[0] == 1 else x")
    assert "'B'" in error.render()


def test_a_comparison_kept_in_a_value_and_used_later_is_refused_where_it_compares() -> None:
    error = _refusal("wide = x.shape[1] > 48\nif wide:\n    x = x * 2\nreturn x")
    assert error.span.line == 3


def test_a_loop_whose_length_depends_on_a_symbolic_size_is_refused() -> None:
    error = _refusal("for i in range(x.shape[1] // 16):\n    x = x * 2\nreturn x")
    assert "'C'" in error.render()


def test_a_decision_that_happens_to_agree_for_both_sizes_is_still_refused() -> None:
    # C is 32 or 64 in the two elaborations: both > 8, but the model still decides on C.
    _refusal("if x.shape[1] > 8:\n    x = x * 2\nreturn x")


def test_symbolic_sizes_as_forward_values_and_layer_arguments_stay_allowed() -> None:
    spec = _spec(
        "y = x.view(x.shape[0], x.shape[1], 1)\nfc = Linear(x.shape[1], 4)\nreturn fc(y.flatten(1))"
    )
    resolved = dsl.validate(spec)
    assert resolved is not None


@pytest.mark.parametrize("name", ["residual_block.net", "resnet50.net", "unet.net", "gpt.net"])
def test_shipped_examples_decide_only_on_concrete_sizes(name: str) -> None:
    from pathlib import Path

    dsl.validate(Path(__file__).parent.parent / "examples" / name)


def test_the_refusal_is_a_dsl_error_with_a_code_documented() -> None:
    from pathlib import Path

    assert issubclass(SymbolicDecisionError, DSLError)
    assert "E311" in (Path(__file__).parent.parent / "docs" / "errors.md").read_text()


BLOCK = """
block Widen:
    input x: [B, C]
    if x.shape[1] > 48:
        x = x * 2
    return x

net Probe:
    input x: [B, {channels}]
    return block(x): Widen()
"""


def test_a_block_deciding_on_its_input_is_refused_when_the_net_leaves_the_size_symbolic() -> None:
    with pytest.raises(SymbolicDecisionError) as caught:
        dsl.validate(parse_text(BLOCK.format(channels="C"), "probe.net"))
    assert caught.value.span.line == 4


def test_the_same_block_is_decided_when_the_net_fixes_the_size() -> None:
    model = dsl.build_model(parse_text(BLOCK.format(channels="64"), "probe.net"))
    x = torch.randn(2, 64)
    torch.testing.assert_close(model(x), x * 2)
