"""Checkpoints are data from anywhere (issue 14): `dsl.load_model` reads the one file it is
given, and anything malformed in it is a DSLError naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import dsl
from dsl.build.checkpoint import save
from dsl.errors import CheckpointError, WeightsError

safetensors_torch = pytest.importorskip("safetensors.torch")

SPEC = """
net Small(width=8):
    input x: [B, 4]
    fc1 = Linear(4, width)
    fc2 = Linear(width, 2)
    return fc2(fc1(x))
"""


def _saved(tmp_path: Path, suffix: str, text: str = SPEC, name: str = "small.net") -> Path:
    spec = tmp_path / "spec" / name
    spec.parent.mkdir(exist_ok=True)
    spec.write_text(text, encoding="utf-8")
    model = dsl.build_model(spec, seed=0)
    out = tmp_path / f"model{suffix}"
    net = dsl.validate(spec).name
    save(model, out, spec_text=text, spec_file=str(spec), net=net, params={})
    return out


def _metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata())


def _rewrite(path: Path, tensors: dict[str, torch.Tensor], **meta: str) -> None:
    safetensors_torch.save_file(tensors, str(path), metadata={**_metadata(path), **meta})


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_files_are_checkpoint_errors_naming_the_file(
    tmp_path: Path, suffix: str, damage: str
) -> None:
    path = _saved(tmp_path, suffix)
    data = path.read_bytes()
    damaged = {"truncated": data[: len(data) * 2 // 3], "garbage": b"\x13\x00" * 50, "empty": b""}
    path.write_bytes(damaged[damage])
    with pytest.raises(CheckpointError) as info:
        dsl.load_model(path)
    assert str(path) in info.value.message and info.value.code == "E801"


@pytest.mark.parametrize("key", ["netdsl.params", "netdsl.files"])
def test_bad_metadata_json_names_the_key(tmp_path: Path, key: str) -> None:
    path = _saved(tmp_path, ".safetensors")
    _rewrite(path, safetensors_torch.load_file(str(path)), **{key: "{not json"})
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        dsl.load_model(path)


def test_metadata_of_the_wrong_type_names_the_key(tmp_path: Path) -> None:
    path = _saved(tmp_path, ".safetensors")
    _rewrite(path, safetensors_torch.load_file(str(path)), **{"netdsl.params": "[1, 2]"})
    with pytest.raises(CheckpointError, match="'params'"):
        dsl.load_model(path)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda t: {**t, "fc1.weight": torch.zeros(3, 3)}, "fc1.weight"),
        (lambda t: {**t, "fc1.bias": t["fc1.bias"].double()}, "fc1.bias"),
        (lambda t: {k: v for k, v in t.items() if k != "fc2.bias"}, "fc2.bias"),
        (lambda t: {**t, "extra": torch.zeros(1)}, "extra"),
    ],
    ids=["shape", "dtype", "missing", "unexpected"],
)
def test_tensors_that_do_not_fit_the_spec_name_file_and_key(
    tmp_path: Path, change, key: str
) -> None:
    path = _saved(tmp_path, ".safetensors")
    _rewrite(path, change(safetensors_torch.load_file(str(path))))
    with pytest.raises(CheckpointError) as info:
        dsl.load_model(path)
    assert str(path) in info.value.message and f"'{key}'" in info.value.message


def test_a_torch_checkpoint_with_non_tensors_names_the_key(tmp_path: Path) -> None:
    path = _saved(tmp_path, ".pt")
    saved = torch.load(path, weights_only=True)
    saved["state_dict"]["fc1.weight"] = 3
    torch.save(saved, path)
    with pytest.raises(CheckpointError, match=r"'fc1\.weight'"):
        dsl.load_model(path)


# ----------------------------------------------------------------------------- bundled imports

PARTS = """
block Stem(width):
    input x: [B, 4]
    fc = Linear(4, width)
    return fc(x)
"""

MAIN = """
from "lib/parts.net" import Stem

net Main:
    input x: [B, 4]
    stem = Stem(8)
    return stem(x)
