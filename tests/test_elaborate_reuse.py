"""Block elaborations kept between checks (`dsl.elaborate.reuse`, what `dsl lsp` re-checks
with after an edit): used again only while what they were made from is unchanged, with
the same result a fresh check gives, the size decisions they made included."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.elaborate.reuse import Kept, reusing
from dsl.plan import iter_modules
from dsl.syntax.loader import open_text
from dsl.tools.summary import summarise
from dsl.tools.validate import Validation, validate_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

LAYERS = """\
block Unit(out):
    input x
    conv = Conv2d(out, kernel_size=3, padding=1)
    return conv(x)
"""

PARTS = """\
from layers import Unit

block Stem(out):
    input x
    u = unit(x): Unit(out)
    return norm(u): BatchNorm2d()
"""

MODEL = """\
from parts import Stem

net N(width=8):
    input x: [B, 3, H, W]
    return stem(x): Stem(width)
"""


def _checked(kept: Kept, path: Path) -> Validation:
    with reusing(kept):
        return validate_spec(path, every_net=True)


def _rows(result: Validation) -> list[tuple[str, str, str, int]]:
    assert result.resolved is not None, result.errors
    return [(r.name, r.type, r.output, r.params) for r in summarise(result.resolved).rows]


def _tree(result: Validation) -> list[object]:
    """What the check resolved: every module's name, kind, arguments and place, and the
    net's output shape (cheaper to compare than `_rows`, which builds and runs it)."""
    resolved = result.resolved
    assert resolved is not None, result.errors
    modules = [
        (name, type(spec).__name__, getattr(spec, "kwargs", None), spec.span)
        for name, spec in iter_modules(resolved.root)
    ]
    return [*modules, tuple(resolved.output.shape)]


@pytest.mark.parametrize("example", ["unet.net", "resnet50.net"])
def test_a_kept_block_is_used_again_and_gives_what_a_fresh_check_gives(example: str) -> None:
    kept = Kept()
    first = _checked(kept, EXAMPLES / example)
    assert kept.entries and kept.hits == 0
    again = _checked(kept, EXAMPLES / example)
    assert kept.hits > 0
    assert _rows(again) == _rows(first) == _rows(validate_spec(EXAMPLES / example))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "layers.net").write_text(LAYERS)
    (tmp_path / "parts.net").write_text(PARTS)
    (tmp_path / "model.net").write_text(MODEL)
    return tmp_path


def test_a_change_to_a_file_two_imports_away_is_seen(workspace: Path) -> None:
    kept = Kept()
    model = workspace / "model.net"
    assert _rows(_checked(kept, model))[1] == ("stem", "Stem", "[B, 8, H, W]", 240)
    hits = kept.hits
    assert _checked(kept, model).errors == [] and kept.hits > hits  # parts.net is unchanged
    unpadded = LAYERS.replace(", padding=1", "")
    (workspace / "layers.net").write_text(unpadded)  # on disk
    assert _rows(_checked(kept, model))[1] == ("stem", "Stem", "[B, 8, H-2, W-2]", 240)
    open_text(workspace / "layers.net", unpadded.replace("conv(x)", "conv(x).flatten(1)"))
    try:  # as an editor holds it: BatchNorm2d in parts.net now meets a 2-d input
        (error,) = _checked(kept, model).errors
        assert "BatchNorm2d" in error.message and error.span.file.endswith("parts.net")
    finally:
        open_text(workspace / "layers.net", None)
    assert _rows(_checked(kept, model))[1] == ("stem", "Stem", "[B, 8, H-2, W-2]", 240)


def test_a_block_moved_to_other_lines_is_elaborated_again(workspace: Path) -> None:
    kept = Kept()
    parts = workspace / "parts.net"
    _checked(kept, workspace / "model.net")
    open_text(parts, PARTS.replace("\nblock", "\n\n\nblock"))  # two lines down
    try:  # spans are part of the result: the kept Stem is not used
        result = _checked(kept, workspace / "model.net")
        assert result.resolved is not None
        stem = dict(result.resolved.root.members)["stem"]  # type: ignore[union-attr]
        assert stem.span.line == 5  # was 3
    finally:
        open_text(parts, None)


DECIDES = """\
block Pick(out):
    input x
    if x.shape[2] > 40:
        conv = Conv2d(out, kernel_size=3, padding=1)
    else:
        conv = Conv2d(out, kernel_size=1)
    return conv(x)

net N():
    input x: [B, 3, H, W]
    return pick(x): Pick(8)
"""


def test_a_kept_block_still_refuses_a_decision_on_a_symbolic_size(tmp_path: Path) -> None:
    path = tmp_path / "decides.net"
    path.write_text(DECIDES)
    kept = Kept()
    for _ in range(2):
        (error,) = _checked(kept, path).errors
        assert error.code == validate_spec(path).errors[0].code
        assert "symbolic size 'H'" in error.message and error.span.line == 3
    assert kept.hits > 0


UNET = (EXAMPLES / "unet.net").read_text()
# Edits of examples/unet.net, each applied or not to make a version of the file.
EDITS = [
    ("n_classes=2, bilinear=true):", "n_classes=5, bilinear=true):"),  # the net's parameter
    ("n_classes=2, bilinear=true):", "n_classes=2, bilinear=false):"),  # Up's other branch
    ("Conv2d(mid, kernel_size=3, padding=1", "Conv2d(mid, kernel_size=5, padding=2"),
    ("\nblock Down(out):", "\n\n\nblock Down(out):"),  # blocks below move down
    ("MaxPool2d(2)", "AvgPool2d(2)"),
    ("        BatchNorm2d()\n        ReLU", "        BatchNorm1d()\n        ReLU"),  # a mistake
]


def _version(applied: frozenset[int]) -> str:
    text = UNET
    for index in sorted(applied):
        old, new = EDITS[index]
        text = text.replace(old, new, 1)
    return text


def _outcome(result: Validation) -> object:
    if result.errors:
        return [(e.code, e.message, e.span) for e in result.errors]
    return _tree(result)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(EDITS) - 1), min_size=1, max_size=6))
def test_a_run_of_edits_checked_with_kept_blocks_gives_what_fresh_checks_give(
    toggles: list[int],
) -> None:
    """Each step makes or undoes one edit, as typing does."""
    path = EXAMPLES / "unet.net"
    kept = Kept()
    applied: frozenset[int] = frozenset()
    try:
        for toggle in [None, *toggles]:
            applied = applied ^ {toggle} if toggle is not None else applied
            open_text(path, _version(applied))  # as an editor holds it
            assert _outcome(_checked(kept, path)) == _outcome(validate_spec(path, every_net=True))
    finally:
        open_text(path, None)
