"""Run-time trust (issue 14): seeded builds leave global state alone and work from threads,
build_model's own arguments are checked, errors quote their own source, specs stay offline."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import dsl

MLP = """
net Mlp(width=16):
    input x: [B, 8]
    fc1 = Linear(8, width)
    fc2 = Linear(width, 4)
    return fc2(fc1(x))
"""


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- seeding


def test_seeded_build_leaves_the_global_rng_state_alone() -> None:
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    dsl.build_model(MLP, seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_seeded_build_draws_what_manual_seed_draws() -> None:
    torch.manual_seed(0)
    expected = torch.nn.Linear(8, 16).weight.detach().clone()
    torch.manual_seed(99)
    assert torch.equal(dsl.build_model(MLP, seed=0).fc1.weight, expected)


def test_per_module_seeded_build_leaves_the_global_rng_state_alone() -> None:
    before = torch.random.get_rng_state()
    dsl.build_model(MLP, seed=3, init_stream="per-module")
    assert torch.equal(torch.random.get_rng_state(), before)


def test_unseeded_build_still_draws_from_the_global_stream() -> None:
    torch.manual_seed(5)
    a = _weights(dsl.build_model(MLP))
    torch.manual_seed(5)
    assert _same(a, _weights(dsl.build_model(MLP)))


def test_seeded_builds_from_threads_match_serial_builds() -> None:
    seeds = list(range(12))
    serial = [_weights(dsl.build_model(MLP, seed=s, params={"width": 64})) for s in seeds]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(
            pool.map(lambda s: _weights(dsl.build_model(MLP, seed=s, params={"width": 64})), seeds)
        )
    assert [_same(a, b) for a, b in zip(serial, threaded)] == [True] * len(seeds)


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("seed", 2**64),
        ("seed", -(2**63) - 1),
        ("seed", 1.5),
        ("seed", True),
        ("device", "cuda:99" if torch.cuda.is_available() else "cuda"),
        ("device", "gpu"),
        ("dtype", torch.int64),
        ("dtype", "float32"),
        ("sizes", {"B": -1}),
        ("sizes", {"B": 0}),
        ("sizes", {"B": 2.5}),
        ("sizes", [("B", 2)]),
    ],
)
def test_bad_build_arguments_are_dsl_errors_naming_the_argument(
    argument: str, value: object
) -> None:
    from dsl.errors import ArgumentError, CallArgumentError

    with pytest.raises(CallArgumentError) as info:
        dsl.build_model(MLP, **{argument: value})
    assert isinstance(info.value, ArgumentError)
    assert info.value.code == "E304"
    assert argument in info.value.message
    assert info.value.hint


def test_validate_checks_sizes_too() -> None:
    from dsl.errors import CallArgumentError

    with pytest.raises(CallArgumentError, match="sizes"):
        dsl.validate(MLP, sizes={"B": -1})


@pytest.mark.parametrize("seed", [0, 2**64 - 1, -(2**63)])
def test_every_seed_torch_takes_still_builds(seed: int) -> None:
    dsl.build_model(MLP, seed=seed)


def test_half_precision_and_meta_builds_are_still_accepted() -> None:
    assert dsl.build_model(MLP, seed=0, dtype=torch.float16).fc1.weight.dtype == torch.float16
    assert dsl.build_model(MLP, device="meta").fc1.weight.is_meta


# ----------------------------------------------------------------------------- quoted source


def _unknown_layer_spec(tag: int) -> str:
    padding = "\n" * (tag % 5)  # the faulty line moves with the spec
    return f"{padding}net N{tag}:\n    input x: [B, 4]\n    return fc(x): Lineer{tag}(4, 2)\n"


def _error_of(text: str) -> dsl.DSLError:
    with pytest.raises(dsl.DSLError) as info:
        dsl.validate(text)
    return info.value


def test_an_error_quotes_its_own_text_after_another_spec_is_read() -> None:
    first = _error_of(_unknown_layer_spec(1))
    _error_of(_unknown_layer_spec(2))
    dsl.validate(MLP)
    assert "Lineer1(4, 2)" in first.render()


def test_errors_quote_their_own_text_from_many_threads() -> None:
    def render(tag: int) -> bool:
        return f"Lineer{tag}(4, 2)" in _error_of(_unknown_layer_spec(tag)).render()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(render, range(400)))
    assert results.count(False) == 0


def test_an_error_rendered_in_another_thread_quotes_its_text() -> None:
    error = _error_of(_unknown_layer_spec(7))
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert "Lineer7(4, 2)" in pool.submit(error.render).result()


# ----------------------------------------------------------------------------- offline

PRETRAINED = {
    "member": """
