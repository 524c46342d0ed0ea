"""`dsl.from_module` on small modules: each idiom the importer writes (blocks with
parameters, loops, training mode), and each thing it reports instead of writing."""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import dsl
from dsl.cli import main
from dsl.importer.leaves import constructor_arguments


def _line(obj: object, text: str) -> str:
    """`tests/test_import_units.py:N`, N the line of `obj`'s source holding `text`."""
    lines, first = inspect.getsourcelines(obj)  # type: ignore[arg-type]
    offset = next(i for i, line in enumerate(lines) if text in line)
    return f"{__file__}:{first + offset}"


class Widen(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.fc = nn.Linear(8, width)
        self.back = nn.Linear(width, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.back(torch.relu(self.fc(x)))


def test_instances_of_a_class_make_one_block_whose_parameters_differ() -> None:
    model = nn.Sequential(*(Widen(16 * (i + 1)) for i in range(4)))
    result = dsl.from_module(model, torch.randn(2, 8))
    assert result.faithful, result.problems
    assert result.text() == (
        "block Widen(width):\n"
        "    input x\n"
        "    fc = Linear(width)\n"
        "    back = Linear(8)\n"
        "    return x + back(relu(fc(x)))\n"
        "\n"
        "net Sequential = Sequential:\n"
        "    input x: [B, 8]\n"
        "    for i in range(4):\n"
        "        Widen(16 + 16 * i)\n"
    )


class Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.fc(x), 0.5, self.training)


def test_a_training_flag_becomes_training() -> None:
    result = dsl.from_module(Noisy(), torch.randn(3, 4))
    assert result.faithful, result.problems
    assert "    dropout_1 = dropout(fc(x), training=training)\n" in result.text()


class Aux(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.aux = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = self.body(x)
        if self.training:
            return y, self.aux(y)
        return y


def test_a_forward_that_differs_in_training_becomes_if_training() -> None:
    result = dsl.from_module(Aux(), torch.randn(3, 4))
    assert result.faithful, result.problems
    assert (
        "    if training:\n        body_1 = body(x)\n        return body_1, aux(body_1)\n    return body(x)\n"
        in result.text()
    )


class Half(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float16)


def test_a_value_without_spelling_is_reported_with_its_line() -> None:
    result = dsl.from_module(Half(), torch.randn(2, 3))
    assert not result.faithful
    [finding] = result.report.of_kind("unsupported")
    assert (finding.what, finding.module) == ("torch.float16", "")
    assert finding.source == _line(Half.forward, "float16")
    assert "has no spelling in the language" in finding.detail


class DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        return -x


class Holder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = DataDependent()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_a_module_fx_cannot_trace_is_reported() -> None:
    result = dsl.from_module(Holder(), torch.randn(2, 3))
    assert not result.faithful
    [finding] = result.report.of_kind("unsupported")
    assert (finding.what, finding.module) == ("DataDependent", "inner")
    assert finding.source == _line(DataDependent.forward, "def forward")
    assert "torch.fx cannot trace its forward" in finding.detail
    assert "@dsl.register" in finding.detail


class Shared(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x, inplace=True) + x


def test_writing_in_place_into_a_value_read_again_is_reported() -> None:
    result = dsl.from_module(Shared(), torch.randn(2, 3))
    assert not result.faithful
    [finding] = result.report.of_kind("unsupported")
    assert finding.source == _line(Shared.forward, "inplace=True")


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.randn(3))
        self.shift = nn.Parameter(torch.full((3,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def test_own_parameters_are_declared_random_values_reported() -> None:
    result = dsl.from_module(Scaled(), torch.randn(2, 3))
    assert result.faithful, result.problems
    assert "    param scale: [3] = zeros()\n    param shift: [3] = constant(0.5)\n" in result.text()
    [finding] = result.report.of_kind("init")
    assert finding.what == "Scaled.scale"


def test_constructor_arguments_are_read_back_without_defaults() -> None:
    assert constructor_arguments(nn.Conv2d(3, 8, (3, 3), padding=(1, 1), bias=False)) == {
        "in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1, "bias": False,
    }  # fmt: skip
    assert constructor_arguments(nn.MultiheadAttention(16, 4, batch_first=True)) == {
        "embed_dim": 16, "num_heads": 4, "batch_first": True,
    }  # fmt: skip
    assert constructor_arguments(nn.LayerNorm(8, eps=1e-6)) == {"normalized_shape": 8, "eps": 1e-6}


def test_the_command_writes_yaml_and_checks(tmp_path: object, capsys: object) -> None:
    out = f"{tmp_path}/resnet18.yaml"
    argv = ["import", "torchvision.models:resnet18", "--args", '{"num_classes": 10}']
    assert main([*argv, "--input", "2x3x32x32", "-o", out]) == 0
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    assert (
        printed
        == f"wrote {out}: checked: same state_dict keys in the same order, strict load, equal outputs in eval and train\n"
    )
    model = dsl.build_model(out)
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 10


def test_the_command_refuses_what_it_cannot_find(tmp_path: object, capsys: object) -> None:
    assert main(["import", "torchvision.models:no_such_model", "-o", f"{tmp_path}/x.net"]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "dsl import: error: cannot find 'torchvision.models:no_such_model'" in err


def test_torchvision_init_loops_become_recipes() -> None:
    """ResNet's and VGG's init loops are the language's `resnet()` and `vgg()` recipes: a
    seeded build of the imported spec gives torchvision's seeded weights, bit for bit."""
    for builder, recipe in (
        (torchvision.models.resnet18, "resnet()"),
        (torchvision.models.vgg11, "vgg()"),
    ):
        result = dsl.from_module(builder(), torch.randn(2, 3, 32, 32), check=False)
        assert f"    init:\n        {recipe}\n" in result.text()
        assert not result.report.of_kind("init")
        built = dsl.build_model(result.text(), seed=3)
        torch.manual_seed(3)
        reference = builder().state_dict()
        assert all(torch.equal(built.state_dict()[k], v) for k, v in reference.items())


class Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        nn.init.orthogonal_(self.fc.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_init_code_that_is_no_recipe_is_reported() -> None:
    result = dsl.from_module(Custom(), torch.randn(2, 4))
    assert result.faithful
    [finding] = result.report.of_kind("init")
    assert finding.what == "init.orthogonal_"
    assert finding.source == _line(Custom, "orthogonal_")


class Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x))


class Maybe(nn.Module):
    def __init__(self, gated: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.gate = Gate() if gated else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y if self.gate is None else self.gate(y)


def test_a_class_whose_later_instances_hold_another_class_comes_after_it() -> None:
    """The first `Maybe` holds no `Gate`; the second does: `Gate`'s block is made first
    (mobilenet_v3_large's InvertedResidual and SqueezeExcitation)."""
    result = dsl.from_module(nn.Sequential(Maybe(False), Maybe(True)), torch.randn(2, 4))
    assert result.faithful, result.problems
    names = [d.name for d in result.spec.defs]
    assert names == ["Gate", "Maybe", "Maybe_2", "Sequential"]
    assert "§" not in result.text()
