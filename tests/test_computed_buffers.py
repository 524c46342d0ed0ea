"""Computed buffers (issue 13): `buffer name = <expression over torch functions>` is
evaluated when the model is built, its shape and dtype the value's; the value is data (not
recomputed in forward), checked on meta by validate and bounded by the limits; the .net and
YAML forms print back as written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models.swin_transformer import ShiftedWindowAttention

import dsl
from dsl.errors import LimitError
from dsl.syntax.parse_net import parse_net
from dsl.syntax.parse_yaml import parse_yaml
from dsl.syntax.printer import print_net
from dsl.syntax.yaml_printer import print_yaml

# Swin's relative position index, written without in-place updates: intermediate values
# may be named, and leave forward when only the buffer uses them.
SPEC = """\
net Window(wh=7, ww=5, heads=3):
    input x: [B, heads, wh * ww, wh * ww]
    param table: [(2 * wh - 1) * (2 * ww - 1), heads] = trunc_normal(std=0.02)
    coords = flatten(stack(meshgrid(arange(wh), arange(ww), indexing="ij")), 1)
    relative = (coords[:, :, none] - coords[:, none, :]).permute(1, 2, 0)
    buffer relative_position_index = ((relative[:, :, 0] + wh - 1) * (2 * ww - 1) + relative[:, :, 1] + ww - 1).flatten()
    buffer scale = tensor([0.5, 2.0]), persistent=false
    bias = table[relative_position_index].view(wh * ww, wh * ww, -1).permute(2, 0, 1)
    return x + bias.unsqueeze(0) * scale[0]
"""


def test_the_value_is_swins_relative_position_index() -> None:
    model = dsl.build_model(SPEC, seed=0)
    reference = ShiftedWindowAttention(24, [7, 5], [0, 0], 3)
    assert model.relative_position_index.dtype == torch.int64
    assert torch.equal(model.relative_position_index, reference.relative_position_index)
    x = torch.randn(2, 3, 35, 35)
    table = model.table
    bias = table[reference.relative_position_index].view(35, 35, -1).permute(2, 0, 1)
    expected = x + bias.unsqueeze(0) * 0.5
    torch.testing.assert_close(model(x), expected)


def test_persistent_as_declared_and_not_recomputed_in_forward() -> None:
    model = dsl.build_model(SPEC, seed=0)
    assert list(model.state_dict()) == ["table", "relative_position_index"]
    assert [name for name, _ in model.named_buffers()] == ["relative_position_index", "scale"]
    assert torch.equal(model.scale, torch.tensor([0.5, 2.0]))
    source = type(model).dsl_source
    for op in ("arange", "meshgrid", "stack", "permute(1, 2, 0)"):
        assert op not in source, op  # computed once, when the model was built
    assert "self.relative_position_index" in source


def test_validate_computes_on_meta_and_materialize_fills_the_value() -> None:
    model = dsl.build_model(SPEC, device="meta")
    assert model.relative_position_index.is_meta
    assert model.relative_position_index.shape == (35 * 35,)
    dsl.materialize(model, "cpu", seed=0)
    direct = dsl.build_model(SPEC, seed=0)
    assert torch.equal(model.relative_position_index, direct.relative_position_index)
    assert torch.equal(model.scale, direct.scale)  # non-persistent: carried over by name


def test_a_huge_computed_buffer_is_refused_without_allocating() -> None:
    spec = (
        "net Big:\n    input x: [B, 4]\n    buffer b = zeros(100000, 100000, 1000)\n    return x\n"
    )
    with pytest.raises(LimitError) as info:
        dsl.build_model(spec)
    assert "makes tensors of 10,000,000,000,000 elements in all" in str(info.value)


def test_net_and_yaml_forms_print_back_as_written(tmp_path: Path) -> None:
    spec = parse_net(SPEC)
    assert print_net(spec) == SPEC
    yaml_text = print_yaml(spec)
    assert "- buffer: scale\n    init: ${tensor([0.5, 2.0])}\n    options:" in yaml_text
    assert "{buffer: relative_position_index, init: '${((relative" in yaml_text  # no shape
    assert print_net(parse_yaml(yaml_text)) == SPEC
    path = tmp_path / "window.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    from_yaml = dsl.build_model(path, seed=0)
    assert torch.equal(
        from_yaml.relative_position_index, dsl.build_model(SPEC, seed=0).relative_position_index
    )


def test_the_computation_itself_is_bounded_on_meta() -> None:
    """A small value made from a huge intermediate would allocate it at build time: refused
    by validate, which computes on meta."""
    spec = "net Big:\n    input x: [B, 4]\n    buffer b = zeros(50000, 50000, 100).sum()\n    return x + b\n"
    with pytest.raises(
        LimitError, match="makes tensors of 250,000,000,001 elements in all"
    ) as info:
        dsl.validate(spec)
    assert info.value.span is not None and (info.value.span.line, info.value.span.col) == (3, 16)
