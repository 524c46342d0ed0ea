"""Fast, non-timing guards for the performance design (issue 8).

- a generated `forward` is straight-line code: no loop over nodes, no interpreter;
- intermediates are released as soon as they are dead (fx's `x = None`), checked both in the
  source and with a weakref on a real U-Net intermediate;
- `dsl.validate` never allocates parameter storage: every parameter and buffer made while
  validating lives on the meta device, and the CPU allocator sees no weight-sized block.
"""

from __future__ import annotations

import ast
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import dsl
import dsl.elaborate.values
from dsl.build.compile import GeneratedModule
from dsl.torchlib import shapes

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.net"))


def _generated(model: nn.Module) -> list[tuple[str, GeneratedModule]]:
    return [
        (name or "<root>", m) for name, m in model.named_modules() if isinstance(m, GeneratedModule)
    ]


@pytest.fixture(scope="module")
def built_examples() -> dict[str, nn.Module]:
    models = {}
    for path in EXAMPLES:
        try:
            models[path.name] = dsl.build_model(path, seed=0)
        except dsl.DSLError:
            continue  # a spec that needs a registered layer or other parameters; its own tests build it
    return models


def test_most_examples_build(built_examples: dict[str, nn.Module]) -> None:
    # The guards below must see the examples that matter, not silently nothing.
    for name in (
        "unet.net",
        "gpt.net",
        "mnist_mlp.net",
        "residual_block.net",
        "two_outputs.net",
        "weight_sharing.net",
    ):
        assert name in built_examples


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_generated_forward_has_no_loop(path: Path, built_examples: dict[str, nn.Module]) -> None:
    model = built_examples.get(path.name)
    if model is None:
        pytest.skip(f"{path.name} does not build with its defaults")
    for name, module in _generated(model):
        tree = ast.parse(module.dsl_source)
        loops = [
            type(node).__name__
            for node in ast.walk(tree)
            if isinstance(node, ast.For | ast.While | ast.AsyncFor | ast.comprehension)
        ]
        assert not loops, (
            f"{path.name}: {name}.forward loops ({', '.join(loops)}):\n{module.dsl_source}"
        )
        # and no interpreter: it neither walks a graph nor keeps values in a dict
        assert "environment" not in module.dsl_source and ".nodes" not in module.dsl_source


def _dead_values(src: str) -> set[str]:
    """Names the generated code sets to None (`a = b = None`)."""
    dead = set()
    for node in ast.walk(ast.parse(src)):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and node.value.value is None
        ):
            dead.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return dead


def test_generated_forward_releases_intermediates(built_examples: dict[str, nn.Module]) -> None:
    unet = built_examples["unet.net"]
    # Each skip connection is dropped right after its last use, not kept until return.
    dead = _dead_values(unet.dsl_source)
    for value in ("x", "x1", "x2", "x3", "x4", "x5"):
        assert any(d == value or d.startswith(value + "_") for d in dead), (
            f"{value} is never released:\n{unet.dsl_source}"
        )
    assert {"up", "y", "cat"} <= _dead_values(unet.up1.dsl_source)


