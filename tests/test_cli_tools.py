"""The `dsl` tools that look at a built network: summary, graph, diff, resolve, build, export.

Each test checks what a command says, not only that it exits 0: the summary's totals
against the built model, the picture's nodes against the spec's members, diff's keys
against what `load_state_dict` reports, the ejected source against the built model.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dsl
from dsl.build.compile import compile_resolved
from dsl.cli import main
from dsl.tools.export import example_inputs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ALL = sorted(EXAMPLES.glob("*.net"))
SIZES = {"B": 2, "N": 2, "H": 32, "W": 32, "T": 16}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def top_members(path: Path) -> list[str]:
    root = dsl.validate(path).root
    members = root.members if hasattr(root, "members") else root.children
    return [name for name, _ in members]


# ----------------------------------------------------------------------------- summary


@pytest.mark.parametrize(
    "name",
    ["unet", "weight_sharing", "gpt", "custom_layer", "moduledict_heads", "sequential_positional"],
)
def test_summary_totals_match_built_model(capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = EXAMPLES / f"{name}.net"
    code, out, _ = run(capsys, "summary", path, "--format", "json")
    assert code == 0
    data = json.loads(out)
    model = dsl.build_model(path, seed=0)
    params = list(model.parameters())  # shared weights once
    assert data["params"] == sum(p.numel() for p in params)
    assert data["trainable"] == sum(p.numel() for p in params if p.requires_grad)
    assert data["param_bytes"] == sum(p.numel() * p.element_size() for p in params)
    assert data["flops"] > 0
    assert data["rows"][0]["params"] == data["params"]


def test_output_closed_early_is_no_error() -> None:
    """`dsl summary ... | head`: the reader goes away; the command ends quietly, status 0."""
    code = "from dsl.cli import main; raise SystemExit(main(['summary', 'examples/resnet50.net']))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # type: ignore[union-attr]
    stderr = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert proc.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", EXAMPLES / "unet.net")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "Module",
        "Type",
        "Output",
        "shape",
        "Params",
        "Trainable",
        "FLOPs",
        "Spec",
    ]
    for member in top_members(EXAMPLES / "unet.net"):
        assert any(line.startswith(f"  {member} ") for line in lines), member
    inc = next(line for line in lines if line.startswith("  inc "))
    assert "DoubleConv" in inc and "[B, 64, H, W]" in inc and "38,848" in inc
    conv = next(line for line in lines if line.strip().startswith("0 ") and "Conv2d" in line)
    assert "unet.net:7" in conv  # the spec line the layer came from
    assert "Total parameters:     17,263,042" in out
    assert "Parameter memory:" in out and "Activation memory:" in out and "FLOPs per sample:" in out


def test_summary_input_and_depth(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "summary", EXAMPLES / "unet.net", "--input", "1x3x64x64", "--depth", "1"
    )
    assert code == 0
    assert "[1, 2, 64, 64]" in out and "[1, 64, 64, 64]" in out
    assert "double_conv" not in out  # deeper than --depth 1
    code, _, err = run(capsys, "summary", EXAMPLES / "unet.net", "--input", "1x4x64x64")
    assert code == 1 and "dimension 1" in err  # n_channels fixes it at 3


def test_summary_shared_weights_and_matmul_flops(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", EXAMPLES / "weight_sharing.net")
    assert code == 0
    assert "(shared with fc)" in out
    code, out, _ = run(capsys, "summary", EXAMPLES / "custom_layer.net", "--format", "json")
    data = json.loads(out)
    assert data["flops"] == 2 * 2 * 2 * 3  # x @ w: N=2 rows, 2 x 3 weight, 2 FLOPs per multiply-add


def test_summary_gpt_attention_flops(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", EXAMPLES / "gpt.net", "--format", "json")
    assert code == 0
    data = json.loads(out)
    attn = next(r for r in data["rows"] if r["name"] == "h.0.attn")
    linears = sum(
        r["flops"] for r in data["rows"] if r["name"] in ("h.0.attn.c_attn", "h.0.attn.c_proj")
    )
    assert attn["flops"] > linears  # q @ k^T and the weighted sum of v count too


# ----------------------------------------------------------------------------- graph


@pytest.mark.parametrize("name", ["unet", "gpt", "moduledict_heads", "weight_sharing", "mnist_mlp"])
@pytest.mark.parametrize("suffix", ["dot", "mmd"])
def test_graph_text_mentions_every_member(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, suffix: str
) -> None:
    out_file = tmp_path / f"{name}.{suffix}"
    code, out, _ = run(capsys, "graph", EXAMPLES / f"{name}.net", "-o", out_file, "--depth", "1")
    assert code == 0 and "wrote" in out
    text = out_file.read_text()
    assert text.startswith("digraph" if suffix == "dot" else "flowchart TD")
    for member in top_members(EXAMPLES / f"{name}.net"):
        if name == "weight_sharing" and member == "fc_tied":
            assert "fc: Linear" in text  # an alias is the same box as its module
            continue
        assert member in text, member


def test_graph_skip_connections_and_depth(tmp_path: Path) -> None:
    from dsl.tools.graph import draw, to_dot

    resolved = dsl.validate(EXAMPLES / "unet.net")
    flat = draw(resolved, depth=1)
    by_title = {n.title.split(":")[0]: n.id for n in flat.nodes.values()}
    # up1 takes x5 from down4 and the skip x4 from down3
    assert (by_title["down3"], by_title["up1"]) in flat.edges
    assert (by_title["down4"], by_title["up1"]) in flat.edges
    assert (by_title["inc"], by_title["up4"]) in flat.edges
    opened = to_dot(draw(resolved, depth=2))
    assert "cluster_" in opened and "cat" in opened and "pad_to" in opened
    assert "[B, 1024, 4, 4]" in opened or "1024" in opened


def test_graph_svg_or_clear_fallback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    out_file = tmp_path / "unet.svg"
    if shutil.which("dot"):
        code, _, _ = run(capsys, "graph", EXAMPLES / "unet.net", "-o", out_file)
        assert code == 0 and "<svg" in out_file.read_text()
    monkeypatch.setattr("dsl.tools.graph.shutil.which", lambda name: None)
    code, out, err = run(capsys, "graph", EXAMPLES / "unet.net", "-o", tmp_path / "x.png")
    assert code == 0, err  # a missing optional program is no error in the spec
    assert "'dot' program is not installed" in out and "x.dot" in out
    assert "system package graphviz" in out and f"dot -Tpng {tmp_path / 'x.dot'}" in out
    assert (tmp_path / "x.dot").read_text().startswith("digraph")
    assert not (tmp_path / "x.png").exists()


# ----------------------------------------------------------------------------- diff

SPEC_A = """
net Small(width=32):
    input x: [N, 16]
    fc1 = Linear(width)
    act = ReLU()
    fc2 = Linear(10)
    return fc2(act(fc1(x)))
