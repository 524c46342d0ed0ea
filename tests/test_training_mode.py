"""`training` in graph bodies: `if training:` and `a if training else b` compile to a real
`if self.training:` in the generated module; both arms are shape-checked and the values
they give must agree where they meet (issue 13)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dsl
from dsl.cli import main
from dsl.errors import DSLError

AUX_NET = """\
net Aux:
    input x: [4, 8]
    fc = Linear(8, 6)
    aux = Linear(8, 3)
    y = fc(x)
    if training:
        z = dropout(y, 0.5) * 2
    else:
        z = y + 1
    w = z if training else relu(z)
    if not training:
        return w
    a = aux(x)
    return w, a
"""


class Aux(nn.Module):
    """AUX_NET as written by hand: GoogLeNet-style outputs, a tuple in training only."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 6)
        self.aux = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = self.fc(x)
        z = F.dropout(y, 0.5, training=self.training) * 2 if self.training else y + 1
        w = z if self.training else F.relu(z)
        if not self.training:
            return w
        return w, self.aux(x)


def run(model: nn.Module, x: torch.Tensor, seed: int = 3) -> object:
    torch.manual_seed(seed)
    return model(x)


def test_training_branches_match_a_hand_written_module() -> None:
    model = dsl.build_model(AUX_NET, seed=0)
    torch.manual_seed(0)
    ref = Aux()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(4, 8)
    out, ref_out = run(model.train(), x), run(ref.train(), x)
    assert isinstance(out, tuple) and len(out) == 2
    assert all(torch.equal(a, b) for a, b in zip(out, ref_out))  # type: ignore[arg-type]
    out, ref_out = run(model.eval(), x), run(ref.eval(), x)
    assert isinstance(out, torch.Tensor) and torch.equal(out, ref_out)  # type: ignore[arg-type]


def test_the_generated_code_branches_on_self_training() -> None:
    source = type(dsl.build_model(AUX_NET)).dsl_source
    assert source.count("if self.training:") == 3
    assert "aux" not in source.split("if self.training:")[1].split("else:")[1]


def test_a_model_with_branches_pickles() -> None:
    model = dsl.build_model(AUX_NET, seed=0).eval()
    x = torch.randn(4, 8)
    assert torch.equal(pickle.loads(pickle.dumps(model))(x), model(x))


def test_nested_branches_and_members_defined_in_an_arm() -> None:
    spec = """\
net N:
    input x: [2, 5]
    if training:
        extra = Linear(5, 5)
        y = extra(x)
        if training:
            y = y * 3
    else:
        y = x
    return y + 1
"""
    model = dsl.build_model(spec, seed=0)
    x = torch.randn(2, 5)
    assert "extra.weight" in model.state_dict()
    assert torch.equal(model.eval()(x), x + 1)
    assert torch.allclose(model.train()(x), model.extra(x) * 3 + 1)


def test_training_passed_to_an_op_is_the_modules_mode() -> None:
    spec = "net N:\n    input x: [8, 16]\n    return dropout(x, 0.5, training=training)\n"
    model = dsl.build_model(spec)
    x = torch.ones(8, 16)
    assert torch.equal(model.eval()(x), x)
    assert not torch.equal(model.train()(x), x)


def test_export_in_eval_mode_takes_the_eval_branch() -> None:
    model = dsl.build_model(AUX_NET, seed=0).eval()
    x = torch.randn(4, 8)
    exported = torch.export.export(model, (x,))
    assert torch.equal(exported.module()(x), model(x))


def _error(spec: str) -> DSLError:
    with pytest.raises(DSLError) as info:
        dsl.build_model(spec)
    return info.value


@pytest.mark.parametrize(
    ("body", "message", "line"),
    [
        (
            "    if training:\n        y = x[:, :2]\n    else:\n        y = x\n    return y\n",
            "'y' is a tensor [2, 2] in training mode but a tensor [2, 4] in eval mode",
            7,
        ),
        (
            "    if training:\n        y = relu(x)\n    return y\n",
            "'y' is given a value in training mode only",
            5,
        ),
        ("    return x[:, :2] if training else x\n", "in training mode but a tensor [2, 4]", 3),
        ("    if training and true:\n        return x\n    return x\n", "'training' is known", 3),
        ("    return x if bool(training) else x\n", "'training' is known only", 3),
        ("    fc = Linear(4, 4, bias=training)\n    return fc(x)\n", "'training' is known", 3),
        (
            "    if training:\n        if false:\n            return x\n    else:\n        return x\n",
            "only the eval branch of 'if training:' returns",
            3,
        ),
    ],
)
def test_misuse_is_a_located_error(body: str, message: str, line: int) -> None:
    error = _error("net N:\n    input x: [2, 4]\n" + body)
    assert message in error.message
    assert error.span.line == line
    assert error.hint


def test_a_nested_block_returns_alike_in_both_modes() -> None:
    spec = """\
block B:
    input x
    if training:
        return x, x
    return x

net N:
    input x: [2, 4]
    b = B()
    return b(x)
"""
    error = _error(spec)
    assert error.message == (
        "this block returns a tuple of 2 in training mode but a tensor [2, 4] in eval mode"
    )
    assert error.span.line == 3 and error.hint


def test_tools_follow_a_model_with_branches(tmp_path: Path) -> None:
    spec = tmp_path / "aux.net"
    spec.write_text(AUX_NET, encoding="utf-8")
    for argv in (["graph", str(spec), "-o", str(tmp_path / "aux.dot")], ["summary", str(spec)]):
        assert main(argv) == 0
    assert "training" in (tmp_path / "aux.dot").read_text(encoding="utf-8")


YAML_AUX = """\
defs:
- net: WithAux
  body:
  - {input: x, shape: [N, 16]}
  - {let: body, value: {Linear: [16, 8]}}
  - {let: aux, value: {Linear: [16, 3]}}
  - {let: y, value: '${body(x)}'}
  - if: ${training}
    then:
    - {let: y, value: '${dropout(y, 0.2) * 2}'}
    else:
    - {let: y, value: '${y + 1}'}
  - if: ${not training}
    then:
    - {return: '${y}'}
  - {return: '${(y, aux(x))}'}
"""


def test_the_yaml_form_builds_the_same_module(tmp_path: Path) -> None:
    net_file, yaml_file = tmp_path / "a.net", tmp_path / "a.yaml"
    net_file.write_text(
        "net WithAux:\n    input x: [N, 16]\n    body = Linear(16, 8)\n    aux = Linear(16, 3)\n"
        "    y = body(x)\n    if training:\n        y = dropout(y, 0.2) * 2\n    else:\n"
        "        y = y + 1\n    if not training:\n        return y\n    return y, aux(x)\n",
        encoding="utf-8",
    )
    yaml_file.write_text(YAML_AUX, encoding="utf-8")
    sources = [type(dsl.build_model(path)).dsl_source for path in (net_file, yaml_file)]
    assert sources[0] == sources[1] and "if self.training:" in sources[0]


def test_a_tensor_made_in_an_arm_lands_on_the_inputs_device() -> None:
    spec = """\
net N:
    input x: [B, 4]
    n = x.shape[0]
    if training:
        y = zeros(n, 4)
    else:
        y = ones(n, 4)
    return x + y
"""
    model = dsl.build_model(spec)
    x = torch.ones(3, 4)
    assert torch.equal(model.train()(x), x) and torch.equal(model.eval()(x), x + 1)
    assert model.eval()(torch.ones(2, 4, device="meta")).device.type == "meta"