net Pretrained:
    input x: [B, 3, 32, 32]
    backbone = torchvision.models.resnet18(weights="DEFAULT")
    return backbone(x)
""",
    "derived": """
net Pretrained = torchvision.models.resnet18(weights="IMAGENET1K_V1"):
    input x: [B, 3, 32, 32]
""",
    "legacy": """
net Pretrained = torchvision.models.resnet18(pretrained=True):
    input x: [B, 3, 32, 32]
""",
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every download torchvision starts is recorded and stopped."""
    import torchvision.models._api

    fetched: list[str] = []

    class Stopped(Exception):
        pass

    def fetch(self: object, *args: object, **kwargs: object) -> None:
        fetched.append(str(self))
        raise Stopped(str(self))

    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", fetch)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fetch)
    return fetched


@pytest.mark.parametrize("kind", sorted(PRETRAINED))
def test_validate_never_downloads(kind: str, no_network: list[str]) -> None:
    from dsl.errors import NetworkAccessError

    with pytest.raises(NetworkAccessError) as info:
        dsl.validate(PRETRAINED[kind])
    assert no_network == []
    assert info.value.span.line > 0 and "allow_download=True" in (info.value.hint or "")
    assert "torchvision.models.resnet18" in info.value.message


@pytest.mark.parametrize("kind", sorted(PRETRAINED))
def test_build_refuses_downloads_by_default(kind: str, no_network: list[str]) -> None:
    from dsl.errors import NetworkAccessError

    with pytest.raises(NetworkAccessError):
        dsl.build_model(PRETRAINED[kind], device="meta")
    assert no_network == []


def test_build_downloads_when_the_caller_allows_it(no_network: list[str]) -> None:
    with pytest.raises(Exception, match=r"ResNet18_Weights\.IMAGENET1K_V1"):
        dsl.build_model(PRETRAINED["member"], allow_download=True)
    assert no_network
    from dsl.errors import NetworkAccessError

    with pytest.raises(NetworkAccessError):  # the permission ends with the call
        dsl.validate(PRETRAINED["member"])


def test_models_without_pretrained_weights_still_build() -> None:
    spec = PRETRAINED["member"].replace('weights="DEFAULT"', "weights=None")
    assert dsl.validate(spec).output.shape[-1] == 1000


def test_dsl_build_downloads_only_with_allow_download(
    tmp_path, no_network: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from dsl.cli import main

    spec = tmp_path / "pretrained.net"
    spec.write_text(PRETRAINED["derived"], encoding="utf-8")
    out = tmp_path / "model.pt"
    assert main(["build", str(spec), "-o", str(out)]) != 0
    assert "E520" in capsys.readouterr().err and no_network == []
    with pytest.raises(Exception, match="IMAGENET1K_V1"):
        main(["build", str(spec), "-o", str(out), "--allow-download"])
    assert no_network


def test_materialize_and_load_model_check_their_arguments_too(tmp_path) -> None:
    from dsl.errors import CallArgumentError

    with pytest.raises(CallArgumentError, match=r"dsl\.materialize"):
        dsl.materialize(dsl.build_model(MLP, device="meta"), "cpu", seed=2**64)
    with pytest.raises(CallArgumentError, match=r"dsl\.load_model"):
        dsl.load_model(tmp_path / "absent.pt", device="gpu")
