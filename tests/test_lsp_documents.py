"""The server's documents, in process: several errors per file, errors inside imported
files, YAML, unsaved imports, stale checks, and the parse kept while an edit is half done."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from dsl.lsp import documents
from dsl.lsp.diagnostics import diagnostics
from dsl.lsp.documents import Documents
from dsl.lsp.edits import rename
from dsl.lsp.positions import uri_of

TWO_MISTAKES = """\
block A(out):
    input x
    conv = Conv2D(out, 3)
    return conv(x)

block B(out):
    input x
    norm = BatchNorm2D()
    return norm(x)
"""

PARTS = "block Stem(out):\n    input x\n    conv = Conv2d(out, kernel_size=3)\n    return conv(x)\n"
USER = (
    "from parts import Stem\n\nnet N():\n    input x: [B, 3, H, W]\n    return stem(x): Stem(8)\n"
)


@pytest.fixture
def docs() -> Documents:
    found = Documents()
    yield found
    for doc in found.all():
        found.close(doc.uri)


def _checked(docs: Documents, path: Path, text: str, version: int = 1) -> list[types.Diagnostic]:
    uri = uri_of(path)
    docs.update(uri, text, version)
    analysis = docs.analyse(uri)
    assert analysis is not None
    return diagnostics(analysis.errors, path, analysis.spec)


def _where(d: types.Diagnostic) -> tuple[int, int, int]:
    return d.range.start.line, d.range.start.character, d.range.end.character


def test_every_error_the_checks_find_is_a_diagnostic(docs: Documents, tmp_path: Path) -> None:
    found = _checked(docs, tmp_path / "two.net", TWO_MISTAKES)
    assert [(d.code, _where(d)) for d in found] == [("E201", (2, 11, 17)), ("E201", (7, 11, 22))]
    hints = [r.message for d in found for r in d.related_information or []]
    assert hints == [
        "hint: did you mean 'Conv2d' or 'Conv3d' or 'Conv1d'?",
        "hint: did you mean 'BatchNorm2d' or 'BatchNorm3d' or 'BatchNorm1d'?",
    ]


def test_a_yaml_spec_has_its_diagnostics_at_their_ranges(docs: Documents, tmp_path: Path) -> None:
    text = "defs:\n  - net: Tiny\n    body:\n      - input: x\n      - return: {Lineer: [4]}\n"
    (found,) = _checked(docs, tmp_path / "tiny.yaml", text)
    assert (found.code, _where(found)) == ("E201", (4, 17, 23))


def test_an_error_in_an_imported_file_shows_on_the_import(docs: Documents, tmp_path: Path) -> None:
    (tmp_path / "parts.net").write_text(PARTS.replace("Conv2d", "Conv2D"))
    (found,) = _checked(docs, tmp_path / "user.net", USER)
    assert found.range.start == types.Position(0, 0)
    assert (
        found.message.startswith("in ")
        and "parts.net:3:12: unknown layer 'Conv2D'" in found.message
    )
    assert found.related_information[0].location.uri == uri_of(tmp_path / "parts.net")


def test_an_open_import_is_read_as_the_editor_holds_it(docs: Documents, tmp_path: Path) -> None:
    (tmp_path / "parts.net").write_text(PARTS)
    assert _checked(docs, tmp_path / "user.net", USER) == []
    _checked(docs, tmp_path / "parts.net", PARTS.replace("Conv2d", "Conv2D"))  # unsaved edit
    (found,) = _checked(docs, tmp_path / "user.net", USER, version=2)
    assert "unknown layer 'Conv2D'" in found.message
    docs.close(uri_of(tmp_path / "parts.net"))  # closed unsaved: the disk's text again
    assert _checked(docs, tmp_path / "user.net", USER, version=3) == []


def test_a_check_overtaken_by_an_edit_is_dropped(
    docs: Documents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "user.net"
    (tmp_path / "parts.net").write_text(PARTS)
    uri = uri_of(path)
    docs.update(uri, USER, 1)
    real = documents.analyse_text

    def slow(where: Path | None, text: str, version: int) -> documents.Analysis:
        docs.update(uri, USER.replace("Stem(8)", "Stem(9)"), 2)  # the user typed meanwhile
        return real(where, text, version)

    monkeypatch.setattr(documents, "analyse_text", slow)
    assert docs.analyse(uri) is None  # version 1's result is never kept or published
    assert docs.get(uri).analysis is None
    monkeypatch.setattr(documents, "analyse_text", real)
    assert docs.analyse(uri).version == 2


def test_names_keep_their_meaning_while_an_edit_is_half_done(
    docs: Documents, tmp_path: Path
) -> None:
    (tmp_path / "parts.net").write_text(PARTS)
    path = tmp_path / "user.net"
    assert _checked(docs, path, USER) == []
    (broken,) = _checked(docs, path, USER.replace("Stem(8)", "Stem(8"), version=2)
    assert broken.code.startswith("E1")  # a syntax error
    doc = docs.get(uri_of(path))
    assert doc.analysis.spec is None and doc.parsed.version == 1
    assert set(doc.parsed.names) == {"Stem", "N"}


PARAMETRISED = """\
block Conv(out, mid=out):
    input x
    a = Conv2d(mid, kernel_size=3)
    return a(x)

net N():
    input x: [B, 3, H, W]
    return c(x): Conv(8, mid=4)
"""


def test_renaming_a_parameter_renames_it_where_calls_pass_it_by_keyword(
    docs: Documents, tmp_path: Path
) -> None:
    path = tmp_path / "conv.net"
    assert _checked(docs, path, PARAMETRISED) == []
    doc = docs.get(uri_of(path))
    edit, warning = rename(docs, doc, types.Position(0, 17), "width")
    assert warning is None  # a parameter is no checkpoint key
    lines = PARAMETRISED.splitlines()
    spots = sorted((e.range.start.line, e.range.start.character) for e in edit.changes[doc.uri])
    assert spots == [
        (0, lines[0].index("mid")),
        (2, lines[2].index("mid")),
        (7, lines[7].index("mid")),
    ]
    assert all(e.new_text == "width" for e in edit.changes[doc.uri])
    kernel = rename(docs, doc, types.Position(2, lines[2].index("kernel_size")), "k")
    assert kernel == (None, None)  # a layer's keyword is not a name of the spec
