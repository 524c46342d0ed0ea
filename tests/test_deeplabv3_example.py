"""examples/deeplabv3.net against torchvision's deeplabv3_resnet50 (issue 18): the same module
tree and state_dict keys, strict loading, equal outputs ("out" and "aux") in eval and in
training mode; and its validate follows shapes through the dilated backbone by the shape
rules (surgery, `parts(...)` of a derived net), never by torch's Python meta kernels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import dsl
from dsl.elaborate import context

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "deeplabv3.net"


def reference() -> nn.Module:
    return torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, aux_loss=True
    )


@pytest.fixture(scope="module")
def pair() -> tuple[nn.Module, nn.Module]:
    model = dsl.build_model(SPEC, seed=0)
    theirs = reference()
    with torch.no_grad():  # batch-norm statistics that eval mode reads
        for module in theirs.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    return model, theirs


def test_same_tree_and_keys_and_strict_load(pair: tuple[nn.Module, nn.Module]) -> None:
    model, theirs = pair
    assert [n for n, _ in model.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert list(model.state_dict()) == list(theirs.state_dict())
    model.load_state_dict(theirs.state_dict(), strict=True)
    conv = model.get_submodule("backbone.layer4.1.conv2")
    assert (conv.dilation, conv.padding, conv.stride) == ((4, 4), (4, 4), (1, 1))


@pytest.mark.parametrize("training", [False, True])
def test_outputs_equal_torchvision(pair: tuple[nn.Module, nn.Module], training: bool) -> None:
    model, theirs = pair
    model.load_state_dict(theirs.state_dict(), strict=True)
    model.train(training), theirs.train(training)
    x = torch.randn(2, 3, 40, 48)
    torch.manual_seed(3)  # the dropouts draw alike
    ours = model(x)
    torch.manual_seed(3)
    want = theirs(x)
    assert set(ours) == set(want) == {"out", "aux"}
    for key in want:
        assert ours[key].shape == (2, 21, 40, 48)
        torch.testing.assert_close(ours[key], want[key], rtol=1e-5, atol=1e-5)


def test_validating_it_imports_no_meta_kernels() -> None:
    code = (
        "import sys, dsl\n"
        f"dsl.validate({str(SPEC)!r})\n"
        "heavy = [m for m in ('torch._dynamo', 'sympy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_parts_of_a_derived_net_reuse_its_surgery_meta_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The surgery of `DilatedResNet50` built a meta copy of it; `parts(DilatedResNet50())`
    follows shapes through that copy instead of building the net on meta again."""
    built: list[object] = []
    meta_model = context.Context.meta_model

    def counted(self: context.Context, spec: object) -> nn.Module:
        before = len(self._meta_models)
        found = meta_model(self, spec)  # type: ignore[arg-type]
        built.extend([spec] * (len(self._meta_models) - before))
        return found

    monkeypatch.setattr(context.Context, "meta_model", counted)
    dsl.validate(SPEC)
    assert built == []
