"""Golden diagnostics: each spec under tests/golden/diagnostics/ has one mistake, and its
`.expected` file holds exactly what `dsl validate FILE` prints to stderr for it.

Each spec's first line says where the error must point: `# expect: LINE:COL CODE`, or
`# expect: OTHER_FILE:LINE:COL CODE` when the mistake sits in a file the spec imports.
Files in sub-folders are helpers that case files import; they are no cases themselves.

Regenerate every `.expected` file after an intended change of wording:

    NETDSL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_diagnostics.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "tests" / "golden" / "diagnostics"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.suffix in (".net", ".yaml", ".yml"))
EXPECT = re.compile(
    r"^# expect: (?:(?P<file>[\w./-]+):)?(?P<line>\d+):(?P<col>\d+) (?P<code>E\d{3})\s*$"
)
UPDATE = bool(os.environ.get("NETDSL_UPDATE_GOLDEN"))


def _expectation(case: Path) -> tuple[str, int, int, str]:
    first = case.read_text(encoding="utf-8").splitlines()[0]
    match = EXPECT.match(first)
    assert match, f"{case.name}: the first line must be '# expect: LINE:COL CODE', not {first!r}"
    rel = case.relative_to(ROOT).as_posix()
    file = (case.parent / match["file"]).relative_to(ROOT).as_posix() if match["file"] else rel
    return file, int(match["line"]), int(match["col"]), match["code"]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 32


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_diagnostic(
    case: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NO_COLOR", "1")
    rel = case.relative_to(ROOT).as_posix()

    code = main(["validate", rel])
    err = capsys.readouterr().err

    assert code == 1, f"{rel}: expected exit code 1, got {code}\n{err}"
    assert "Traceback" not in err
    file, line, col, error_code = _expectation(case)
    first = err.splitlines()[0] if err else ""
    head = f"{file}:{line}:{col}: error[{error_code}]: "
    assert re.match(rf"^{re.escape(head)}\S", first), (
        f"{rel}: the first line should start with {head!r}:\n{err}"
    )
    assert err.count("error[") == 1, f"{rel}: one mistake, one diagnostic:\n{err}"

    expected_path = case.with_suffix(".expected")
    if UPDATE or not expected_path.exists():
        expected_path.write_text(err, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"{expected_path.name} did not exist; it was written, check it in")
    assert err == expected_path.read_text(encoding="utf-8")
