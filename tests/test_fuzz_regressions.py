"""Regressions for what the long fuzz campaigns (issue 14, `python -m tests.fuzz`) found:
each input class that escaped as a non-DSLError, with the located DSLError it gives now."""

from __future__ import annotations

import pytest

import dsl
from dsl.errors import NetworkAccessError
from tests.test_trust_runtime import no_network  # noqa: F401  (a fixture)

# Campaign seed 20261207: examples/features.net with `resnet18(\uff11)` (a full-width 1)
# reached torchvision's download as `weights=1`: validate raised URLError at offline.py.
POSITIONAL_WEIGHTS = ("\uff11", "1", "True", '"DEFAULT"', '"IMAGENET1K_V1", false')


@pytest.mark.parametrize("argument", POSITIONAL_WEIGHTS)
@pytest.mark.parametrize("form", ["derived", "layer"])
def test_weights_passed_positionally_are_refused_without_a_download(
    argument: str,
    form: str,
    no_network: list[str],  # noqa: F811  (the imported fixture)
) -> None:
    call = f"torchvision.models.resnet18({argument})"
    spec = (
        f"net P = {call}:\n    input x: [B, 3, 32, 32]\n"
        if form == "derived"
        else f"net P:\n    input x: [B, 3, 32, 32]\n    m = {call}\n    return m(x)\n"
    )
    with pytest.raises(NetworkAccessError) as info:
        dsl.validate(spec)
    assert no_network == []
    assert info.value.code == "E520" and info.value.span.line == (1 if form == "derived" else 3)
    assert "resnet18(weights=" in info.value.message
    assert "allow_download=True" in (info.value.hint or "")
    with pytest.raises(NetworkAccessError):
        dsl.build_model(spec, device="meta")
    assert no_network == []


@pytest.mark.parametrize("argument", ["None", "false", "weights=None"])
def test_no_weights_passed_positionally_still_build(argument: str) -> None:
    spec = f"net P = torchvision.models.resnet18({argument}):\n    input x: [B, 3, 32, 32]\n"
    assert dsl.validate(spec).output.shape[-1] == 1000
