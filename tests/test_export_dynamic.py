"""Exports keep the spec's symbolic sizes dynamic (issue 20).

Each example is exported once per format (module-scoped fixtures: ONNX export is slow) with
`dsl.export`, whose own check runs at the sizes below (for ONNX; an exported program's check
is tested on GPT below, to keep the time down); the tests then load every file
themselves (onnxruntime, `torch.export.load`) and compare it with the eager model at two
sizes that differ from the representative ones (B=2, H=32, W=48, T=32) in every symbolic
dimension: batch 1 and 5, images 64 and 96, sequences 7 and 50.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import onnxruntime  # type: ignore[import-untyped]
import pytest
import torch

import dsl
from dsl.errors import ArgumentError, SymbolicDecisionError
from dsl.tools.export_check import check_sizes
from dsl.tools.export_constraints import refine
from dsl.tools.export_dynamic import DynamicPlan, SymbolRange, parse_dynamic

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
IMAGES = [{"B": 1, "H": 64, "W": 64}, {"B": 5, "H": 96, "W": 96}]
SEQUENCES = [{"B": 1, "T": 7}, {"B": 5, "T": 50}]
CASES = {
    "unet": IMAGES,
    "gpt": SEQUENCES,
    "resnet18": IMAGES,
    "mobilenet": IMAGES,
    "vit_small": IMAGES,
}
REPRESENTATIVE = {"B": 2, "H": 32, "W": 48, "T": 32}
SUFFIX = {"onnx": ".onnx", "exported-program": ".pt2"}


class Exported:
    def __init__(self, name: str, fmt: str, folder: Path) -> None:
        self.name, self.fmt = name, fmt
        self.model = dsl.build_model(EXAMPLES / f"{name}.net", seed=0).eval()
        self.path = folder / f"{name}{SUFFIX[fmt]}"
        checked = fmt == "onnx"
        self.result = dsl.export(self.model, self.path, check=checked, check_sizes=CASES[name])
        self._run: Any = None

    def inputs(self, sizes: dict[str, int], seed: int) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        if "T" in sizes:
            return (torch.randint(0, 256, (sizes["B"], sizes["T"]), generator=gen),)
        return (torch.randn(sizes["B"], 3, sizes["H"], sizes["W"], generator=gen),)

    def run(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.fmt == "onnx":
            session = onnxruntime.InferenceSession(
                str(self.path), providers=["CPUExecutionProvider"]
            )
            feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
            return torch.from_numpy(session.run(None, feed)[0])
        return torch.export.load(str(self.path)).module()(*inputs)


@pytest.fixture(
    scope="module",
    params=[(n, f) for n in CASES for f in SUFFIX],
    ids=[f"{n}-{f}" for n in CASES for f in SUFFIX],
)
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    name, fmt = request.param
    return Exported(name, fmt, tmp_path_factory.mktemp(f"{name}-{fmt}"))


def test_runs_at_other_sizes_equal_to_eager(exported: Exported) -> None:
    for index, sizes in enumerate(CASES[exported.name]):
        assert all(REPRESENTATIVE[s] != v for s, v in sizes.items())
        inputs = exported.inputs(sizes, seed=10 + index)
        with torch.no_grad():
            expected = exported.model(*inputs)
            got = exported.run(inputs)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-3)


def test_symbols_are_the_dims(exported: Exported) -> None:
    """One Dim per symbol, named after it; the file's own check ran at the sizes asked."""
    plan = exported.result.plan
    assert plan is not None
    symbols = ["B", "T"] if exported.name == "gpt" else ["B", "H", "W"]
    assert list(plan.ranges) == symbols
    if exported.fmt == "onnx":
        assert exported.result.check is not None
        assert exported.result.check.sizes == CASES[exported.name]
        assert exported.result.check.max_abs <= 1e-3
        assert "checked with onnxruntime at " in str(exported.result)
        model = onnx.load(str(exported.path), load_external_data=False)
        dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        assert dims == (["B", "T"] if exported.name == "gpt" else ["B", 3, "H", "W"])
        out = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
        assert out[0] == "B"


