"""`dsl ops`: the torch functions a graph body may call, as `catalog.op_names()` lists them
(derived from torch's namespaces and a deny-list), grouped by namespace."""

from __future__ import annotations

import textwrap
from itertools import groupby

from dsl.torchlib import catalog

_BARE = "torch, torch.nn.functional and Tensor methods, by bare name (also as torch.NAME, F.NAME, x.NAME())"


def render(width: int = 96) -> str:
    """The listing `dsl ops` prints."""
    names = catalog.op_names()
    groups = groupby(sorted(names, key=_namespace), key=_namespace)
    parts = [f"{len(names)} ops a graph body may call"]
    for namespace, members in groups:
        short = [name.removeprefix(f"{namespace}.") if namespace else name for name in members]
        title = namespace or _BARE
        body = textwrap.fill(" ".join(short), width, initial_indent="  ", subsequent_indent="  ")
        parts.append(f"{title} ({len(short)}):\n{body}")
    return "\n\n".join(parts)


def _namespace(name: str) -> str:
    return name.rpartition(".")[0]