def test_unet_intermediate_is_freed_before_forward_returns() -> None:
    model = dsl.build_model(ROOT / "examples" / "unet.net", seed=0, params={"n_classes": 2}).eval()
    seen: dict[str, Any] = {}

    def keep_weakref(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        seen["x5"] = weakref.ref(output)  # down4's output: only up1 reads it

    def check_dead(module: nn.Module, args: Any) -> None:
        seen["alive at up2"] = seen["x5"]() is not None

    def check_dead_in_up(module: nn.Module, args: Any) -> None:
        seen["upsampled alive at conv"] = seen["up"]() is not None

    def keep_up(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        seen["up"] = weakref.ref(output)  # inside up1: padded, concatenated, then dead

    hooks = [
        model.down4.register_forward_hook(keep_weakref),
        model.up2.register_forward_pre_hook(check_dead),
        model.up1.up.register_forward_hook(keep_up),
        model.up1.conv.register_forward_pre_hook(check_dead_in_up),
    ]
    try:
        with torch.no_grad():
            out = model(torch.randn(1, 3, 32, 32))
    finally:
        for hook in hooks:
            hook.remove()
    assert out.shape == (1, 2, 32, 32)
    assert seen["alive at up2"] is False, (
        "down4's output is still referenced after its last use (up1)"
    )
    assert seen["upsampled alive at conv"] is False, (
        "up1's upsampled map outlives the cat that consumed it"
    )


# --------------------------------------------------------------------------- validation allocates nothing


GPT_BIG = dict(
    n_layer=2, d_model=2048, n_head=16, vocab=50257, block_size=1024
)  # ~600 MB of fp32 weights


@pytest.fixture
def registered_tensors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, torch.device]]:
    """Every parameter and buffer any module registers while the test runs, with its device."""
    seen: list[tuple[str, torch.device]] = []
    register_parameter = nn.Module.register_parameter
    register_buffer = nn.Module.register_buffer

    def parameter(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None:
            seen.append((f"{type(self).__name__}.{name}", param.device))
        register_parameter(self, name, param)

    def buffer(
        self: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True
    ) -> None:
        if tensor is not None:
            seen.append((f"{type(self).__name__}.{name}", tensor.device))
        register_buffer(self, name, tensor, persistent)

    monkeypatch.setattr(nn.Module, "register_parameter", parameter)
    monkeypatch.setattr(nn.Module, "register_buffer", buffer)
    monkeypatch.setattr(
        dsl.elaborate.values, "_META_MODULES", {}
    )  # construct afresh, not from earlier tests
    return seen


@pytest.mark.parametrize(
    ("spec", "params"),
    [("unet.net", {}), ("gpt.net", GPT_BIG), ("mnist_mlp.net", {}), ("residual_block.net", {})],
)
def test_validate_puts_every_parameter_on_meta(
    spec: str, params: dict, registered_tensors: list
) -> None:
    try:
        dsl.validate(ROOT / "examples" / spec, params=params)
    except dsl.DSLError as exc:  # pragma: no cover - a spec that needs registration elsewhere
        pytest.skip(str(exc))
    assert registered_tensors, "validate made no modules at all?"
    real = [(name, device) for name, device in registered_tensors if device.type != "meta"]
    assert not real, f"validate allocated real storage: {real[:5]}"


def test_validate_allocates_no_weights_on_cpu() -> None:
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        resolved = dsl.validate(ROOT / "examples" / "gpt.net", params=GPT_BIG)
    assert resolved.output.device.type == "meta"
    largest = 0
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and str(node.extra_fields.device) == "cpu":
            largest = max(largest, node.extra_fields.alloc_size)
        stack.extend(node.children)
    # the token embedding alone would be 50257 x 2048 x 4 bytes = 412 MB
    assert largest < 1 << 20, f"a {largest / 2**20:.0f} MB CPU block was allocated while validating"


# --------------------------------------------------------------------------- meta builds and threads


def _inside_on_meta(inside: threading.Event, leave: threading.Event) -> threading.Thread:
    """A thread that enters `on_meta` (as validate does for each layer) and stays there."""

    def hold() -> None:
        with shapes.on_meta():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(10)
    return thread


def test_a_meta_build_in_another_thread_leaves_real_inits_alone() -> None:
    """Building on meta skips torch's init functions; a thread that initialises a real
    tensor at that moment must still get its values."""
    inside, leave = threading.Event(), threading.Event()
    thread = _inside_on_meta(inside, leave)
    try:
        real = torch.zeros(3)
        nn.init.constant_(real, 2.0)
        torch.manual_seed(0)
        linear = nn.Linear(4, 4)
        meta = torch.empty(3, device="meta")
        assert nn.init.constant_(meta, 2.0) is meta
    finally:
        leave.set()
        thread.join()
    assert torch.equal(real, torch.full((3,), 2.0))
    torch.manual_seed(0)
    assert torch.equal(linear.weight, nn.Linear(4, 4).weight)


def test_overlapping_meta_builds_restore_torch_init() -> None:
    """Two threads in `on_meta` at once, leaving in the order they came: torch's own
    functions are back afterwards, whichever left last."""
    originals = {
        name: getattr(nn.init, name) for name in ("kaiming_uniform_", "uniform_", "constant_")
    }
    events = [(threading.Event(), threading.Event()) for _ in range(2)]
    threads = [_inside_on_meta(inside, leave) for inside, leave in events]
    assert nn.init.uniform_ is not originals["uniform_"]
    for (_, leave), thread in zip(events, threads, strict=True):
        leave.set()
        thread.join()
    assert {name: getattr(nn.init, name) for name in originals} == originals