"""

SPEC_B = """
net Small(width=64):
    input x: [N, 16]
    fc1 = Linear(width)
    act = ReLU()
    norm = LayerNorm()
    head = Linear(10)
    return head(norm(act(fc1(x))))
"""


def test_diff_reports_keys_that_would_not_load(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a, b = tmp_path / "a.net", tmp_path / "b.net"
    a.write_text(SPEC_A)
    b.write_text(SPEC_B)
    code, out, _ = run(capsys, "diff", a, b, "--format", "json")
    assert code == 0
    data = json.loads(out)
    model_a, model_b = dsl.build_model(a), dsl.build_model(b)
    result = model_b.load_state_dict(
        {
            k: v
            for k, v in model_a.state_dict().items()
            if k not in model_b.state_dict() or model_b.state_dict()[k].shape == v.shape
        },
        strict=False,
    )
    assert sorted(data["missing_keys"]) == sorted(
        k for k in result.missing_keys if k not in model_a.state_dict()
    )
    assert sorted(data["missing_keys"]) == ["head.bias", "head.weight", "norm.bias", "norm.weight"]
    assert sorted(data["unexpected_keys"]) == ["fc2.bias", "fc2.weight"]
    assert sorted(k for k, _, _ in data["mismatched_keys"]) == ["fc1.bias", "fc1.weight"]
    assert {c["name"] for c in data["added"]} == {"norm", "head"}
    assert {c["name"] for c in data["removed"]} == {"fc2"}
    assert {c["name"] for c in data["changed"]} == {"fc1"}
    assert data["params_delta"] == sum(p.numel() for p in model_b.parameters()) - sum(
        p.numel() for p in model_a.parameters()
    )
    code, out, _ = run(capsys, "diff", a, b)
    assert "+ head: Linear" in out and "- fc2: Linear" in out and "would not load" in out
    assert "size mismatch: fc1.weight: [32, 16]" in out
    code, out, _ = run(capsys, "diff", a, a)
    assert "same modules" in out


# ----------------------------------------------------------------------------- resolve


def test_resolve_shows_origins(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "resolve", EXAMPLES / "unet.net", "--set", "n_classes=5")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("net UNet(n_channels=3, n_classes=5 [--set], bilinear=True)")
    first = next(line for line in lines if "Conv2d(" in line)
    assert (
        "0: Conv2d(in_channels=3 [inferred], out_channels=64, kernel_size=3, padding=1, bias=False"
        in first
    )
    assert "defaults: stride=1, dilation=1, groups=1, padding_mode='zeros'" in first
    last = [line for line in lines if "Conv2d(" in line][-1]
    assert "out_channels=5 [--set]" in last and "kernel_size=1" in last
    code, out, _ = run(capsys, "resolve", EXAMPLES / "unet.net", "--format", "json")
    entries = json.loads(out)
    leaves = [e for e in entries if e["kind"] == "layer"]
    model = dsl.build_model(EXAMPLES / "unet.net")
    assert len(leaves) == sum(1 for m in model.modules() if not list(m.children()))
    origins = {a["origin"] for e in leaves for a in e["args"]}
    assert origins == {"spec", "default", "inferred"}


def test_resolve_records_inferred_arguments() -> None:
    resolved = dsl.validate(EXAMPLES / "mnist_mlp.net")
    first_linear = dict(dict(resolved.root.members)["layer1"].children)["1"]
    assert first_linear.inferred == ()  # Linear(784, hidden): written
    resolved = dsl.validate(EXAMPLES / "two_outputs.net")
    conv = dict(dict(resolved.root.members)["backbone"].children)["0"]
    assert conv.inferred == ("in_channels",)


# ----------------------------------------------------------------------------- build and load_model


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("name", ["weight_sharing", "gpt", "small_conv", "custom_layer"])
def test_build_then_load_model_is_bit_equal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, suffix: str
) -> None:
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    path = EXAMPLES / f"{name}.net"
    out_file = tmp_path / f"model{suffix}"
    code, out, _ = run(capsys, "build", path, "-o", out_file, "--seed", "3")
    assert code == 0 and "parameters" in out
    loaded = dsl.load_model(out_file)
    expected = dsl.build_model(path, seed=3)
    assert list(loaded.state_dict()) == list(expected.state_dict())
    for key, value in expected.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    resolved = dsl.validate(path, sizes=SIZES)
    inputs = example_inputs(resolved)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(*inputs), expected.eval()(*inputs), rtol=0, atol=0)


def test_build_keeps_set_params(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "gpt.pt"
    code, _, _ = run(
        capsys,
        "build",
        EXAMPLES / "gpt.net",
        "-o",
        out_file,
        "--set",
        "n_layer=3",
        "--set",
        "d_model=32",
    )
    assert code == 0
    model = dsl.load_model(out_file)
    assert len(model.h) == 3 and model.wte.weight.shape == (256, 32)


def test_load_model_refuses_other_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(dsl.DSLError, match="not a checkpoint written by 'dsl build'"):
        dsl.load_model(plain)


# ----------------------------------------------------------------------------- export: eject


def _eject_round_trip(path: Path, tmp_path: Path) -> None:
    from dsl.tools.export import eject

    resolved = dsl.validate(path, sizes=SIZES)
    source = eject(resolved, source_name=path.name)
    assert "import dsl" not in source and "from dsl" not in source
    file = tmp_path / f"{path.stem}_ejected.py"
    file.write_text(source)
    namespace: dict = {"__name__": "ejected"}
    exec(
        compile(source, str(file), "exec"), namespace
    )  # a fresh namespace: only what the file imports
    cls = namespace[resolved.name]
    torch.manual_seed(0)
    model = compile_resolved(resolved).eval()
    torch.manual_seed(0)
    ejected = cls().eval()
    assert list(ejected.state_dict()) == list(model.state_dict())
    if "init rules are not written out" not in source:
        for (
            key,
            value,
        ) in model.state_dict().items():  # constructed in the same order: same initial weights
            assert torch.equal(ejected.state_dict()[key], value), key
    ejected.load_state_dict(model.state_dict(), strict=True)
    inputs = example_inputs(resolved)
    with torch.no_grad():
        torch.testing.assert_close(ejected(*inputs), model(*inputs))


# Nets built from a torchvision model (derived nets, parts, a model as the whole net),
# computed buffers (swin) and container blocks with a forward of their own (densenet) are not
# written out as plain PyTorch yet: eject refuses them, and says so.
NOT_EJECTABLE = {
    "deeplabv3",
    "densenet",
    "dilation",
    "features",
    "finetune",
    "head_surgery",
    "reuse_parts",
}


@pytest.mark.parametrize(
    "path",
    [p for p in ALL if p.stem not in NOT_EJECTABLE],
    ids=[p.stem for p in ALL if p.stem not in NOT_EJECTABLE],
)
def test_eject_round_trip(path: Path, tmp_path: Path) -> None:
    if not dsl.load(path).nets():
        pytest.skip("blocks only")
    _eject_round_trip(path, tmp_path)


@pytest.mark.parametrize("stem", sorted(NOT_EJECTABLE))
def test_eject_refuses_what_it_cannot_write_yet(stem: str) -> None:
    from dsl.tools.export import eject

    resolved = dsl.validate(EXAMPLES / f"{stem}.net", sizes=SIZES)
    with pytest.raises(dsl.DSLError, match="cannot be ejected yet"):
        eject(resolved, source_name=f"{stem}.net")


def test_eject_is_readable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "unet.py"
    code, _, _ = run(capsys, "export", EXAMPLES / "unet.net", "--format", "python", "-o", out_file)
    assert code == 0
    text = out_file.read_text()
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import torch", "import torch.nn as nn", "import torch.nn.functional as F"]
    assert (
        "def pad_to(x" in text and "y = pad_to(up, x2)" in text
    )  # helper copied in, under its own name
    for cls in (
        "class DoubleConv(nn.Module):",
        "class Down(nn.Module):",
        "class Up(nn.Module):",
        "class OutConv(nn.Module):",
        "class UNet(nn.Module):",
    ):
        assert cls in text
    assert (
        "nn.Conv2d(in_channels=in_channels, out_channels=out_channels, kernel_size=3, padding=1, bias=False)"
        in text
    )
    assert "self.inc = DoubleConv(" in text
    result = subprocess.run(
        [sys.executable, str(out_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "torch.Size([2, 2," in result.stdout


# ----------------------------------------------------------------------------- export: other formats


def _built(name: str) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    path = EXAMPLES / f"{name}.net"
    resolved = dsl.validate(path)
    torch.manual_seed(0)
    return compile_resolved(resolved).eval(), example_inputs(resolved)


@pytest.mark.parametrize("name", ["small_conv", "gpt"])
def test_export_onnx_runs_in_onnxruntime(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out_file = tmp_path / f"{name}.onnx"
    code, _, err = run(
        capsys, "export", EXAMPLES / f"{name}.net", "--format", "onnx", "-o", out_file
    )
    assert code == 0, err
    model, inputs = _built(name)
    session = ort.InferenceSession(str(out_file), providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
    got = session.run(None, feeds)[0]
    with torch.no_grad():
        expected = model(*inputs)
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-4, atol=1e-5)


def test_export_torchscript_and_exported_program(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model, inputs = _built("unet")
    with torch.no_grad():
        expected = model(*inputs)
    ts = tmp_path / "unet.ts"
    assert run(capsys, "export", EXAMPLES / "unet.net", "--format", "torchscript", "-o", ts)[0] == 0
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(ts))(*inputs), expected)
    ep = tmp_path / "unet.pt2"
    assert (
        run(capsys, "export", EXAMPLES / "unet.net", "--format", "exported-program", "-o", ep)[0]
        == 0
    )
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(str(ep)).module()(*inputs), expected)


# ----------------------------------------------------------------------------- help, progress


@pytest.mark.parametrize("command", ["summary", "graph", "diff", "resolve", "build", "export"])
def test_every_command_has_help_with_examples(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"dsl {command} " in out


def test_help_does_not_import_torch() -> None:
    code = "import sys; from dsl.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal() -> None:
    from dsl.tools.progress import Progress

    piped = io.StringIO()
    with Progress("building", total=3, stream=piped) as p:
        p.advance(3)
    assert piped.getvalue() == ""
    tty = _Terminal()
    with Progress("building", total=4, stream=tty) as p:
        p.advance(2)
        p.stage("writing")
    assert "building" in tty.getvalue() and "writing" in tty.getvalue() and "2/4" in tty.getvalue()
