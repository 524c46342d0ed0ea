"""Loading a checkpoint into a built model, with a report of what loaded and what did not.

    model = dsl.build_model("examples/resnet18.net", weights="resnet18.pth")
    model = dsl.build_model(spec, weights="ckpt.safetensors", prefix="module.",
                            rename={"head.": "fc."}, strict=False, allow_missing=["fc.*"])
    model = dsl.build_model("examples/finetune.net", weights="resnet18.pth",
                            allow_mismatch=["fc.*"])   # a new head of another shape

or in the spec itself:  `weights("resnet18.pth", prefix="module.")` in the net's body.

Files are read with `torch.load(weights_only=True)` or safetensors: a checkpoint can never
run code. Every load returns (and prints) a coverage report: keys loaded, missing,
unexpected and mis-shaped, each missing key with the unexpected keys that look like it.
`strict=False` still needs an allow-list of the keys that may stay unloaded, so a partial
load is never silent, and a load that fits nothing at all is an error whatever it allows.
`allow_mismatch=[patterns]` names the keys whose shape changed on purpose (a fine-tuned
head: `fc.*` of 100 classes, the file's of 1000): they keep their initial values and the
report lists them as "skipped (shape)".

A tensor whose dtype differs from the model's is never counted as plainly loaded: one of
another kind (int or bool into float, float into int) is refused, as is a value that does
not survive the conversion (overflow to inf, an integer out of range); a same-kind
conversion (float64 -> float32, float16 -> float32) loads, shows as "converted" in the
report and gives a `WeightsConversionWarning` naming the keys.
"""

from __future__ import annotations

import difflib
import fnmatch
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dsl.errors import ArgumentError, CheckpointError, Note, WeightsError
from dsl.records import field, record
from dsl.source import Span

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")


