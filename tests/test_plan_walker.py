"""`dsl.plan.iter_modules`: the one walker over a resolved plan, and the tools keyed by it."""

from __future__ import annotations

import dsl
from dsl.plan import AliasSpec, DerivedSpec, LeafSpec, TensorSpec, iter_modules
from dsl.tools.provenance import SET, explain

SPEC = """
net Net():
    input x: [B, 4]
    param scale: [8] = ones()
    fc = Linear(8)
    again = fc
    head = Sequential:
        act = ReLU()
        out = Linear(2)
    return head(fc(x) * scale)

net Wider(n=3) = Net():
    head = Sequential:
        act = ReLU()
        out = Linear(n)
"""


def test_children_come_before_their_parent_and_replacements_last() -> None:
    visits = list(iter_modules(dsl.validate(SPEC, net="Wider").root))
    paths = [path for path, _ in visits]
    base = ["scale", "fc", "again", "head.act", "head.out", "head", ""]
    assert paths == [*base, "head.act", "head.out", "head", ""]
    kinds = dict(visits)  # keyed by name, the last visit is what the model holds
    assert isinstance(kinds[""], DerivedSpec)
    assert isinstance(kinds["scale"], TensorSpec) and isinstance(kinds["again"], AliasSpec)
    replaced = kinds["head.out"]
    assert isinstance(replaced, LeafSpec) and replaced.kwargs["out_features"] == 3


def test_resolve_marks_only_what_set_changed_in_a_derived_net() -> None:
    _, entries = explain("examples/resnet18.net", overrides={"num_classes": 7})
    changed = {(e.name, a.name) for e in entries for a in e.args if SET in a.origin}
    assert changed == {("ResNet18", "num_classes"), ("fc", "out_features")}
