"""A spec of a few lines never runs for minutes or takes gigabytes in `dsl.validate`: the
evaluator's cost model and size limits refuse it with a located `LimitError` (issue 14)."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

import dsl
from dsl.elaborate import limits
from dsl.errors import DSLError, LimitError, ShapeError, SizeLimitError, WorkLimitError

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 45.0  # of CPU time: wall time on a loaded shared machine measures the neighbours
MEBIBYTES = 400.0  # of resident memory growth


def _net(*lines: str, shape: str = "[B, 4]") -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"net N:\n    input x: {shape}\n{body}    return x\n"


def _block_tree(depth: int) -> str:
    leaf = "block L0:\n    input x: [M, 4]\n    return x\n"
    levels = "".join(
        f"block L{i}:\n    input x: [M, 4]\n    a = L{i - 1}()\n    b = L{i - 1}()\n"
        "    return b(a(x))\n"
        for i in range(1, depth + 1)
    )
    return leaf + levels + f"net N:\n    input x: [B, 4]\n    t = L{depth}()\n    return t(x)\n"


CASES = {
    "a string doubled 40 times": (_net("s = 'a'", *["s = str([s, s])"] * 40), "str()"),
    "str() of a self-aliased list": (
        _net("a = [1]", *["a = [a, a, a, a]"] * 30, "s = str(a)"),
        "over",
    ),
    "100,000 str() of a 100k list": (
        _net("a = list(range(100000))", "for i in range(100000):", "    s = str(a)"),
        "work budget",
    ),
    "an exponential block tree": (_block_tree(40), "work budget"),
    "a 4 MB string literal": (_net("s = '" + "a" * 4_000_000 + "'"), "characters long"),
    "65537 ResNet blocks": (
        "from resnet import ResNet, BasicBlock\nnet R = ResNet(BasicBlock, [65537, 2, 2, 2])\n",
        "work budget",
    ),
    "400 repeated surgery lines": (
        "net F = torchvision.models.resnet18():\n    input x: [B, 3, 64, 64]\n"
        + "    fc = Linear(10)\n" * 400,
        "work budget",
    ),
    "a dimension of 2**70": (_net(shape="[B, 2**70]"), "too large"),
    "a param of 2**70 columns (found by the fuzzer)": (
        _net("param w: [4, 2**70] = normal(0, 0.01)"),
        "too large",
    ),
    "a tensor of 32 * 10**18 elements": (_net(shape="[1, 1, 32, 10**18]"), "too large"),
}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_few_lines_are_refused_in_bounded_time_and_memory(case: str) -> None:
    text, words = CASES[case]
    dsl.validate(_net("a = 1"))  # imports and caches before measuring
    before, started = _peak_mib(), time.process_time()
    with pytest.raises(LimitError) as caught:
        dsl.validate(text if "ResNet" not in text else _in_blocks(text))
    assert time.process_time() - started < SECONDS
    assert _peak_mib() - before < MEBIBYTES
    assert caught.value.span.line >= 1 and words in caught.value.message, caught.value.message
    assert caught.value.hint, "a limit says how to raise it or what to change"
    if words == "work budget":
        assert isinstance(caught.value, WorkLimitError)
    if words in ("too large", "characters long"):
        assert isinstance(caught.value, SizeLimitError)


def _in_blocks(text: str) -> Path:
    path = ROOT / "blocks" / "_limits_test.net"  # beside resnet.net, which it imports
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _remove_scratch_spec() -> object:
    yield
    (ROOT / "blocks" / "_limits_test.net").unlink(missing_ok=True)


def test_the_work_budget_is_raised_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _net("for i in range(3000):", "    a = i")
    dsl.validate(text)
    monkeypatch.setenv(limits.WORK_ENV, "1000")
    with pytest.raises(WorkLimitError) as caught:
        dsl.validate(text)
    assert limits.WORK_ENV in (caught.value.hint or "")


def test_a_10k_layer_spec_is_within_the_limits() -> None:
    dsl.validate(
        "net N:\n    input x: [B, 16]\n    s = Sequential:\n        for i in range(10000):\n"
        "            Linear(16, 16)\n    return s(x)\n"
    )


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.*")), ids=lambda p: p.name)
def test_every_shipped_example_is_within_the_limits(path: Path) -> None:
    if path.suffix in (".net", ".yaml"):
        dsl.validate(path)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("u = Upsample(scale_factor=1e999)", ShapeError),
        ("c = Conv2d(8, kernel_size=3, stride=0)", ShapeError),
    ],
)
def test_layer_arguments_torch_refuses_are_located(line: str, kind: type[DSLError]) -> None:
    text = _net(line, f"x = {line.split()[0]}(x)", shape="[1, 16, 8, 8]")
    with pytest.raises(kind) as caught:
        dsl.validate(text)
    assert caught.value.span.line == 4


def test_max_params_follows_the_memory_available() -> None:
    assert limits.default_max_params(24 * 2**30) < 70000 * 70000
    assert limits.default_max_params(2**30) >= 60_000_000  # a ResNet-152 still builds
    assert limits.default_max_params(None) == 10**10


def test_a_model_larger_than_memory_is_refused_before_allocation() -> None:
    text = _net("fc = Linear(70000, 70000)", "x = fc(x)", shape="[1, 70000]")
    with pytest.raises(LimitError) as caught:
        dsl.build_model(text, max_params=limits.default_max_params(24 * 2**30))
    assert "max_params" in caught.value.message