@record
class Coverage:
    """What a checkpoint load did, key by key."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)  # missing, but on the allow-list
    # mis-shaped, but on allow_mismatch: left at their initial values
    skipped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    converted: list[tuple[str, torch.dtype, torch.dtype]] = field(default_factory=list)  # loaded
    refused: list[tuple[str, torch.dtype, torch.dtype, str]] = field(default_factory=list)

    def acceptable(self, strict: bool) -> bool:
        """Nothing missing (beyond the allow-list), mis-shaped or of a refused dtype; under
        strict, nothing extra; and something loaded, if the model has anything to load."""
        nothing_fits = not (self.loaded or self.converted) and bool(self.missing or self.allowed)
        return not (
            self.missing
            or self.mismatched
            or self.refused
            or nothing_fits
            or (strict and self.unexpected)
        )

    def render(self) -> str:
        loaded = len(self.loaded) + len(self.converted)
        total = (
            loaded
            + len(self.missing)
            + len(self.mismatched)
            + len(self.allowed)
            + len(self.refused)
            + len(self.skipped)
        )
        converted = f" ({len(self.converted)} converted)" if self.converted else ""
        lines = [f"weights from {self.source}: {loaded} of {total} model tensors loaded{converted}"]
        rows = [("missing", key, _suggest(key, self.unexpected)) for key in self.missing]
        rows += [("allowed missing", key, "") for key in self.allowed]
        rows += [("unexpected", key, _suggest(key, self.missing)) for key in self.unexpected]
        rows += [
            ("shape mismatch", key, f"model {list(mine)}, file {list(theirs)}")
            for key, mine, theirs in self.mismatched
        ]
        rows += [
            ("skipped (shape)", key, f"model {list(mine)}, file {list(theirs)}: allow_mismatch")
            for key, mine, theirs in self.skipped
        ]
        rows += [
            ("dtype refused", key, f"model {_name(mine)}, file {_name(theirs)}: {why}")
            for key, mine, theirs, why in self.refused
        ]
        rows += [
            ("converted", key, f"model {_name(mine)}, file {_name(theirs)}")
            for key, mine, theirs in self.converted
        ]
        if rows:
            width = max(len(kind) for kind, _, _ in rows)
            key_width = min(60, max(len(key) for _, key, _ in rows))
            shown = _first_of_each_kind(rows, MAX_ROWS_PER_KIND)
            lines += [
                f"  {kind:<{width}}  {key:<{key_width}}  {note}".rstrip()
                for kind, key, note in shown
            ]
            if len(shown) < len(rows):
                lines.append(f"  ... and {len(rows) - len(shown)} more")
        return "\n".join(lines)

    def common_prefix(self) -> str | None:
        """A prefix that every unexpected key has and that turns them into missing ones."""
        if not self.missing or not self.unexpected:
            return None
        head = self.unexpected[0].split(".")[0] + "."
        if all(key.startswith(head) for key in self.unexpected) and {
            k[len(head) :] for k in self.unexpected
        } >= set(self.missing):
            return head
        return None


MAX_ROWS_PER_KIND = 12


def _first_of_each_kind(rows: list[tuple[str, str, str]], limit: int) -> list[tuple[str, str, str]]:
    counts: dict[str, int] = {}
    shown = []
    for row in rows:
        counts[row[0]] = counts.get(row[0], 0) + 1
        if counts[row[0]] <= limit:
            shown.append(row)
    return shown


def first_line(exc: Exception) -> str:
    """An exception's message in one line, for an error that quotes it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _suggest(key: str, pool: list[str]) -> str:
    matches = difflib.get_close_matches(key, pool, n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else ""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from `.safetensors` or a torch file, never unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no such weights file: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error kinds for corrupt files
            raise CheckpointError(
                f"{path} cannot be read as safetensors: {first_line(exc)}",
                hint="the file is corrupt or truncated",
            ) from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch reports refused pickles and corrupt files alike
        raise CheckpointError(
            f"{path} cannot be read as weights: {first_line(exc)}",
            hint="only plain tensors load (torch.load with weights_only=True)",
        ) from None
    return _unwrap(loaded, path)


def _unwrap(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict) and not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        for key in WRAPPER_KEYS:
            if isinstance(loaded.get(key), dict):
                return _unwrap(loaded[key], path)
    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise WeightsError(
            f"{path} holds no state dict of tensors",
            hint=f"a checkpoint dict may keep it under one of: {', '.join(WRAPPER_KEYS)}",
        )
    return loaded


def remap(
    state: dict[str, torch.Tensor], prefix: str | None = None, rename: dict[str, str] | None = None
) -> dict[str, torch.Tensor]:
    """Strip `prefix` from every key that has it (DDP's "module."), then replace key
    prefixes by `rename` ({"head.": "fc."}), first match wins."""
    out = {}
    for key, value in state.items():
        if prefix and key.startswith(prefix):
            key = key[len(prefix) :]
        for old, new in (rename or {}).items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def load_into(
    model: nn.Module,
    source: str | Path | dict[str, torch.Tensor],
    *,
    strict: bool = True,
    allow_missing: Iterable[str] = (),
    allow_mismatch: Iterable[str] = (),
    prefix: str | None = None,
    rename: dict[str, str] | None = None,
    span: Span | None = None,
    report: bool = True,
) -> Coverage:
    """Load `source` into `model` in place; raise `WeightsError` unless the load is complete
    or its gaps are allowed (`allow_missing`: absent keys, under strict=False;
    `allow_mismatch`: keys whose shape changed, left unloaded)."""
    allow = list(allow_missing)
    if not strict and not allow:
        raise ArgumentError(
            "strict=False needs allow_missing=[patterns] naming what may stay unloaded",
            span,
            hint='e.g. allow_missing=["fc.*"] when the head is new',
        )
    name = str(source) if not isinstance(source, dict) else "a state dict"
    state = remap(source if isinstance(source, dict) else read_state_dict(source), prefix, rename)
    coverage = _compare(model.state_dict(), state, name, allow, list(allow_mismatch))
    if report:
        print(coverage.render(), file=sys.stderr)
    if not coverage.acceptable(strict):
        error = WeightsError(
            f"the weights in {name} do not fit the model",
            span,
            hint=_hint(coverage),
            notes=[Note(coverage.render(), Span())],
        )
        error.coverage = coverage  # type: ignore[attr-defined]  # read by callers that inspect the load
        raise error
    if coverage.converted:
        keys = ", ".join(
            f"'{key}' ({_name(theirs)} -> {_name(mine)})"
            for key, mine, theirs in coverage.converted[:MAX_ROWS_PER_KIND]
        )
        warnings.warn(
            f"weights from {name}: {len(coverage.converted)} tensor(s) converted to the model's dtype: {keys}",
            WeightsConversionWarning,
            stacklevel=2,
        )
    loadable = {
        k: v
        for k, v in state.items()
        if k in {*coverage.loaded, *(key for key, _, _ in coverage.converted)}
    }
    model.load_state_dict(loadable, strict=False)
    return coverage


class WeightsConversionWarning(UserWarning):
    """A checkpoint tensor loaded into a model tensor of another dtype of the same kind."""


def _compare(
    mine: dict[str, torch.Tensor],
    theirs: dict[str, torch.Tensor],
    source: str,
    allow: list[str],
    allow_mismatch: list[str],
) -> Coverage:
    coverage = Coverage(source)
    for key, tensor in mine.items():
        if key not in theirs:
            (coverage.allowed if _matches(key, allow) else coverage.missing).append(key)
        elif tuple(theirs[key].shape) != tuple(tensor.shape):
            target = coverage.skipped if _matches(key, allow_mismatch) else coverage.mismatched
            target.append((key, tuple(tensor.shape), tuple(theirs[key].shape)))
        elif theirs[key].dtype != tensor.dtype:
            _classify_conversion(coverage, key, tensor.dtype, theirs[key])
        else:
            coverage.loaded.append(key)
    coverage.unexpected = [key for key in theirs if key not in mine]
    return coverage


def _matches(key: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    return "complex" if dtype.is_complex else "float" if dtype.is_floating_point else "int"


def _classify_conversion(
    coverage: Coverage, key: str, mine: torch.dtype, value: torch.Tensor
) -> None:
    """A same-kind conversion that keeps every value is `converted`; anything else is refused."""
    if _kind(mine) != _kind(value.dtype):
        coverage.refused.append(
            (key, mine, value.dtype, f"{_kind(value.dtype)} values into a {_kind(mine)} tensor")
        )
        return
    cast = value.to(mine)
    lost = (
        (cast.isinf() & value.isfinite()).any()
        if _kind(mine) in ("float", "complex")
        else not torch.equal(cast.to(value.dtype), value)
    )
    if lost:
        coverage.refused.append(
            (key, mine, value.dtype, "values do not survive the conversion (overflow)")
        )
    else:
        coverage.converted.append((key, mine, value.dtype))


def _hint(coverage: Coverage) -> str:
    prefix = coverage.common_prefix()
    if prefix:
        return f"every key in the file starts with '{prefix}': pass prefix=\"{prefix}\""
    parts = []
    if coverage.missing:
        parts.append(f"{len(coverage.missing)} missing")
    if coverage.unexpected:
        parts.append(f"{len(coverage.unexpected)} unexpected")
    if coverage.mismatched:
        parts.append(f"{len(coverage.mismatched)} mis-shaped")
    if coverage.refused:
        parts.append(f"{len(coverage.refused)} of a refused dtype")
    if not parts:
        return "nothing in the file fits the model: allow_missing= may leave keys unloaded, not all of them; check prefix= and rename="
    fixes = "prefix= strips a prefix such as 'module.', rename= maps key prefixes, allow_missing= lets named keys stay unloaded"
    if coverage.mismatched:
        fixes += ", allow_mismatch= skips named keys whose shape changed (a new head)"
    return f"{', '.join(parts)} (see the table); {fixes}"
