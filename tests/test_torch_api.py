"""Torch's pure tensor API by name in graph bodies (issue 13): bare names, the prefixes users
write (`torch.cat`, `F.relu`), and methods resolve and compute what plain torch computes;
in-place ops, I/O, random state and escapes are refused with a located error and a hint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import dsl
from dsl.errors import DSLError
from dsl.torchlib import catalog

X = torch.randn(4, 6)

# A graph body's return expression, and the plain-torch computation it must equal.
CASES: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = [
    ("sin(x)", torch.sin),
    ("cos(x)", torch.cos),
    ("rsqrt(x.abs() + 1)", lambda x: torch.rsqrt(x.abs() + 1)),
    ('einsum("ij,kj->ik", x, x)', lambda x: torch.einsum("ij,kj->ik", x, x)),
    ("roll(x, 1, 0)", lambda x: torch.roll(x, 1, 0)),
    ("tril(x)", torch.tril),
    ("cumsum(x, dim=1)", lambda x: torch.cumsum(x, dim=1)),
    ("gather(x, 1, argsort(x, dim=1))", lambda x: torch.gather(x, 1, torch.argsort(x, dim=1))),
    ("outer(x[0], x[1])", lambda x: torch.outer(x[0], x[1])),
    (
        "masked_fill(x, tril(ones_like(x)).bool(), 0.0)",
        lambda x: x.masked_fill(torch.tril(torch.ones_like(x)).bool(), 0.0),
    ),
    ("torch.cat([x, x], dim=1)", lambda x: torch.cat([x, x], dim=1)),
    ("F.relu(x)", F.relu),
    ("torch.nn.functional.gelu(x)", F.gelu),
    ("torch.linalg.norm(x, dim=1)", lambda x: torch.linalg.norm(x, dim=1)),
    ("torch.special.expit(x)", torch.special.expit),
    ("torch.fft.rfft(x).abs()", lambda x: torch.fft.rfft(x).abs()),
    ("x.sin().cumsum(0)", lambda x: x.sin().cumsum(0)),
    ("x.tril().flip(0)", lambda x: x.tril().flip(0)),
    # comparisons on graph values are masks
    ("x.masked_fill(x < 0, 0.0)", lambda x: x.masked_fill(x < 0, 0.0)),
    ("where(x >= 0.5, x, -x)", lambda x: torch.where(x >= 0.5, x, -x)),
    (
        "(x == x.amax(dim=1, keepdim=True)).float()",
        lambda x: (x == x.amax(dim=1, keepdim=True)).float(),
    ),
    ("(x != 0) * (x <= 1) * (x > -1)", lambda x: (x != 0) * (x <= 1) * (x > -1)),
]


def body(expr: str) -> str:
    return f"net N:\n    input x: [4, 6]\n    return {expr}\n"


@pytest.mark.parametrize(("expr", "ref"), CASES, ids=[c[0] for c in CASES])
def test_torch_ops_by_name_match_plain_torch(
    expr: str, ref: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    model = dsl.build_model(body(expr))
    torch.testing.assert_close(model(X), ref(X), rtol=0, atol=0)


# What a spec writes, the text the error's hint must hold, and the error's column.
REFUSED = [
    ("manual_seed(0) + x", "random state", 12),
    ("torch.manual_seed(0)", "random state", 12),
    ("x.add_(1)", "in-place", 12),
    ("x.numpy()", "leaves the graph", 12),
    ("x.item() + x", "leaves the graph", 12),
    ('save(x, "x.pt")', "files", 12),
    ('torch.save(x, "x.pt")', "files", 12),
    ("set_default_dtype(x)", "global settings", 12),
    ("x.cuda()", "device", 12),
    ("torch.add(x, x, out=x)", "leave 'out' out", 28),
    ("F.relu(x, inplace=true)", "leave 'inplace' out", 22),
]


@pytest.mark.parametrize(("expr", "hint", "col"), REFUSED, ids=[r[0] for r in REFUSED])
def test_impure_ops_are_refused_with_a_located_hint(expr: str, hint: str, col: int) -> None:
    with pytest.raises(DSLError) as caught:
        dsl.build_model(body(expr))
    error = caught.value
    assert error.span.line == 3 and error.span.col == col, error.render()
    assert error.hint is not None and hint in error.hint, error.render()


def test_a_causal_mask_from_comparisons() -> None:
    spec = (
        "net N:\n    input x: [4, 6, 6]\n    T = x.shape[-1]\n"
        "    keep = arange(T).view(T, 1) >= arange(T).view(1, T)\n"
        "    return softmax(x.masked_fill(keep.logical_not(), -1e9), dim=-1)\n"
    )
    x = torch.randn(4, 6, 6)
    keep = torch.arange(6).view(6, 1) >= torch.arange(6).view(1, 6)
    want = torch.softmax(x.masked_fill(~keep, -1e9), dim=-1)
    torch.testing.assert_close(dsl.build_model(spec)(x), want, rtol=0, atol=0)


def test_the_op_list_is_derived_and_sorted() -> None:
    names = catalog.op_names()
    assert list(names) == sorted(names)
    assert {"sin", "einsum", "masked_fill", "torch.linalg.norm", "torch.fft.rfft"} <= set(names)
    assert not {"manual_seed", "save", "load", "add_", "numpy", "item"} & set(names)
    assert all(not name.endswith("_") or name.endswith("__") for name in names)


def test_the_registry_looks_up_exactly_the_listed_ops() -> None:
    """The registry looks each name up when a spec first writes it (start-up); it must hold
    the names `op_names()` lists, as `function` resolves them, and no other torch name."""
    from dsl.torchlib.registry import REGISTRY

    listed = catalog.op_names()
    names = list(REGISTRY.functions)  # then netdsl's own and any a test registered
    assert names[: len(listed)] == list(listed) and "pad_to" in names[len(listed) :]
    assert all(REGISTRY.functions[name].fn is catalog.function(name) for name in listed)
    everything = {*dir(torch), *dir(F), *dir(torch.Tensor), *(f"torch.{n}" for n in dir(torch))}
    everything |= {f"F.{n}" for n in dir(F)} | {f"torch.linalg.{n}" for n in dir(torch.linalg)}
    unlisted = everything - set(listed)
    assert not [name for name in unlisted if name in REGISTRY.functions]
    assert catalog.tensor_methods() <= set(listed)


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("sin", torch.sin),
        ("torch.cat", torch.cat),
        ("F.relu", F.relu),
        ("nn.functional.gelu", F.gelu),
        ("torch.nn.functional.gelu", F.gelu),
        ("torch.linalg.norm", torch.linalg.norm),
        ("dropout", F.dropout),  # the functional form, with its training flag
        ("softmax", F.softmax),
    ],
)
def test_names_resolve_as_users_write_them(name: str, fn: object) -> None:
    assert catalog.function(name) is fn


def test_unknown_qualified_function_suggests_the_name() -> None:
    with pytest.raises(DSLError) as caught:
        dsl.build_model(body("torch.sinn(x)"))
    assert "unknown function 'torch.sinn'" in caught.value.message
    assert caught.value.hint is not None and "'sin'" in caught.value.hint


def test_tensors_made_in_forward_land_on_the_inputs_device() -> None:
    spec = body("x + arange(x.shape[1]) + zeros(x.shape[1]) + full((4, 6), 2.0)")
    model = dsl.build_model(spec)
    assert "device = x_device" in type(model).dsl_source
    torch.testing.assert_close(model(X), X + torch.arange(6) + 2.0)
    on_meta = model.to("meta")(torch.empty(4, 6, device="meta"))
    assert on_meta.device.type == "meta" and on_meta.shape == (4, 6)


def test_a_device_the_spec_gives_is_kept() -> None:
    model = dsl.build_model(body('x + arange(6, device="cpu")'))
    assert "x_device" not in type(model).dsl_source
    torch.testing.assert_close(model(X), X + torch.arange(6))
