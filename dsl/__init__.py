"""netdsl: a declarative language for PyTorch networks.

    import dsl
    model = dsl.build_model("examples/unet.net", params={"n_classes": 3}, seed=0)

Importing `dsl` is cheap; torch is imported when a spec is first checked or built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsl import records
from dsl.elaborate.limits import DEFAULT_MAX_PARAMS, check_params
from dsl.errors import DSLError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dsl.importer import Imported
    from dsl.ir import SpecFile
    from dsl.plan import Resolved
    from dsl.tools.export_dynamic import Dynamic
    from dsl.tools.export_formats import ExportResult
    from dsl.tools.summary import Summary

__all__ = [
    "DSLError",
    "build_model",
    "export",
    "from_module",
    "load",
    "load_model",
    "materialize",
    "register",
    "summary",
    "validate",
]


def load(path: str | Path) -> SpecFile:
    """Parse a `.net` or YAML file into the IR."""
    from dsl.syntax.loader import read_file

    return read_file(Path(path))


def validate(
    spec: str | Path | SpecFile,
    *,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
) -> Resolved:
    """Check a spec completely (syntax, names, arguments, shapes, init rules) without
    allocating weights.

    Returns the resolved network, whose `output` holds the output's meta tensor(s).
    """
    from dsl.build.arguments import check_call_arguments
    from dsl.tools.validate import validate_spec

    check_call_arguments("dsl.validate", sizes=sizes)
    result = validate_spec(spec, net=net, params=params, sizes=sizes)
    if result.errors:
        raise result.errors[0]
    assert result.resolved is not None
    return result.resolved


def build_model(
    spec: str | Path | SpecFile,
    *,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    sizes: dict[str, int] | None = None,
    outputs: list[str] | None = None,
    max_params: int | None = DEFAULT_MAX_PARAMS,
    init_stream: str = "global",
    weights: str | Path | dict | None = None,
    strict: bool = True,
    allow_missing: list[str] | tuple[str, ...] = (),
    allow_mismatch: list[str] | tuple[str, ...] = (),
    prefix: str | None = None,
    rename: dict[str, str] | None = None,
    allow_download: bool = False,
) -> nn.Module:
    """Compile a spec (a path, `.net`/YAML text, or IR) into an ordinary `nn.Module`.

    `params` overrides the net's parameters; `seed` makes initialisation reproducible
    (bit for bit, in any process); `init_stream="per-module"` seeds each module from the
    seed and its qualified name, so adding a layer leaves the others' weights unchanged
    (the default draws from torch's global stream in order, as a hand-written model does);
    `sizes` gives the symbolic input dims (B, H, ...) the sizes shapes are checked with
    (`dsl summary --input 1x3x224x224` sets them from a shape; without `sizes`, small ones,
    else ImageNet-sized ones where the network needs them);
    `outputs=["layer1.0.conv1", ...]` returns a model whose forward gives those
    intermediate values as a dict, by qualified name (no hooks to write).
    A model with more than `max_params` parameter and buffer elements is refused with a
    `dsl.errors.LimitError` before anything is allocated (None: no limit; a build on the
    meta device allocates nothing and is not limited).
    `weights="ckpt.pth" | "ckpt.safetensors" | state_dict` loads a checkpoint after the build
    (safely: weights_only / safetensors), with `prefix=` stripped from its keys and `rename=`
    mapping key prefixes; a coverage report is printed, and anything short of a complete
    load is an error unless `strict=False` with `allow_missing=[patterns]` says what may
    stay unloaded; `allow_mismatch=["fc.*"]` skips the keys whose shape changed on purpose
    (a new head), reported as "skipped (shape)". Without `weights=`, the spec's own `weights(...)` statements apply.
    A spec never touches the network: torchvision weights it names
    (`torchvision.models.resnet18(weights="DEFAULT")`) are refused unless
    `allow_download=True`.
    """
    import torch

    from dsl.build.arguments import check_call_arguments
    from dsl.build.compile import compile_resolved
    from dsl.pauses import gc_paused
    from dsl.tools.sizes import resolve_fitting
    from dsl.torchlib.offline import downloads_allowed

    check_call_arguments("dsl.build_model", seed=seed, device=device, dtype=dtype, sizes=sizes)
    with gc_paused(), downloads_allowed(allow_download):
        # compile_resolved checks the init rules
        resolved = resolve_fitting(spec, net=net, params=params, sizes=sizes)
        if device is None or torch.device(device).type != "meta":
            check_params(resolved, max_params)
        model = compile_resolved(
            resolved, device=device, dtype=dtype, seed=seed, init_stream=init_stream
        )
    _load_weights(
        model,
        resolved,
        weights,
        strict=strict,
        allow_missing=allow_missing,
        allow_mismatch=allow_mismatch,
        prefix=prefix,
        rename=rename,
    )
    return model if outputs is None else _with_outputs(model, outputs)


def _with_outputs(model: nn.Module, outputs: list[str]) -> nn.Module:
    from dsl.build.compile import feature_extractor

    return feature_extractor(model, outputs)


def _load_weights(model: nn.Module, resolved: Resolved, weights: Any, **options: Any) -> None:
    """`weights=` given to build_model, else the spec's own `weights(...)` statements."""
    from dsl.build.weights import load_into

    if weights is not None:
        load_into(model, weights, **options)
        return
    for spec in resolved.weights:
        load_into(model, spec.path, span=spec.span, **spec.options)


def materialize(
    model: nn.Module,
    device: str | torch.device,
    *,
    seed: int | None = None,
    init_stream: str = "global",
) -> nn.Module:
    """Real weights for a model built with `device="meta"`: exactly those a build on
    `device` with the same seed gives."""
    from dsl.build.arguments import check_call_arguments
    from dsl.build.compile import materialize as _materialize

    check_call_arguments("dsl.materialize", seed=seed, device=device)
    return _materialize(model, device, seed=seed, init_stream=init_stream)


def load_model(path: str | Path, *, device: str | torch.device | None = None) -> nn.Module:
    """Rebuild a model saved by `dsl build` (`.safetensors` or `.pt`) and load its weights.

    The file holds the spec text and parameters it was built from; weights load with
    `torch.load(weights_only=True)` or safetensors, never by unpickling code.
    """
    from dsl.build.arguments import check_call_arguments
    from dsl.build.checkpoint import load_model as _load_model

    check_call_arguments("dsl.load_model", device=device)
    return _load_model(path, device=device)


def summary(
    spec_or_model: str | Path | SpecFile | nn.Module,
    *,
    input: tuple[int, ...] | list[int] | None = None,  # torchinfo's name
    depth: int | None = 3,
    columns: list[str] | None = None,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    init: bool = False,
) -> Summary:
    """A table of modules, as `dsl summary` prints it: output shapes, parameters, FLOPs
    and spec lines, measured on the meta device (nothing is allocated).

    `spec_or_model` is a spec (path, text or IR) or a model `build_model` built; `input`
    is the first input's shape (default: the spec's symbolic shape, measured with small
    sizes); `depth` and `columns` (of `dsl.tools.summary.COLUMNS`) pick what `str()` shows.
    The result holds the rows as data (`.rows`), renders with `str()`, and gives
    `.to_json()`; FLOPs are per sample (`.flops_per_sample`), `.flops` for `.batch`.
    """
    from torch import nn

    from dsl.tools.sizes import resolve_for_input
    from dsl.tools.summary import check_columns, summarise

    chosen = check_columns(columns) if columns is not None else None
    shape = tuple(input) if input is not None else None
    if isinstance(spec_or_model, nn.Module):
        resolved = _resolved_of(spec_or_model, shape)
    else:
        resolved = resolve_for_input(spec_or_model, params or {}, shape, net)
    result = summarise(resolved, concrete=shape is not None, init=init)
    result.depth = depth
    if chosen is not None:
        result.columns = chosen
    return result


def _resolved_of(model: nn.Module, shape: tuple[int, ...] | None) -> Resolved:
    """The resolved network a model was built from; `shape` re-measures it at that input."""
    from dsl.build.compile import BUILT
    from dsl.errors import ArgumentError
    from dsl.torchlib.symbols import Symbols, meta_tensor

    if model not in BUILT:
        raise ArgumentError(
            "dsl.summary takes a spec or a model that dsl.build_model built",
            hint="for another nn.Module, torchinfo.summary(model, input_size=...) measures it",
        )
    resolved, _ = BUILT[model]
    if shape is None:
        return resolved
    name, _ = resolved.inputs[0]
    inputs = [(name, meta_tensor(shape)), *resolved.inputs[1:]]
    return records.replace(resolved, inputs=inputs, symbols=Symbols())


def export(
    spec_or_model: str | Path | SpecFile | nn.Module,
    output: str | Path,
    *,
    format: str | None = None,
    dynamic: Dynamic = None,
    input: tuple[int, ...] | list[int] | None = None,
    check: bool = True,
    check_sizes: list[dict[str, int]] | None = None,
    net: str | None = None,
    params: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
) -> ExportResult:
    """Write a spec (built with `seed`) or a model `build_model` built to `output`, as
    `dsl export` does: `format` is "onnx", "exported-program", "torchscript" or "python"
    (default: from the suffix, .onnx, .pt2, .ts/.pt, .py).

    The inputs' symbolic sizes stay dynamic, each a `torch.export.Dim` named after its
    symbol with the range the network needs; `dynamic` chooses: True (every symbol),
    False (static), names (["B", "T"]), or names with ranges ({"T": (1, 1024)}). `input`
    (the first input's shape) exports a static graph of that shape unless `dynamic` is
    given; `sizes` (as in build_model) are the sizes traced with. The written file is run
    at two other sizes (`check_sizes`, e.g. [{"B": 1, "T": 7}, {"B": 5, "T": 50}]) and
    compared with the eager model unless `check=False`. Returns what was written, its
    dynamic dimensions (`.plan.ranges`) and the check (`.check`); `str()` reports both.
    """
    from dsl.tools.export_formats import export_any

    shape = tuple(input) if input is not None else None
    return export_any(
        spec_or_model,
        output,
        format=format,
        dynamic=dynamic,
        input=shape,
        check=check,
        check_sizes=list(check_sizes) if check_sizes is not None else None,
        net=net,
        params=params,
        sizes=sizes,
        seed=seed,
    )


def from_module(
    module: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
    *,
    check: bool = True,
    seed: int = 0,
) -> Imported:
    """Write an existing `nn.Module` as an idiomatic spec (`dsl import` in Python).

    `result.text()` is the `.net` text (`result.text("yaml")` the YAML), `result.report`
    lists what could not be said exactly (op, module, source line). With `example_inputs`
    and `check`, the spec is built, loads `module`'s state_dict strictly (same keys, same
    order) and gives equal outputs in eval and training mode under `seed`:
    `result.faithful`, else `result.problems`. See docs/importing.md.
    """
    from dsl.importer import from_module as _from_module

    return _from_module(module, example_inputs, check_spec=check, seed=seed)


def register(obj: Any = None, *, name: str | None = None) -> Any:
    """Make a user module class or tensor function nameable in specs (see dsl.torchlib.registry)."""
    from dsl.torchlib.registry import register as _register

    return _register(obj, name=name)
