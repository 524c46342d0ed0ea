"""examples/gpt.net against a nanoGPT-style model written by hand in plain PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
import torch.fx
from references import GPT as ReferenceGPT

import dsl

ROOT = Path(__file__).resolve().parent.parent
GPT = ROOT / "examples" / "gpt.net"
DEFAULTS = dict(n_layer=2, d_model=64, n_head=4, vocab=256, block_size=64)


# --------------------------------------------------------------------------- the reference


# --------------------------------------------------------------------------- tests


def test_builds_and_runs_at_defaults() -> None:
    model = dsl.build_model(str(GPT), seed=0)
    idx = torch.randint(0, 256, (2, 16))
    assert model(idx).shape == (2, 16, 256)


def test_matches_handwritten_nanogpt() -> None:
    model = dsl.build_model(str(GPT), seed=0).eval()
    reference = ReferenceGPT(**DEFAULTS).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    reference.load_state_dict(model.state_dict(), strict=True)
    idx = torch.randint(0, 256, (3, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(idx), reference(idx))
    # the head is tied: no lm_head parameters, and the logits move with wte
    assert not any(k.startswith("lm_head") for k in model.state_dict())


def test_symbolic_trace() -> None:
    model = dsl.build_model(str(GPT), seed=0).eval()
    traced = torch.fx.symbolic_trace(model)
    idx = torch.randint(0, 256, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(traced(idx), model(idx))


def test_other_sizes() -> None:
    params = dict(n_layer=3, d_model=48, n_head=6, vocab=100, block_size=32)
    model = dsl.build_model(str(GPT), params=params, seed=0).eval()
    reference = ReferenceGPT(**params).eval()
    reference.load_state_dict(model.state_dict(), strict=True)
    idx = torch.randint(0, 100, (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(model(idx), reference(idx))


_VALIDATE_175B = textwrap.dedent(
    """
    import json, resource, sys
    import dsl

    # Warm up with the small default model first, so that lazy imports (lark, the grammar,
    # torch's meta kernels) are not counted: the delta is what the 175B sizes cost.
    dsl.validate(sys.argv[1])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    resolved = dsl.validate(
        sys.argv[1],
        params=dict(n_layer=96, d_model=12288, n_head=96, vocab=50257, block_size=2048),
    )
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    print(json.dumps({"delta": (after - before) * scale, "shape": list(resolved.output.shape)}))
    """
)


def test_validate_175b_allocates_no_weights() -> None:
    """GPT-3 175B sizes: validation runs on meta tensors, so peak RSS barely moves."""
    result = subprocess.run(
        [sys.executable, "-c", _VALIDATE_175B, str(GPT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shape"][-1] == 50257
    delta_mb = report["delta"] / 2**20
    print(f"peak RSS delta for the 175B validate: {delta_mb:.1f} MB")
    assert delta_mb < 500, f"validate allocated {delta_mb:.0f} MB: weights are being materialised"
