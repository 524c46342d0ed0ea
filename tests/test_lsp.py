"""`dsl lsp` driven as an editor drives it: a subprocess speaking LSP over stdio
(pytest-lsp's client), on a workspace of two files, one importing the other."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

PARTS = """\
# Parts for model.net.
block Stem(out):
    input x
    conv = Conv2d(out, kernel_size=3, padding=1)
    return conv(x)
"""

MODEL = """\
from parts import Stem

net Small(classes=10):
    input x: [B, 3, H, W]
    y = stem(x): Stem(16)
    pool = AdaptiveAvgPool2d(1)
    h = flatten(pool(y), 1)
    return head(h): Linear(classes)
"""

# `Lineer` for `Linear`: line 8 (0-based 7), columns 20-26.
MISTAKE = MODEL.replace("Linear(classes)", "Lineer(classes)")

asyncio_module = pytest.mark.asyncio(loop_scope="module")
pytestmark = asyncio_module


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workspace")
    (root / "parts.net").write_text(PARTS)
    (root / "model.net").write_text(MODEL)
    return root


@pytest_lsp.fixture(
    scope="module",
    loop_scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-m", "dsl.cli", "lsp"]),
)
async def client(lsp_client: LanguageClient, workspace: Path):  # type: ignore[no-untyped-def]
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        root_uri=workspace.as_uri(),
        initialization_options={"debounceMs": 0},
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


class Editor:
    """One open document, its version counted as an editor counts it."""

    def __init__(self, client: LanguageClient, path: Path) -> None:
        self.client, self.uri, self.version = client, path.as_uri(), 1

    async def open(self, text: str) -> list[types.Diagnostic]:
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(
                    uri=self.uri, language_id="netdsl", version=self.version, text=text
                )
            )
        )
        return await self.diagnostics()

    async def replace(self, text: str) -> list[types.Diagnostic]:
        self.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
                [types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        return await self.diagnostics()

    async def diagnostics(self) -> list[types.Diagnostic]:
        while True:
            params = await self.client.wait_for_notification(
                types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
            )
            if params.uri == self.uri and params.version == self.version:
                return list(params.diagnostics)

    def at(self, line: int, character: int) -> dict:
        return {
            "text_document": types.TextDocumentIdentifier(self.uri),
            "position": types.Position(line, character),
        }


@pytest.fixture(scope="module")
def model(client: LanguageClient, workspace: Path) -> Editor:
    return Editor(client, workspace / "model.net")


async def test_a_mistake_is_a_diagnostic_at_its_range_and_the_fix_clears_it(model: Editor) -> None:
    found = await model.open(MISTAKE)
    assert len(found) == 1
    (diagnostic,) = found
    assert diagnostic.code == "E201"
    assert "Lineer" in diagnostic.message
    assert diagnostic.range == types.Range(types.Position(7, 20), types.Position(7, 26))
    assert diagnostic.source == "netdsl"
    assert any("Linear" in r.message for r in diagnostic.related_information or [])
    assert await model.replace(MODEL) == []
