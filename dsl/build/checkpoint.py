"""`dsl build` and `dsl.load_model`: initialised weights saved with the spec that made them.

A `.safetensors` file keeps the spec in its metadata (`netdsl.spec`, `netdsl.params`,
`netdsl.net`, `netdsl.file`); a `.pt` file is a plain dict {"spec", "params", "net", "file",
"state_dict"} loaded with `torch.load(weights_only=True)`. Loading builds the spec again on
the meta device, then loads the saved tensors in place of the meta ones: bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dsl.errors import WeightsError

FORMAT_VERSION = "1"


def count_modules(spec: Any) -> int:
    from dsl.plan import ContainerSpec, DerivedSpec, GraphSpec, LeafSpec

    if isinstance(spec, LeafSpec):
        return 1
    if isinstance(spec, ContainerSpec):
        return 1 + sum(count_modules(c) for _, c in spec.children)
    if isinstance(spec, DerivedSpec):
        return count_modules(spec.base) + sum(count_modules(getattr(op, "spec", None)) for op in spec.ops)
    if isinstance(spec, GraphSpec):
        return 1 + sum(count_modules(m) if isinstance(m, LeafSpec | ContainerSpec | GraphSpec) else 1 for _, m in spec.members)
    return 0


def save(model: nn.Module, output: Path, *, spec_text: str, spec_file: str, net: str, params: dict[str, Any]) -> None:
    meta = {"netdsl.format": FORMAT_VERSION, "netdsl.spec": spec_text, "netdsl.file": spec_file, "netdsl.net": net, "netdsl.params": json.dumps(params)}
    if output.suffix == ".safetensors":
        try:
            from safetensors.torch import save_model
        except ImportError:
            raise WeightsError("writing .safetensors needs the 'safetensors' package", hint="pip install safetensors, or write a .pt file") from None
        save_model(model, str(output), metadata=meta)
        return
    torch.save({"spec": spec_text, "file": spec_file, "net": net, "params": params, "format": FORMAT_VERSION, "state_dict": model.state_dict()}, output)


def load_model(path: str | Path, *, device: str | torch.device | None = None) -> nn.Module:
    """Rebuild the model saved by `dsl build` (or `save`) and load its weights."""
    from dsl.build.compile import compile_resolved
    from dsl.build.resolve import resolve

    path = Path(path)
    if not path.exists():
        raise WeightsError(f"no such file: {path}")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if "netdsl.spec" not in meta:
            raise WeightsError(f"{path} holds no netdsl spec in its metadata", hint="save it with 'dsl build'")
        text, file, net, params = meta["netdsl.spec"], meta.get("netdsl.file", ""), meta.get("netdsl.net"), json.loads(meta.get("netdsl.params", "{}"))
        state = None
    else:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch's unpickler raises many kinds
            raise WeightsError(f"{path} cannot be read as a netdsl checkpoint: {str(exc).splitlines()[0]}") from None
        if not isinstance(saved, dict) or "spec" not in saved or "state_dict" not in saved:
            raise WeightsError(f"{path} is not a checkpoint written by 'dsl build'")
        text, file, net, params, state = saved["spec"], saved.get("file", ""), saved.get("net"), saved.get("params") or {}, saved["state_dict"]
    root = Path(file).parent if file and Path(file).parent.exists() else None
    resolved = resolve(text, net=net, params=params, root=root)
    # On meta nothing is initialised twice; a model with non-persistent buffers (which a
    # checkpoint does not hold) is built for real so that its modules make them.
    probe = compile_resolved(resolved, device="meta")
    persistent = set(probe.state_dict())
    transient = any(f"{m}.{b}".lstrip(".") not in persistent for m, mod in probe.named_modules() for b, _ in mod.named_buffers(recurse=False))
    model = compile_resolved(resolved) if transient else probe
    if path.suffix == ".safetensors":
        from safetensors.torch import load_model as st_load

        if not transient:
            model = model.to_empty(device="cpu")
        st_load(model, str(path), strict=True)
    else:
        model.load_state_dict(state, strict=True, assign=not transient)
    return model.to(device) if device is not None else model
