"""`dsl build` and `dsl.load_model`: initialised weights saved with the spec that made them.

A `.safetensors` file keeps the spec in its metadata (`netdsl.spec`, `netdsl.params`,
`netdsl.net`, `netdsl.file`, and `netdsl.files`: every file the spec imports, by its path
relative to the spec); a `.pt` file is a plain dict {"spec", "params", "net", "file", "files",
"state_dict"} loaded with `torch.load(weights_only=True)`. Loading builds the spec again on
the meta device, then loads the saved tensors in place of the meta ones: bit for bit.

A checkpoint is data from anywhere: loading reads that one file and nothing else (its
imports come from the bundle, written to a private directory, never from the paths the
metadata names), and anything malformed in it is a `CheckpointError` naming the file and
the key at fault.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch import nn

from dsl.build.weights import first_line
from dsl.errors import CheckpointError, WeightsError
from dsl.records import record
from dsl.source import Span

FORMAT_VERSION = "1"


def count_modules(spec: Any) -> int:
    from dsl.plan import ContainerSpec, DerivedSpec, GraphSpec, LeafSpec

    if isinstance(spec, LeafSpec):
        return 1
    if isinstance(spec, ContainerSpec):
        return 1 + sum(count_modules(c) for _, c in spec.children)
    if isinstance(spec, DerivedSpec):
        return count_modules(spec.base) + sum(
            count_modules(getattr(op, "spec", None)) for op in spec.ops
        )
    if isinstance(spec, GraphSpec):
        return 1 + sum(
            count_modules(m) if isinstance(m, LeafSpec | ContainerSpec | GraphSpec) else 1
            for _, m in spec.members
        )
    return 0


# ----------------------------------------------------------------------------- saving


def save(
    model: nn.Module,
    output: Path,
    *,
    spec_text: str,
    spec_file: str,
    net: str,
    params: dict[str, Any],
) -> None:
    files = bundled_imports(spec_text, spec_file)
    if output.suffix == ".safetensors":
        try:
            from safetensors.torch import save_model
        except ImportError:
            raise WeightsError(
                "writing .safetensors needs the 'safetensors' package",
                hint="pip install safetensors, or write a .pt file",
            ) from None
        meta = {
            "netdsl.format": FORMAT_VERSION,
            "netdsl.spec": spec_text,
            "netdsl.file": spec_file,
            "netdsl.net": net,
            "netdsl.params": json.dumps(params),
            "netdsl.files": json.dumps(files),
        }
        save_model(model, str(output), metadata=meta)
        return
    torch.save(
        {
            "spec": spec_text,
            "file": spec_file,
            "net": net,
            "params": params,
            "files": files,
            "format": FORMAT_VERSION,
            "state_dict": model.state_dict(),
        },
        output,
    )


def bundled_imports(spec_text: str, spec_file: str) -> dict[str, str]:
    """Every file the spec imports (directly or not) outside the standard library, by its
    path relative to the spec's directory, with its text."""
    from dsl.syntax.loader import Library, Unit, parse_text

    path = Path(spec_file)
    library = Library(path.parent)
    entry = library.unit(parse_text(spec_text, spec_file), path)
    seen: dict[Path, Unit] = {}
    pending = [entry]
    while pending:
        unit = pending.pop()
        for definition in unit.names.values():
            other = definition.unit
            if other is not entry and other.path is not None and other.path not in seen:
                seen[other.path] = other
                pending.append(other)
    inside = [p for p in seen if p.resolve().is_relative_to(library.root)]
    return {
        p.resolve().relative_to(library.root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(inside)
    }


# ----------------------------------------------------------------------------- loading


@record
class Checkpoint:
    """What a checkpoint file holds, checked for type."""

    path: Path
    spec: str
    net: str | None
    params: dict[str, Any]
    files: dict[str, str]
    state: dict[str, torch.Tensor]


def load_model(path: str | Path, *, device: str | torch.device | None = None) -> nn.Module:
    """Rebuild the model saved by `dsl build` (or `save`) and load its weights."""
    try:
        return _load_model(Path(path), device)
    except CheckpointError as error:  # located at the call: the file has no lines to show
        raise error.with_span(Span(file="dsl.load_model")) from None


def _load_model(path: Path, device: str | torch.device | None) -> nn.Module:
    from dsl.build.compile import compile_resolved

    checkpoint = read_checkpoint(path)
    resolved = _resolve_bundled(checkpoint)
    # On meta nothing is initialised twice; a model with non-persistent buffers (which a
    # checkpoint does not hold) is built for real so that its modules make them.
    probe = compile_resolved(resolved, device="meta")
    persistent = set(probe.state_dict())
    transient = any(
        f"{m}.{b}".lstrip(".") not in persistent
        for m, mod in probe.named_modules()
        for b, _ in mod.named_buffers(recurse=False)
    )
    model = compile_resolved(resolved) if transient else probe
    state = _complete_state(checkpoint, probe.state_dict(keep_vars=True))
    if checkpoint.path.suffix == ".safetensors":
        # Copied into allocated tensors, so tied parameters stay one parameter.
        model = model if transient else model.to_empty(device="cpu")
        model.load_state_dict(state, strict=True)
    else:
        model.load_state_dict(state, strict=True, assign=not transient)
    return model.to(device) if device is not None else model


def read_checkpoint(path: Path) -> Checkpoint:
    if not path.is_file():
        raise WeightsError(f"no such file: {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    return _read_torch(path)


def _read_safetensors(path: Path) -> Checkpoint:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error kinds for corrupt files
        raise CheckpointError(
            f"{path} cannot be read as safetensors: {first_line(exc)}",
            hint="the file is corrupt or truncated; write it again with 'dsl build'",
        ) from None
    if "netdsl.spec" not in meta:
        raise CheckpointError(
            f"{path} holds no netdsl spec in its metadata", hint="save it with 'dsl build'"
        )
    params = _json_field(path, meta, "netdsl.params", "{}")
    files = _json_field(path, meta, "netdsl.files", "{}")
    return _checked(
        Checkpoint(path, meta["netdsl.spec"], meta.get("netdsl.net"), params, files, state)
    )


def _json_field(path: Path, meta: dict[str, str], key: str, default: str) -> Any:
    try:
        return json.loads(meta.get(key, default))
    except ValueError as exc:
        raise CheckpointError(
            f"{path}: metadata '{key}' is not valid JSON: {exc}",
            hint="the file was changed after 'dsl build' wrote it",
        ) from None


def _read_torch(path: Path) -> Checkpoint:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickler raises many kinds
        raise CheckpointError(
            f"{path} cannot be read as a netdsl checkpoint: {first_line(exc)}",
            hint="the file is corrupt or truncated, or holds more than plain tensors",
        ) from None
    if not isinstance(saved, dict) or "spec" not in saved or "state_dict" not in saved:
        raise CheckpointError(
            f"{path} is not a checkpoint written by 'dsl build'",
            hint="load plain weights with dsl.build_model(spec, weights=...)",
        )
    checkpoint = Checkpoint(
        path,
        saved["spec"],
        saved.get("net"),
        saved.get("params") or {},
        saved.get("files") or {},
        saved["state_dict"],
    )
    return _checked(checkpoint)


# Each field's expected type, with the key the file keeps it under.
_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "spec": (str, "spec"),
    "net": ((str, type(None)), "net"),
    "params": (dict, "params"),
    "files": (dict, "files"),
    "state": (dict, "state_dict"),
}


def _checked(checkpoint: Checkpoint) -> Checkpoint:
    for field, (kind, key) in _FIELDS.items():
        value = getattr(checkpoint, field)
        if not isinstance(value, kind):
            raise CheckpointError(
                f"{checkpoint.path}: '{key}' holds a {type(value).__name__}",
                hint="the file was changed after 'dsl build' wrote it",
            )
    for entries, kind in ((checkpoint.files, str), (checkpoint.state, torch.Tensor)):
        for key, value in entries.items():
            if not isinstance(key, str) or not isinstance(value, kind):
                raise CheckpointError(
                    f"{checkpoint.path}: entry '{key}' holds a {type(value).__name__}, not a {kind.__name__}",
                    hint="the file was changed after 'dsl build' wrote it",
                )
    return checkpoint


def _resolve_bundled(checkpoint: Checkpoint) -> Any:
    """The checkpoint's spec, its imports read from the bundle and from nowhere else."""
    from dsl.build.resolve import resolve

    with tempfile.TemporaryDirectory(prefix="netdsl-checkpoint-") as directory:
        root = Path(directory)
        for name, text in checkpoint.files.items():
            target = root / _bundled_path(checkpoint.path, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return resolve(checkpoint.spec, net=checkpoint.net, params=checkpoint.params, root=root)


def _bundled_path(path: Path, name: str) -> PurePosixPath:
    from dsl.syntax.loader import SPEC_SUFFIXES

    relative = PurePosixPath(name)
    if (
        relative.is_absolute()
        or ".." in relative.parts
        or "\\" in name
        or ":" in name
        or relative.suffix not in SPEC_SUFFIXES
    ):
        raise CheckpointError(
            f"{path}: the bundled file '{name}' is not a spec file under the spec's directory",
            hint="the file was changed after 'dsl build' wrote it",
        )
    return relative


def _complete_state(
    checkpoint: Checkpoint, mine: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The file's tensors for every key of the model, each checked against the spec's; a
    tied tensor that safetensors kept once serves every key that shares it."""
    theirs, path = checkpoint.state, checkpoint.path
    unexpected = [key for key in theirs if key not in mine]
    if unexpected:
        raise CheckpointError(
            f"{path}: key '{unexpected[0]}' is no tensor of the spec's model",
            hint=f"{len(unexpected)} unexpected key(s); the file was changed after 'dsl build' wrote it",
        )
    owners: dict[int, str] = {}
    for key, tensor in mine.items():
        if key in theirs:
            owners.setdefault(id(tensor), key)
    state = {}
    for key, tensor in mine.items():
        source = key if key in theirs else owners.get(id(tensor))
        if source is None:
            raise CheckpointError(
                f"{path}: key '{key}' is missing",
                hint="the spec makes this tensor; the file does not hold it",
            )
        value = theirs[source]
        if value.shape != tensor.shape or value.dtype != tensor.dtype:
            raise CheckpointError(
                f"{path}: key '{source}' is {_described(value)} in the file, but the spec makes {_described(tensor)}",
                hint="the file was changed after 'dsl build' wrote it, or the spec's parameters differ",
            )
        state[key] = value
    return state


def _described(tensor: torch.Tensor) -> str:
    return f"{str(tensor.dtype).removeprefix('torch.')}{list(tensor.shape)}"
