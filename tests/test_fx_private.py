"""The torch.fx internals fenced in dsl/torchlib/fx_private.py behave as netdsl expects."""

from __future__ import annotations

import operator

import torch
import torch.fx as fx

from dsl.torchlib.fx_private import rename, target_name


def test_target_names_are_what_fx_calls_its_nodes() -> None:
    graph = fx.Graph()
    assert target_name(graph, operator.add) == "add"
    assert target_name(graph, torch.flatten) == "flatten"


def test_rename_gives_a_unique_form_of_the_name_and_the_code_uses_it() -> None:
    graph = fx.Graph()
    x = graph.placeholder("x")
    first = graph.call_function(operator.add, (x, 1))
    second = graph.call_function(operator.mul, (first, 2))
    rename(first, "y")
    rename(second, "y")
    graph.output(second)
    assert first.name == "y" and second.name != "y" and second.name.startswith("y")
    code = fx.GraphModule(torch.nn.Module(), graph).code
    assert "y = x + 1" in code
