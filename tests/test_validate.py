"""`dsl.validate` (the API) and `dsl validate` (the command) run the same checks: the same
spec gets the same verdict and the same first diagnostic through either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dsl
from dsl.cli import main
from dsl.errors import DSLError
from dsl.tools.validate import validate_spec

GOOD = """
net Mlp(n=4):
    input x: [B, 8]
    fc = Linear(n)
    return fc(x)
"""
UNUSED_BLOCK_TYPO = """
block Unused(n):
    input x: [B, n]
    fc = Linaer(n)
    return fc(x)

net Mlp(n=4):
    input x: [B, 8]
    fc = Linear(n)
    return fc(x)
"""
SHAPE_MISMATCH = """
net Mlp:
    input x: [B, 8]
    fc = Linear(in_features=3, out_features=2)
    return fc(x)
"""
UNKNOWN_KEYWORD = """
net Mlp:
    input x: [B, 8]
    fc = Linear(4, bais=false)
    return fc(x)
"""
INIT_RULE_MATCHES_NOTHING = """
net Mlp:
    input x: [B, 8]
    fc = Linear(4)
    init:
        "nothing.*": zeros()
    return fc(x)
"""
BLOCKS_ONLY = """
block Unused(n):
    input x: [B, n]
    fc = Linear(n)
    return fc(x)
"""

CASES = {
    "good": (GOOD, None),
    "unused block with a typo": (UNUSED_BLOCK_TYPO, "unknown layer 'Linaer'"),
    "shape mismatch": (SHAPE_MISMATCH, "in_features"),
    "unknown keyword": (UNKNOWN_KEYWORD, "bais"),
    "init rule matching nothing": (INIT_RULE_MATCHES_NOTHING, "nothing"),
}


def _api(path: Path) -> str | None:
    try:
        dsl.validate(path)
    except DSLError as exc:
        return exc.message
    return None


def _cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", sorted(CASES))
def test_api_and_cli_give_the_same_verdict(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = CASES[case]
    path = tmp_path / "spec.net"
    path.write_text(text)
    api_error = _api(path)
    code, err = _cli(path, capsys)
    if expected is None:
        assert api_error is None and code == 0
        return
    assert api_error is not None and expected in api_error
    assert code == 1 and api_error in err


def test_the_unused_block_fails_the_api_from_text_too() -> None:
    with pytest.raises(DSLError, match="unknown layer 'Linaer'"):
        dsl.validate(UNUSED_BLOCK_TYPO)


def test_one_function_serves_both() -> None:
    single = validate_spec(UNUSED_BLOCK_TYPO)
    every = validate_spec(UNUSED_BLOCK_TYPO, every_net=True)
    assert [e.message for e in single.errors] == [e.message for e in every.errors]
    assert single.resolved is None and every.resolved is None


def test_a_file_of_blocks_passes_the_command_but_has_no_net_for_the_api() -> None:
    assert validate_spec(BLOCKS_ONLY, every_net=True).errors == []
    [error] = validate_spec(BLOCKS_ONLY).errors
    assert "no net" in error.message


def test_a_good_spec_gives_the_resolved_net() -> None:
    result = validate_spec(GOOD, params={"n": 3})
    assert result.errors == [] and result.resolved is not None
    assert tuple(result.resolved.output.shape)[-1] == 3


def test_validating_without_init_rules_or_surgery_imports_no_compiler() -> None:
    """Start-up (issue 18): validate builds nothing for a spec without init rules, surgery
    or parts, so the compiler (and its code generator) stays unimported; a derived net
    needs it for its meta copy."""
    code = (
        "import sys, dsl\n"
        "dsl.validate('examples/unet.net')\n"
        "print('dsl.build.compile' in sys.modules)\n"
        "dsl.validate('examples/dilation.net')\n"
        "print('dsl.build.compile' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert result.stdout.split() == ["False", "True"]
