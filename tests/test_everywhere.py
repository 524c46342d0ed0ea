"""A built model goes wherever a PyTorch model goes, all on CPU: torch.save/torch.load,
torch.compile(fullgraph=True), torch.export, ONNX (run in onnxruntime), DDP on gloo with two
processes, FSDP2 with a meta-device build, SyncBatchNorm, bf16 autocast, and bit-identical
weights for the same seed in separate processes."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

import dsl

ROOT = Path(__file__).resolve().parent.parent

# Convolutions, batch norm, a residual add, pooling, a concat, then a linear head: the
# kinds of layers most models are made of.
SPEC = """\
net Tiny(classes=5):
    input x: [B, 3, 16, 16]
    stem = Conv2d(8, kernel_size=3, padding=1, bias=false)
    bn = BatchNorm2d()
    conv = Conv2d(8, kernel_size=3, padding=1)
    side = Conv2d(4, kernel_size=1)
    pool = MaxPool2d(2)
    norm = LayerNorm()
    head = Linear(classes)
    h = relu(bn(stem(x)))
    h = relu(h + conv(h))
    h = cat([h, side(h)], dim=1)
    h = pool(h)
    h = mean(h, dim=[2, 3])
    return head(norm(h))
"""

# Only layers whose initialisation is their own reset_parameters() (no BatchNorm buffers,
# no own params), so that materialising a meta build re-creates the direct build exactly.
PLAIN_SPEC = """\
net Plain = Sequential:
    input x: [B, 3, 8, 8]
    Conv2d(6, kernel_size=3, padding=1)
    ReLU()
    Conv2d(4, kernel_size=3, stride=2)
    Flatten()
    Linear(32)
    GELU()
    Linear(3)
"""


def _model(spec: str = SPEC, seed: int = 0) -> nn.Module:
    return dsl.build_model(spec, seed=seed).eval()


def _input(batch: int = 2, shape: tuple[int, ...] = (3, 16, 16), seed: int = 123) -> torch.Tensor:
    return torch.randn((batch, *shape), generator=torch.Generator().manual_seed(seed))


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------- save / load


def test_save_load_whole_model(tmp_path: Path) -> None:
    model = _model()
    x = _input()
    torch.save(model, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    assert type(loaded).__name__ == "Tiny"
    _assert_same_state(model, loaded)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_save_whole_model_loads_in_a_fresh_process(tmp_path: Path) -> None:
    model = _model()
    torch.save(model, tmp_path / "model.pt")
    torch.save(model(_input()).detach(), tmp_path / "out.pt")
    code = (
        "import torch, sys\n"
        f"m = torch.load({str(tmp_path / 'model.pt')!r}, weights_only=False)\n"
        f"ref = torch.load({str(tmp_path / 'out.pt')!r}, weights_only=True)\n"
        "x = torch.randn((2, 3, 16, 16), generator=torch.Generator().manual_seed(123))\n"
        "with torch.no_grad(): assert torch.equal(m(x), ref)\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_state_dict_weights_only(tmp_path: Path) -> None:
    model = _model(seed=1)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    other = _model(seed=2)
    other.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True), strict=True)
    _assert_same_state(model, other)


# ----------------------------------------------------------------------------- compilers and exporters


def test_torch_compile_fullgraph() -> None:
    torch._dynamo.reset()
    model = _model()
    x = _input()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x))
        assert torch.allclose(compiled(_input(batch=3)), model(_input(batch=3)))


def test_torch_export() -> None:
    model = _model()
    x = _input()
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.allclose(exported.module()(x), model(x), atol=1e-6)
    # A dynamic batch dimension exports too.
    batch = torch.export.Dim("batch", min=2, max=64)
    dynamic = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    with torch.no_grad():
        assert torch.allclose(dynamic.module()(_input(batch=5)), model(_input(batch=5)), atol=1e-6)


def test_onnx_export_runs_in_onnxruntime(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    model = _model()
    x = _input()
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(torch.from_numpy(result), expected, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- distributed


@contextlib.contextmanager
def _process_group(rank: int, world: int, port: int) -> Iterator[None]:
    """A gloo group for one worker. A worker whose checks all passed leaves with
    `os._exit(0)` once the group is destroyed: at interpreter shutdown, gloo's threads can
    still hold tensors that need the GIL, and the process then aborts now and then
    ("terminate called without an active exception") after the test has passed. A failing
    worker raises as usual, so that spawn reports its traceback."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    try:
        yield
        dist.barrier()  # neither rank tears gloo down while the other still talks to it
    finally:
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _ddp_worker(rank: int, world: int, port: int) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    with _process_group(rank, world, port):
        model = dsl.build_model(SPEC, seed=0)  # the same seed on every rank
        ddp = DistributedDataParallel(model)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        x = _input(batch=4, seed=rank)  # different data on each rank
        target = torch.randint(0, 5, (4,), generator=torch.Generator().manual_seed(rank))
        loss = nn.functional.cross_entropy(ddp(x), target)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        assert grads.abs().sum() > 0
        gathered = [torch.empty_like(grads) for _ in range(world)]
        dist.all_gather(gathered, grads)
        for other in gathered:
            assert torch.equal(other, grads), "gradients differ across ranks after the allreduce"
        optimizer.step()
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.empty_like(weights) for _ in range(world)]
        dist.all_gather(gathered, weights)
        assert all(torch.equal(w, weights) for w in gathered), "weights differ after the step"