"""


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_checkpoint_carries_the_files_its_spec_imports(tmp_path: Path, suffix: str) -> None:
    (tmp_path / "spec" / "lib").mkdir(parents=True)
    (tmp_path / "spec" / "lib" / "parts.net").write_text(PARTS, encoding="utf-8")
    path = _saved(tmp_path, suffix, MAIN, "main.net")
    expected = dsl.build_model(tmp_path / "spec" / "main.net", seed=0).state_dict()
    (tmp_path / "spec" / "lib" / "parts.net").unlink()  # the checkpoint needs nothing else
    loaded = dsl.load_model(path).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())


def test_dsl_build_with_relative_imports_loads_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dsl.cli import main

    spec_dir = tmp_path / "project"
    (spec_dir / "lib").mkdir(parents=True)
    (spec_dir / "lib" / "parts.net").write_text(PARTS, encoding="utf-8")
    (spec_dir / "main.net").write_text(MAIN, encoding="utf-8")
    monkeypatch.chdir(spec_dir)
    assert main(["build", "main.net", "-o", "main.safetensors", "--seed", "0"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = dsl.load_model(spec_dir / "main.safetensors")
    expected = dsl.build_model(spec_dir / "main.net", seed=0).state_dict()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())


def test_load_model_never_reads_the_files_its_metadata_names(tmp_path: Path) -> None:
    secret = tmp_path / "secret.net"
    secret.write_text("SECRET-FIRST-LINE\n", encoding="utf-8")
    path = _saved(tmp_path, ".safetensors")
    spec = 'from "secret.net" import A\n' + SPEC
    _rewrite(
        path,
        safetensors_torch.load_file(str(path)),
        **{"netdsl.spec": spec, "netdsl.file": str(tmp_path / "x.net")},
    )
    with pytest.raises(dsl.DSLError) as info:
        dsl.load_model(path)
    assert "SECRET" not in info.value.render()


@pytest.mark.parametrize(
    "name", ["/etc/passwd.net", "../outside.net", "a/../../b.net", "notes.txt"]
)
def test_bundled_files_stay_inside_their_directory(tmp_path: Path, name: str) -> None:
    path = _saved(tmp_path, ".safetensors")
    _rewrite(
        path,
        safetensors_torch.load_file(str(path)),
        **{"netdsl.files": json.dumps({name: "net A:\n"})},
    )
    with pytest.raises(CheckpointError, match="bundled file"):
        dsl.load_model(path)


def test_old_style_errors_still_say_what_a_plain_file_is(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(WeightsError, match="not a checkpoint written by 'dsl build'"):
        dsl.load_model(plain)


# ----------------------------------------------------------------------------- weights=


def _state(**changes: torch.Tensor) -> dict[str, torch.Tensor]:
    state = {k: v.clone() for k, v in dsl.build_model(SPEC, seed=0).state_dict().items()}
    return {**state, **changes}


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_weights_files_name_the_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "w.safetensors"
    safetensors_torch.save_file(_state(), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\xff" * 64)
    with pytest.raises(CheckpointError, match=str(path)):
        dsl.build_model(SPEC, weights=path)


def test_allow_missing_everything_that_loads_nothing_is_an_error() -> None:
    other = {"backbone." + k: v for k, v in _state().items()}
    with pytest.raises(WeightsError, match="do not fit") as info:
        dsl.build_model(SPEC, weights=other, strict=False, allow_missing=["*"])
    assert "0 of 4 model tensors loaded" in info.value.render()


def test_allow_missing_still_allows_a_partial_load() -> None:
    state = {k: v for k, v in _state().items() if not k.startswith("fc2.")}
    model = dsl.build_model(SPEC, weights=state, strict=False, allow_missing=["fc2.*"])
    assert torch.equal(model.fc1.weight, state["fc1.weight"])


@pytest.mark.parametrize(
    "value",
    [
        torch.ones(8, 4, dtype=torch.int32),
        torch.ones(8, 4, dtype=torch.bool),
        torch.full((8, 4), 1e300, dtype=torch.float64),
    ],
    ids=["int32", "bool", "float64-overflow"],
)
def test_lossy_dtype_conversions_are_refused_naming_the_key(value: torch.Tensor) -> None:
    with pytest.raises(WeightsError) as info:
        dsl.build_model(SPEC, weights=_state(**{"fc1.weight": value}))
    assert "dtype refused" in info.value.render() and "fc1.weight" in info.value.render()
    assert info.value.coverage.refused[0][0] == "fc1.weight"


def test_a_float64_tensor_loads_with_a_warning_naming_the_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dsl.build.weights import WeightsConversionWarning

    value = torch.randn(8, 4, dtype=torch.float64)
    with pytest.warns(WeightsConversionWarning, match="'fc1.weight' \\(float64 -> float32\\)"):
        model = dsl.build_model(SPEC, weights=_state(**{"fc1.weight": value}))
    assert torch.equal(model.fc1.weight, value.float())
    report = capsys.readouterr().err
    assert "4 of 4 model tensors loaded (1 converted)" in report and "converted" in report
