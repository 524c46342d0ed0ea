"""`dsl lsp` over stdio on a workspace of several files: blocks kept between checks and let
go when a file they came from changes (in the editor or on disk), the shapes of values
made by functions and ops on hover, and references in files that are not open (and none
outside the workspace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.test_elaborate_reuse import LAYERS, PARTS
from tests.test_lsp import SERVER, Editor, start

MODEL = """\
from parts import Stem

net N(width=8, classes=10):
    input x: [B, 3, H, W]
    y = stem(x): Stem(width)
    both = cat([y, x], 1)
    h = both.mean([2, 3])
    return head(h): Linear(classes)
"""

OTHER = """\
from parts import Stem

net Other():
    input x: [B, 3, H, W]
    return s(x): Stem(4)
"""

OUTSIDE = OTHER.replace("from parts", "from ws.parts")  # from the folder above the workspace

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    (root / "outside.net").write_text(OUTSIDE)  # sees Stem, but lies outside the workspace
    ws = root / "ws"
    ws.mkdir()
    for name, text in [("layers", LAYERS), ("parts", PARTS), ("model", MODEL), ("other", OTHER)]:
        (ws / f"{name}.net").write_text(text)
    (ws / "link.net").symlink_to(root / "outside.net")
    return ws


@pytest_lsp.fixture(
    scope="module",
    loop_scope="module",
    config=SERVER,
)
async def client(lsp_client: LanguageClient, workspace: Path):  # type: ignore[no-untyped-def]
    await start(lsp_client, workspace, debounce_ms=0)
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="module")
def model(client: LanguageClient, workspace: Path) -> Editor:
    return Editor(client, workspace / "model.net")


def _reused(client: LanguageClient, editor: Editor) -> int:
    """How many block instances the server's check of the editor's version reused."""
    pattern = re.compile(
        rf"checked {re.escape(editor.uri)} version {editor.version} .* (\d+) block instances"
    )
    counts = [m.group(1) for r in client.log_messages if (m := pattern.search(r.message))]
    return int(counts[-1])  # the last check of that version


async def test_kept_blocks_are_let_go_when_a_file_they_read_changes(
    model: Editor, client: LanguageClient, workspace: Path
) -> None:
    assert await model.open(MODEL) == []
    assert await model.replace(MODEL.replace("classes=10", "classes=5")) == []
    assert _reused(client, model) == 1  # Stem(8), with the Unit inside it
    layers = Editor(client, workspace / "layers.net")
    broken = LAYERS.replace("conv(x)", "conv(x).flatten(1)")
    assert await layers.open(broken) == []  # a block alone: its input has no shape yet
    (found,) = await model.diagnostics()  # checked again for the edit of a file it imports
    assert "parts.net" in found.message and "BatchNorm2d" in found.message
    assert _reused(client, model) == 0
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(layers.uri))
    )  # unsaved: the file on disk again
    assert await model.replace(MODEL) == []
    (workspace / "layers.net").write_text(broken.replace("flatten(1)", "flatten(2)"))  # on disk
    try:
        (found,) = await model.replace(MODEL.replace("classes=10", "classes=7"))
        assert "BatchNorm2d" in found.message and "got 3D input" in found.message
    finally:
        (workspace / "layers.net").write_text(LAYERS)
    assert await model.replace(MODEL) == []


async def test_an_edit_of_an_imported_file_checks_the_open_files_that_import_it(
    model: Editor, client: LanguageClient, workspace: Path
) -> None:
    assert await model.replace(MODEL) == []
    layers = Editor(client, workspace / "layers.net")
    broken = LAYERS.replace("conv(x)", "conv(x).flatten(1)")
    assert await layers.open(LAYERS) == []
    assert await model.diagnostics() == []  # opened: its text now, checked again
    try:
        assert await layers.replace(broken) == []
        (found,) = await model.diagnostics()  # model.net is not edited: checked again
        assert "BatchNorm2d" in found.message and "got 2D input" in found.message
        assert await layers.replace(LAYERS) == []
        assert await model.diagnostics() == []
    finally:
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(layers.uri))
        )


async def test_hover_on_a_value_made_by_a_function_or_an_op_shows_its_shape(
    model: Editor, client: LanguageClient
) -> None:
    assert await model.replace(MODEL) == []
    lines = MODEL.splitlines()
    for name, shape in [("both", "[B, 11, H, W]"), ("h", "[B, 11]")]:
        line = next(i for i, text in enumerate(lines) if text.startswith(f"    {name} = "))
        hover = await client.text_document_hover_async(types.HoverParams(**model.at(line, 5)))
        assert hover.contents.value == (  # type: ignore[union-attr]
            f"**{name}**: value of net N\n\nshape `{shape}`"
        )
    use = lines.index("    return head(h): Linear(classes)")  # a use: where it was bound
    hover = await client.text_document_hover_async(
        types.HoverParams(**model.at(use, lines[use].index("(h)") + 1))
    )
    assert hover.contents.value.endswith("shape `[B, 11]`")  # type: ignore[union-attr]


async def test_references_reach_files_of_the_workspace_that_are_not_open(
    model: Editor, client: LanguageClient, workspace: Path
) -> None:
    assert await model.replace(MODEL) == []
    found = await client.text_document_references_async(
        types.ReferenceParams(
            **model.at(4, MODEL.splitlines()[4].index("Stem")),
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    places = [(Path(r.uri.removeprefix("file://")).name, r.range.start.line) for r in found]
    assert places == [
        ("parts.net", 2),  # the definition first
        ("model.net", 0),
        ("model.net", 4),
        ("other.net", 0),  # not open
        ("other.net", 4),
    ]
    assert not any("outside" in r.uri or "link" in r.uri for r in found)