def test_distributed_data_parallel_gloo() -> None:
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    mp.spawn(_ddp_worker, args=(2, _free_port()), nprocs=2, join=True)


def _materialise(model: nn.Module, seed: int) -> None:
    """Re-run every module's own initialisation, in construction order, from `seed`."""
    torch.manual_seed(seed)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


def test_meta_build_then_materialise_matches_direct_build() -> None:
    direct = dsl.build_model(PLAIN_SPEC, seed=7)
    meta = dsl.build_model(PLAIN_SPEC, seed=7, device="meta")
    assert all(p.is_meta for p in meta.parameters())
    meta.to_empty(device="cpu")
    _materialise(meta, 7)
    _assert_same_state(direct, meta)


def _fsdp_worker(rank: int, world: int, port: int) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    with _process_group(rank, world, port):
        mesh = init_device_mesh("cpu", (world,))
        direct = dsl.build_model(PLAIN_SPEC, seed=7)
        expected = {k: v.clone() for k, v in direct.state_dict().items()}

        # The FSDP2 recipe: build on meta, shard, allocate the local shards, initialise.
        meta = dsl.build_model(PLAIN_SPEC, seed=7, device="meta")
        for layer in meta:
            if any(True for _ in layer.parameters()):
                fully_shard(layer, mesh=mesh)
        fully_shard(meta, mesh=mesh)
        meta.to_empty(device="cpu")
        _materialise(meta, 7)
        # Limitation: reset_parameters() on sharded DTensors draws from torch's distributed RNG
        # (each shard its own offset), so those values need not equal a local build's. Shapes
        # and keys do; exact weights come from loading the direct build's full state dict, as
        # FSDP2 checkpoints are loaded.
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        sharded = meta.state_dict()
        assert list(sharded) == list(expected)
        assert all(tuple(sharded[k].shape) == tuple(expected[k].shape) for k in expected)
        set_model_state_dict(
            meta,
            {k: v.clone() for k, v in expected.items()},
            options=StateDictOptions(full_state_dict=True),
        )
        for key, value in meta.state_dict().items():
            assert torch.equal(value.full_tensor(), expected[key]), key

        # A training step runs, and every rank ends with the same full weights.
        x = torch.randn((4, 3, 8, 8), generator=torch.Generator().manual_seed(rank))
        meta(x).square().mean().backward()
        torch.optim.SGD(meta.parameters(), lr=0.1).step()
        full = torch.cat([p.full_tensor().flatten() for p in meta.parameters()])
        gathered = [torch.empty_like(full) for _ in range(world)]
        dist.all_gather(gathered, full)
        assert all(torch.equal(g, full) for g in gathered)


def test_fsdp2_fully_shard_from_meta_build() -> None:
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError:
        pytest.skip("this torch has no FSDP2 (torch.distributed.fsdp.fully_shard)")
    mp.spawn(_fsdp_worker, args=(2, _free_port()), nprocs=2, join=True)


def test_sync_batchnorm_conversion() -> None:
    model = _model()
    x = _input()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(_model())
    assert any(isinstance(m, nn.SyncBatchNorm) for m in converted.modules())
    assert not any(type(m) is nn.BatchNorm2d for m in converted.modules())
    _assert_same_state(model, converted)  # same keys and values: checkpoints still load
    converted.eval()
    with torch.no_grad():
        assert torch.allclose(converted(x), model(x))


# ----------------------------------------------------------------------------- precision and determinism


def test_autocast_bf16_on_cpu() -> None:
    model = _model()
    x = _input()
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), reference, atol=0.1, rtol=0.1)


_HASH = (
    "import hashlib, torch, dsl\n"
    "m = dsl.build_model({spec!r}, seed=1234)\n"
    "h = hashlib.sha256()\n"
    "for k, v in m.state_dict().items():\n"
    "    h.update(k.encode()); h.update(v.detach().contiguous().numpy().tobytes())\n"
    "print(h.hexdigest())\n"
)


def test_same_seed_gives_identical_weights_across_processes() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "random"}
    code = _HASH.format(spec=SPEC)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    digests = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 0, err[-2000:]
        digests.append(out.strip().splitlines()[-1])
    here = hashlib.sha256()
    for key, value in dsl.build_model(SPEC, seed=1234).state_dict().items():
        here.update(key.encode())
        here.update(value.detach().contiguous().numpy().tobytes())
    assert digests[0] == digests[1] == here.hexdigest()


def test_state_dict_via_bytes_is_weights_only_safe() -> None:
    buffer = io.BytesIO()
    torch.save(_model().state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
