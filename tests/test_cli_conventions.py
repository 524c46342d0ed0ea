"""The `dsl` command keeps the conventions of command-line tools: exit 2 for a mistake in
the command line (naming the argument, never a `<string>:` location), `--version`, no
traceback ever, `--set` values of their parameter's type, and progress only on a terminal."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsl.cli import main
from dsl.tools.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
UNET = ROOT / "examples" / "unet.net"
MISSING_FOLDER = "/nonexistent-netdsl-folder"


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


COMMAND_LINE_MISTAKES = [
    (("validate", UNET, "--set", "k"), "argument --set: takes KEY=VALUE, not 'k'"),
    (("summary", UNET, "--set", "=3"), "argument --set: takes KEY=VALUE"),
    (("graph", UNET, "-o", "x.foo"), "argument -o/--output: cannot write 'x.foo'"),
    (("build", UNET, "-o", "x.bin"), "argument -o/--output: cannot write 'x.bin'"),
    (("convert", UNET, "-o", "a.json"), "argument -o/--output: cannot write 'a.json'"),
    (("convert", UNET, "-o", "a.txt"), "give a name ending in .net, .yaml, .yml"),
    (("validate", "nope.net"), "argument files: no such file: nope.net"),
    (("summary", "nope.net"), "argument file: no such file: nope.net"),
    (("validate", ROOT / "examples"), "is a directory"),
    (("summary", UNET, "--input", "1xax3"), "argument --input: takes non-negative sizes"),
    (("build", UNET, "-o", f"{MISSING_FOLDER}/x.pt"), f"no folder {MISSING_FOLDER}"),
    (
        ("export", UNET, "--format", "python", "-o", f"{MISSING_FOLDER}/x.py"),
        f"no folder {MISSING_FOLDER}",
    ),
    (("convert", UNET, "-o", f"{MISSING_FOLDER}/x.yaml"), f"no folder {MISSING_FOLDER}"),
    (("validate", UNET, "--set", "bilinear=flase"), "bilinear takes true or false"),
    (("summary", UNET, "--set", "n_classes=two"), "n_classes takes an integer"),
    (("validate", UNET, "--set", "n_classes=a+b"), "the value must be a literal"),
]


@pytest.mark.parametrize(("argv", "message"), COMMAND_LINE_MISTAKES, ids=lambda v: str(v)[:60])
def test_a_command_line_mistake_exits_2_naming_the_argument(
    capsys: pytest.CaptureFixture[str], argv: tuple[object, ...], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert message in err
    assert f"dsl {argv[0]}: error: " in err
    assert "<string>" not in err and "Traceback" not in err


def test_a_misspelt_boolean_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(capsys, "validate", UNET, "--set", "bilinear=flase")
    assert "did you mean 'false'?" in err


def test_set_values_of_the_right_type_are_taken(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "validate", UNET, "--set", "bilinear=false", "--set", "n_classes=3"
    )
    assert (code, out.strip()) == (0, "1 file checked: ok"), err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("dsl ")


def test_an_unwritable_output_is_one_line_without_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    target = folder / "x.yaml"
    target.mkdir()  # a directory where the file should go: the write fails with an OSError
    result = subprocess.run(
        [sys.executable, "-m", "dsl.cli", "convert", str(UNET), "-o", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("dsl convert: error: ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_a_live_elapsed_time_on_a_terminal() -> None:
    stream = Terminal()
    with Progress("writing x.pt", stream=stream):
        time.sleep(0.7)  # a step that reports nothing, as a checkpoint write
    frames = [f for f in stream.getvalue().split("\r\x1b[2K") if f]
    times = {f.rsplit(" ", 1)[-1] for f in frames}
    assert len(times) >= 3, frames  # redrawn while the step ran: 0.0s, 0.2s, 0.4s ...
    assert stream.getvalue().endswith("\r\x1b[2K")  # and cleared at the end


def test_progress_prints_nothing_on_a_pipe() -> None:
    stream = io.StringIO()
    with Progress("writing x.pt", stream=stream) as progress:
        progress.advance()
        time.sleep(0.3)
    assert stream.getvalue() == ""


def test_help_examples_name_files_that_exist() -> None:
    from dsl.command_line import EXAMPLES

    for command, text in EXAMPLES.items():
        for word in text.split():
            if word.startswith("examples/") and not word.endswith((".svg", ".dot", ".mmd")):
                assert list(ROOT.glob(word)), f"dsl {command} --help names {word}"
