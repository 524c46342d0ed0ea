"""The IR's node classes (dsl/ir.py): made by keyword, frozen, equal whatever their
positions; and the YAML schema that dsl/syntax/yaml_schema.py derives from them."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

from dsl import ir
from dsl.source import Span
from dsl.syntax.yaml_schema import MODELS, yaml_key
from tests.test_docs import ROOT

HERE = Span(file="t.net", line=3, col=5)


def test_fields_are_the_annotations_in_order_bases_first() -> None:
    assert ir.Call.fields == ("span", "func", "args", "kwargs", "spread", "kwarg_spans")
    assert ir.ParamDecl.fields == ("span", "shape", "dtype", "init", "options", "param")
    # A field a subclass declares again keeps its place; a class variable is no field.
    assert ir.FuncDef.fields == ("span", "params", "base", "body", "doc", "def_")
    assert "kind" not in ir.NetDef.fields


def test_defaults_are_filled_and_list_and_dict_defaults_are_fresh() -> None:
    one, two = ir.Call(func=ir.Name(id="f")), ir.Call(func=ir.Name(id="g"))
    assert (one.args, one.kwargs, one.span) == ([], {}, Span())
    assert one.args is not two.args and one.kwargs is not two.kwargs
    assert list(one.__dict__) == list(ir.Call.fields)
    assert ir.Call.defaults() == {"span": Span(), "args": [], "kwargs": {}, "spread": []} | {
        "kwarg_spans": {}
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ir.Call(), "Call: missing func"),
        (lambda: ir.Name(id="x", ids="y"), "Name: no field ids"),
        (lambda: ir.Name(id="x").replace(idd="y"), "Name: no field idd"),
    ],
)
def test_a_wrong_field_is_a_type_error(make: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()  # type: ignore[operator]


def test_nodes_are_frozen_and_replace_makes_a_new_one() -> None:
    name = ir.Name(id="x", span=HERE)
    with pytest.raises(AttributeError, match="immutable"):
        name.id = "y"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del name.id  # type: ignore[misc]
    moved = name.replace(id="y")
    assert (name.id, moved.id, moved.span) == ("x", "y", HERE)


def test_equality_and_repr_leave_positions_out() -> None:
    here = ir.Call(func=ir.Name(id="f", span=HERE), span=HERE, kwarg_spans={"k": HERE})
    there = ir.Call(func=ir.Name(id="f"))
    assert here == there and here != ir.Call(func=ir.Name(id="g"))
    assert repr(here) == "Call(func=Name(id='f'), args=[], kwargs={}, spread=[])"
    with pytest.raises(TypeError):
        hash(here)


def test_nodes_pickle_and_copy_with_their_positions() -> None:
    spec = ir.SpecFile(defs=[ir.NetDef(net="N", body=[ir.Input(input="x", span=HERE)])])
    for again in (pickle.loads(pickle.dumps(spec)), copy.deepcopy(spec)):
        assert again == spec and again.defs[0].body[0].span == HERE


def test_every_node_class_has_a_schema_model_with_its_fields_as_yaml_keys() -> None:
    for node in ir.node_classes():
        model = MODELS[node.__name__]
        keys = [
            field.alias or name
            for name, field in model.model_fields.items()
            if name not in ir.POSITION_FIELDS
        ]
        assert keys == [yaml_key(f) for f in node.fields if f not in ir.POSITION_FIELDS]
        assert model.__doc__ == vars(node).get("__doc__")


def test_reading_a_net_file_loads_no_pydantic_and_no_yaml() -> None:
    """The YAML form's schema (pydantic) and reader (PyYAML) load only for YAML: start-up."""
    code = (
        "import sys, dsl; dsl.validate('examples/unet.net'); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'yaml'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
