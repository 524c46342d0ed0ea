"""Loading checkpoints into built models: safe readers, key remapping, coverage reports,
and partial loads that are never silent."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from torch import nn

import dsl
from dsl.errors import DSLError, WeightsError

SPEC = """
net Net(n_classes=4):
    input x: [B, 8]
    body = Sequential:
        Linear(16)
        ReLU()
    fc = Linear(n_classes)
    return fc(body(x))
"""


class Ref(nn.Module):
    def __init__(self, n_classes: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def _outputs_equal(a: nn.Module, b: nn.Module) -> None:
    x = torch.randn(3, 8)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_state_dict_file_with_wrapper_and_prefix(tmp_path: Path) -> None:
    ref = Ref()
    path = tmp_path / "ckpt.pth"
    torch.save(
        {"epoch": 7, "state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, path
    )
    model = dsl.build_model(SPEC, weights=path, prefix="module.")
    _outputs_equal(model, ref)


def test_safetensors_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    ref = Ref()
    save_file(ref.state_dict(), tmp_path / "w.safetensors")
    _outputs_equal(dsl.build_model(SPEC, weights=tmp_path / "w.safetensors"), ref)


def test_prefixed_keys_are_reported_with_a_prefix_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save({f"module.{k}": v for k, v in Ref().state_dict().items()}, path)
    with pytest.raises(WeightsError) as info:
        dsl.build_model(SPEC, weights=path)
    assert 'prefix="module."' in info.value.hint
    report = capsys.readouterr().err
    assert "0 of 4 model tensors loaded" in report
    assert "missing     fc.weight" in report and "did you mean 'module.fc.weight'?" in report


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save(Ref(n_classes=10).state_dict(), path)
    with pytest.raises(WeightsError) as info:
        dsl.build_model(SPEC, weights=path)
    rendered = info.value.render()
    assert "shape mismatch  fc.weight" in rendered and "model [4, 16], file [10, 16]" in rendered
    assert info.value.coverage.mismatched[0][0] == "fc.weight"


def test_partial_load_needs_an_allow_list(tmp_path: Path) -> None:
    ref = Ref()
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "backbone.pth"
    torch.save(state, path)
    with pytest.raises(DSLError, match="allow_missing"):
        dsl.build_model(SPEC, weights=path, strict=False)
    with pytest.raises(WeightsError):
        dsl.build_model(SPEC, weights=path)  # strict: the missing head is an error
    model = dsl.build_model(SPEC, weights=path, strict=False, allow_missing=["fc.*"])
    torch.testing.assert_close(model.body[0].weight, ref.body[0].weight, rtol=0, atol=0)


def test_weights_statement_in_the_spec_with_rename(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = Ref()
    renamed = collections.OrderedDict(
        (k.replace("fc.", "head."), v) for k, v in ref.state_dict().items()
    )
    torch.save(renamed, tmp_path / "old.pth")
    (tmp_path / "net.net").write_text(
        SPEC.replace(
            "    input x: [B, 8]\n",
            '    input x: [B, 8]\n    weights("old.pth", rename={"head.": "fc."})\n',
        )
    )
    _outputs_equal(dsl.build_model(tmp_path / "net.net"), ref)
    assert "4 of 4 model tensors loaded" in capsys.readouterr().err


def test_weights_path_may_not_leave_the_spec_directory(tmp_path: Path) -> None:
    (tmp_path / "net.net").write_text(
        SPEC.replace(
            "    input x: [B, 8]\n", '    input x: [B, 8]\n    weights("../../etc/x.pth")\n'
        )
    )
    with pytest.raises(DSLError, match="outside the spec's directory"):
        dsl.validate(tmp_path / "net.net")


def test_a_pickle_with_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(4, 16), "payload": collections.Counter("abc")}, path)
    with pytest.raises(WeightsError, match=r"cannot be read as weights|no state dict"):
        dsl.build_model(SPEC, weights=path)
