"""The one place that reaches into pydantic's private slots, for the `.net` reader's speed.

`Model.model_construct` walks the model's fields, aliases and defaults on every call: some
5 us a node, a third of a parse. `constructor(Model)` does that walk once and then fills
the instance's slots directly, as `model_construct` does. Tested against `model_construct`
in tests/test_net_reader.py; if pydantic changes its slots, that test fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

Model = TypeVar("Model", bound=BaseModel)

_new = object.__new__
_set = object.__setattr__
_set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[slot].__set__
    for slot in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)


def constructor(model: type[Model]) -> Callable[..., Model]:
    """`model.model_construct`, for callers that pass fields by name and every field whose
    default is mutable. Every node's fields-set is one shared set of all its fields:
    pydantic copies it before adding to it (`model_copy(update=...)`), and a set per node
    would be a third of the objects a parse makes."""
    assert not (model.__pydantic_post_init__ or model.__pydantic_root_model__)
    fields = model.model_fields
    # defaults that pydantic itself shares between instances rather than copies: None, (), ...
    template = {
        name: field.default
        if not field.is_required() and field.get_default() is field.default
        else None
        for name, field in fields.items()
    }
    all_fields = set(fields)
    count = len(fields)

    def construct(**values: Any) -> Model:
        node = _new(model)
        _set(node, "__dict__", values if len(values) == count else {**template, **values})
        _set_fields_set(node, all_fields)
        _set_extra(node, None)
        _set_private(node, None)
        return node

    return construct
