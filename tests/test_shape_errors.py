"""Golden diagnostics for shape mistakes: tests/golden/shapes/NAME.net is validated and its
rendered error must equal NAME.expected exactly.

Regenerate the .expected files after a deliberate change to the messages with

    NETDSL_UPDATE_GOLDEN=1 pytest tests/test_shape_errors.py

and read the diff before keeping it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import dsl
from dsl.errors import ArityError, DSLError, ShapeError

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path("tests") / "golden" / "shapes"
CASES = sorted(p.stem for p in (ROOT / GOLDEN).glob("*.net"))
UPDATE = os.environ.get("NETDSL_UPDATE_GOLDEN") == "1"

# The error class each case must raise where it is not a plain ShapeError.
KINDS: dict[str, type[DSLError]] = {
    "block_input_count": ArityError,
}


def test_enough_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("name", CASES)
def test_shape_error_rendering(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # spans carry the path as given: keep it relative and stable
    path = GOLDEN / f"{name}.net"
    with pytest.raises(DSLError) as info:
        dsl.validate(str(path))
    error = info.value
    assert isinstance(error, KINDS.get(name, ShapeError)), (
        f"{type(error).__name__}: {error.message}"
    )
    rendered = error.render(color=False)
    assert "Traceback" not in rendered
    assert rendered.startswith(
        f"{path.as_posix()}:{error.span.line}:{error.span.col}: error[{error.code}]: "
    )
    expected_file = ROOT / GOLDEN / f"{name}.expected"
    if UPDATE:
        expected_file.write_text(rendered + "\n")
    assert expected_file.exists(), (
        f"no {expected_file.name}; run with NETDSL_UPDATE_GOLDEN=1 to write it"
    )
    assert rendered == expected_file.read_text().rstrip("\n")