def test_derived_ranges() -> None:
    """ResNet's last stage is 1x1 at H=32: traced above it, its range starts where no
    intermediate is 1; U-Net's four pools need 32 (its pad_to covers odd sizes)."""
    from dsl.build.compile import BUILT
    from dsl.tools.export_dynamic import plan_dynamic

    resnet = dsl.build_model(EXAMPLES / "resnet18.net", device="meta")
    ranges = plan_dynamic(BUILT[resnet][0], True).ranges
    assert (ranges["H"].min, ranges["H"].trace, ranges["H"].multiple) == (33, 33, 1)
    assert (ranges["B"].min, ranges["B"].trace) == (1, 2)
    unet = dsl.build_model(EXAMPLES / "unet.net", device="meta")
    ranges = plan_dynamic(BUILT[unet][0], True).ranges
    assert (ranges["H"].min, ranges["W"].min, ranges["W"].trace) == (32, 32, 48)


DIVISIBLE = """net Div:
    input x: [B, 4, H, W]
    pool = MaxPool2d(2)
    up = Upsample(scale_factor=2)
    return cat([x, up(pool(x))], dim=1)
"""


def test_divisibility_is_derived(tmp_path: Path) -> None:
    """Without padding, cat needs even sizes: H and W become 2*_H, 2*_W."""
    result = dsl.export(DIVISIBLE, tmp_path / "div.onnx")
    assert result.plan is not None
    assert {n: (r.min, r.multiple) for n, r in result.plan.ranges.items()} == {
        "B": (1, 1),
        "H": (4, 2),
        "W": (4, 2),
    }
    assert result.dims_text() == (
        "dynamic: B in [1, inf], H in [4, inf] (multiple of 2), W in [4, inf] (multiple of 2)"
    )
    model = onnx.load(str(tmp_path / "div.onnx"))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["B", 4, "2*_H", "2*_W"]
    with pytest.raises(ArgumentError, match="H=33 is not one the export accepts"):
        dsl.export(DIVISIBLE, tmp_path / "div.pt2", check_sizes=[{"B": 1, "H": 33, "W": 32}])


FIXED = """net Probe:
    input x: [B, C]
    fc = Linear(4)
    return fc(x)
"""


def test_a_dim_that_cannot_stay_dynamic_is_located(tmp_path: Path) -> None:
    spec = tmp_path / "probe.net"
    spec.write_text(FIXED)
    with pytest.raises(SymbolicDecisionError) as info:
        dsl.export(spec, tmp_path / "probe.pt2")
    error = info.value
    assert error.message == "torch.export cannot keep 'C' dynamic: the network fixes 'C' at 32"
    assert (error.span.file, error.span.line, error.span.col) == (str(spec), 2, 18)
    assert error.hint is not None and "--dynamic B (dynamic=['B'] in Python)" in error.hint
    assert [(n.span.line, n.message) for n in error.notes] == [
        (3, "Linear(in_features=32) read its size from the input here; its weights fix 'C'")
    ]
    result = dsl.export(spec, tmp_path / "probe.pt2", dynamic=["B"])
    assert result.dims_text() == "dynamic: B in [1, inf]"
    assert result.check is not None and [s["B"] for s in result.check.sizes] == [1, 5]


def test_cli_located_error_and_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dsl.cli import main

    spec = tmp_path / "probe.net"
    spec.write_text(FIXED)
    assert (
        main(["export", str(spec), "--format", "exported-program", "-o", str(tmp_path / "a.pt2")])
        == 1
    )
    err = capsys.readouterr().err
    assert "probe.net:2:18: error[E311]: torch.export cannot keep 'C' dynamic" in err
    args = ["export", str(spec), "--format", "torchscript", "-o", str(tmp_path / "a.ts")]
    assert main([*args, "--input", "3x16"]) == 0
    out = capsys.readouterr().out
    assert "static: x 3x16" in out and "checked with torch.jit.load at 3x16" in out
    assert main([*args, "--dynamic", "B:1..8", "--no-check"]) == 0
    assert capsys.readouterr().out.strip().endswith("dynamic: B in [1, 8]")


