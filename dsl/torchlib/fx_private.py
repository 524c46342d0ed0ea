"""The torch.fx internals netdsl uses, and only here: each has no public equivalent.

- `Graph._target_to_str`: the base name fx gives a node for a target (`conv1`, `add`), so the
  generated forward names its values as torch.fx itself would.
- `Node._rename`: gives a node the name the spec bound it to (`y = conv(x)` names it `y`)
  after it was created; `Graph.create_node(name=...)` only names nodes at creation, before the
  spec's binding is known.

`tests/test_fx_private.py` fails when torch renames or changes either.
"""

from __future__ import annotations

from typing import Any

import torch.fx as fx


def target_name(graph: fx.Graph, target: Any) -> str:
    """The name fx gives a node calling `target`, before it is made unique."""
    return graph._target_to_str(target)


def rename(node: fx.Node, name: str) -> None:
    """Rename `node` to (a unique form of) `name`."""
    node._rename(name)
