"""Every command output the README and docs show is the real output of that command.

A ```text block whose first line is `$ dsl ARGS` shows exactly what `dsl ARGS` prints (a line
`...` alone stands for lines left out); a line `dsl ARGS   # TEXT` in a ```bash block says
that the command's last line is TEXT.
Commands run from the repository root, as a reader following the README would.
"""

from __future__ import annotations

import re
import shlex

import pytest

from dsl.cli import main
from tests.test_docs import DOCS, ROOT, blocks

COMMENTED = re.compile(r"^dsl (?P<args>[^#\n]+?)[ \t]+# (?P<says>.+)$", re.MULTILINE)


def _shown_outputs() -> list[tuple[str, list[str], str]]:
    """(where, argv, output shown) of every `$ dsl ...` block."""
    shown = []
    for where, text in blocks("text"):
        first, _, rest = text.partition("\n")
        if first.startswith("$ dsl "):
            shown.append((where, shlex.split(first[len("$ dsl ") :]), rest))
    return shown


def _commented() -> list[tuple[str, list[str], str]]:
    return [
        (where, shlex.split(m.group("args")), m.group("says"))
        for where, text in blocks("bash")
        for m in COMMENTED.finditer(text)
    ]


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.chdir(ROOT)
    main(argv)
    captured = capsys.readouterr()
    return captured.out + captured.err


def _matches(output: str, shown: str) -> bool:
    """`output` is `shown`, where each `...` line of `shown` stands for any run of lines."""
    chunks = [
        re.escape(chunk) for chunk in re.split(r"^\.\.\.\n", shown.rstrip("\n") + "\n", flags=re.M)
    ]
    return re.fullmatch("(?:.*\n)*?".join(chunks), output.rstrip("\n") + "\n") is not None


SHOWN = _shown_outputs()
COMMENTED_RUNS = _commented()


def test_the_docs_show_outputs() -> None:
    assert SHOWN and COMMENTED_RUNS
    assert any("README.md" in where for where, _, _ in SHOWN)
    assert DOCS


@pytest.mark.parametrize(("where", "argv", "shown"), SHOWN, ids=[w for w, _, _ in SHOWN])
def test_shown_output_is_the_real_one(
    where: str,
    argv: list[str],
    shown: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = _run(argv, capsys, monkeypatch)
    assert _matches(output, shown), f"{where}: dsl {shlex.join(argv)} prints:\n{output}"


@pytest.mark.parametrize(
    ("where", "argv", "says"), COMMENTED_RUNS, ids=[w for w, _, _ in COMMENTED_RUNS]
)
def test_commented_command_says_what_the_comment_says(
    where: str,
    argv: list[str],
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = _run(argv, capsys, monkeypatch).strip().splitlines()
    assert output and output[-1] == says.strip(), f"{where}: dsl {shlex.join(argv)}"


def test_a_changed_output_is_caught(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _matches("a\nb\nc\n", "a\n...\nc") and _matches("a\nc\n", "a\n...\nc")
    assert not _matches("a\nb\nc\n", "a\nc") and not _matches("a\nb\n", "a\n...\nc")


def test_the_readme_line_counts_are_the_generators() -> None:
    """The README's "Line counts" table is what `python -m benchmarks.line_counts` prints
    (it counts text: nothing is imported or run), so a new example or a changed one shows."""
    from benchmarks.line_counts import table

    generated = table().strip()
    readme = (ROOT / "README.md").read_text()
    assert generated in readme
    assert len(generated.splitlines()) == 3 + len(list((ROOT / "examples").glob("*.net")))