def test_build_model_sizes_are_the_traced_sizes(tmp_path: Path) -> None:
    """A model built with sizes= is traced at them; the check avoids them."""
    model = dsl.build_model(EXAMPLES / "gpt.net", sizes={"B": 3, "T": 20}, seed=0)
    result = dsl.export(model, tmp_path / "gpt.pt2", dynamic={"T": (1, 64)})
    assert result.plan is not None and result.check is not None
    t = result.plan.ranges["T"]
    assert (t.representative, t.trace, t.min, t.max) == (20, 20, 1, 64)
    assert [s["T"] for s in result.check.sizes] == [10, 31]
    assert all(s["T"] != 20 for s in result.check.sizes)
    assert result.check.runner == "torch.export.load" and result.check.max_abs <= 1e-4
    assert result.check.shapes == [[(3, 10)], [(3, 31)]]


def test_a_refusal_is_an_error_with_the_sizes(tmp_path: Path) -> None:
    """The check runs the file itself: a size outside what it was exported for is refused."""
    from dsl.tools.export_check import self_check

    model = dsl.build_model(EXAMPLES / "depthwise.net", seed=0).eval()
    result = dsl.export(model, tmp_path / "dw.pt2", dynamic=["B"], check=False)
    assert result.check is None and result.plan is not None
    assert result.dims_text() == "dynamic: B in [1, inf]"
    result.plan.ranges["H"] = SymbolRange("H", 32, 32, 1)  # claim more than the file takes
    result.plan.where[0][2] = "H"
    with pytest.raises(ArgumentError, match="at inputs 1x32x40x48: it refused them"):
        self_check(model, result.plan, "exported-program", result.path, [{"B": 1, "H": 40}])


def test_parse_dynamic() -> None:
    assert parse_dynamic("B,T") == {"B": (None, None), "T": (None, None)}
    assert parse_dynamic("B, H:64..512,T:..1024") == {
        "B": (None, None),
        "H": (64, 512),
        "T": (None, 1024),
    }
    with pytest.raises(ArgumentError, match="cannot read 'H:64' in --dynamic"):
        parse_dynamic("H:64")
    with pytest.raises(ArgumentError, match="'Q', which no input declares"):
        dsl.export(FIXED, "unused.pt2", dynamic="Q")


def _plan(**ranges: SymbolRange) -> DynamicPlan:
    return DynamicPlan(["x"], [["B", None, "H"]], [(2, 3, 32)], [torch.float32], dict(ranges))


def test_check_sizes_avoid_the_traced_ones() -> None:
    plan = _plan(B=SymbolRange("B", 2, 2, 1, batch=True), H=SymbolRange("H", 32, 33, 33))
    assert check_sizes(plan) == [{"B": 1, "H": 34}, {"B": 5, "H": 49}]
    assert check_sizes(_plan()) == [{}]


TORCH_MESSAGE = """Constraints violated (H)! For more information, run with TORCH_LOGS="+dynamic".
  - Not all values of H = L['x'].size()[2] in the specified range satisfy the generated guard 16 <= L['x'].size()[2] and L['x'].size()[2] <= IntInfinity()
Suggested fixes:
  _H = Dim('_H', min=2)
  H = 8*_H

The error above occurred when calling torch.export.export."""


def test_torch_suggestions_narrow_the_range() -> None:
    plan = _plan(H=SymbolRange("H", 32, 32, 1))
    assert refine(plan, TORCH_MESSAGE)
    assert (plan.ranges["H"].min, plan.ranges["H"].multiple) == (16, 8)
    assert not refine(plan, TORCH_MESSAGE)  # nothing new: the error explains it


def test_docs_show_the_real_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/export.md's spec and error are what `dsl export` gives for them."""
    from dsl.cli import main
    from tests.test_docs import blocks

    page = [text for where, text in blocks("net") if "export.md" in where]
    shown = [text for where, text in blocks("text") if "export.md" in where and "E311" in text]
    assert page == [FIXED] and len(shown) == 1
    monkeypatch.chdir(tmp_path)
    Path("probe.net").write_text(FIXED)
    assert main(["export", "probe.net", "--format", "onnx", "-o", "probe.onnx"]) == 1
    assert capsys.readouterr().err.startswith(shown[0])
