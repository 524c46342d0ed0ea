"""`dsl lsp` driven as an editor drives it: a subprocess speaking LSP over stdio
(pytest-lsp's client), on a workspace of two files, one importing the other."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

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


def recording_client() -> LanguageClient:
    """pytest-lsp's client that also keeps every publishDiagnostics in order
    (`client.published`): waiting for the next notification misses one that arrives in the
    same read as the one before it."""
    client = LanguageClient(converter_factory=default_converter)
    published: list[types.PublishDiagnosticsParams] = []

    def publish(params: types.PublishDiagnosticsParams) -> None:
        client.diagnostics[params.uri] = params.diagnostics
        published.append(params)

    register_lsp_features(
        client, {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: publish}
    )
    client.published = published  # type: ignore[attr-defined]
    return client


SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "dsl.cli", "lsp"], client_factory=recording_client
)


async def start(
    client: LanguageClient, root: Path | None = None, debounce_ms: int | None = None
) -> None:
    """Initialize a session as an editor does: its workspace folder and, if given, the
    debounce (`debounceMs`; without it, the server's default)."""
    options = None if debounce_ms is None else {"debounceMs": debounce_ms}
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        root_uri=root.as_uri() if root is not None else None,
        initialization_options=options,
    )
    await client.initialize_session(params)


async def published_after(
    client: LanguageClient, start: int, wanted: Any, timeout_s: float = 180
) -> int:
    """The index of the first publish at or after `start` for which `wanted(params)` holds,
    waiting for it."""
    deadline = time.monotonic() + timeout_s
    published: list[types.PublishDiagnosticsParams] = client.published  # type: ignore[attr-defined]
    while time.monotonic() < deadline:
        found = next((i for i in range(start, len(published)) if wanted(published[i])), None)
        if found is not None:
            return found
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no such publishDiagnostics in {timeout_s} s")


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
    config=SERVER,
)
async def client(lsp_client: LanguageClient, workspace: Path):  # type: ignore[no-untyped-def]
    await start(lsp_client, workspace, debounce_ms=0)
    yield
    await lsp_client.shutdown_session()


class Editor:
    """One open document, its version counted as an editor counts it."""

    def __init__(self, client: LanguageClient, path: Path) -> None:
        self.client, self.uri, self.version = client, path.as_uri(), 1
        self.read = 0  # how far into client.published this editor has read

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
        """The next diagnostics published for this version since the last this editor read
        (a file it imports may have it checked again at the same version)."""
        index = await published_after(
            self.client, self.read, lambda p: p.uri == self.uri and p.version == self.version
        )
        self.read = index + 1
        return list(self.client.published[index].diagnostics)  # type: ignore[attr-defined]

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


async def test_hover_on_a_member_shows_its_shape_parameters_and_arguments(
    model: Editor, client: LanguageClient
) -> None:
    assert await model.replace(MODEL) == []
    hover = await client.text_document_hover_async(types.HoverParams(**model.at(4, 9)))  # stem
    assert hover is not None
    text = hover.contents.value  # type: ignore[union-attr]
    assert "`stem`: Stem → `[B, 16, H, W]` · 448 parameters" in text
    value = await client.text_document_hover_async(types.HoverParams(**model.at(4, 4)))  # y
    assert "`[B, 16, H, W]`" in value.contents.value  # type: ignore[union-attr]
    head = await client.text_document_hover_async(types.HoverParams(**model.at(7, 12)))
    text = head.contents.value  # type: ignore[union-attr]
    assert "`head`: Linear → `[B, 10]` · 170 parameters" in text
    assert "in_features=16 *(inferred)*" in text and "out_features=10" in text
    assert "defaults: bias=True" in text
    layer = await client.text_document_hover_async(types.HoverParams(**model.at(5, 12)))
    assert "AdaptiveAvgPool2d(output_size" in layer.contents.value  # type: ignore[union-attr]
    block = await client.text_document_hover_async(types.HoverParams(**model.at(4, 19)))
    assert "block Stem(out)" in block.contents.value  # type: ignore[union-attr]


async def test_definition_of_a_block_is_its_line_in_the_file_it_comes_from(
    model: Editor, client: LanguageClient, workspace: Path
) -> None:
    found = await client.text_document_definition_async(
        types.DefinitionParams(**model.at(4, 19))  # Stem in `Stem(16)`
    )
    assert found == [
        types.Location(
            uri=(workspace / "parts.net").as_uri(),
            range=types.Range(start=types.Position(1, 6), end=types.Position(1, 10)),
        )
    ]
    value = await client.text_document_definition_async(types.DefinitionParams(**model.at(6, 21)))
    assert [loc.range.start for loc in value] == [types.Position(4, 4)]  # y's binding
    line = MODEL.splitlines()[7]
    param = await client.text_document_definition_async(
        types.DefinitionParams(**model.at(7, line.index("classes")))
    )
    assert [loc.range.start for loc in param] == [
        types.Position(2, MODEL.index("classes=") - MODEL.index("net"))
    ]


async def test_definition_reaches_the_standard_library(
    client: LanguageClient, workspace: Path
) -> None:
    editor = Editor(client, workspace / "resnet_user.net")
    text = "from resnet import Bottleneck\n\nnet N():\n    input x: [B, 64, H, W]\n    return b(x): Bottleneck(16)\n"
    assert await editor.open(text) == []
    (found,) = await client.text_document_definition_async(
        types.DefinitionParams(**editor.at(4, 20))
    )
    assert found.uri.endswith("/blocks/resnet.net")
    line = (Path(__file__).parent.parent / "blocks" / "resnet.net").read_text().splitlines()
    assert line[found.range.start.line].startswith("block Bottleneck(")


async def test_completion_inside_a_layer_call_offers_its_keywords(
    model: Editor, client: LanguageClient
) -> None:
    edited = MODEL.replace(
        "pool = AdaptiveAvgPool2d(1)", "pool = AdaptiveAvgPool2d(1)\n    c = Conv2d("
    )
    await model.replace(edited)  # an error: the call is not closed
    found = await client.text_document_completion_async(types.CompletionParams(**model.at(6, 15)))
    items = {item.label: item for item in found.items}  # type: ignore[union-attr]
    assert items["kernel_size"].insert_text == "kernel_size="
    assert items["stride"].detail == "Conv2d: stride=1"
    assert "padding_mode" in items and "x" in items  # a value in scope
    assert "Conv2d" not in items  # not a layer name inside a call
    await model.replace(MODEL)


async def test_completion_at_a_statement_offers_layers_blocks_and_functions(
    model: Editor, client: LanguageClient
) -> None:
    found = await client.text_document_completion_async(types.CompletionParams(**model.at(5, 11)))
    labels = {item.label for item in found.items}  # type: ignore[union-attr]
    assert {"Conv2d", "BatchNorm2d", "Stem", "Small", "Sequential", "cat", "relu"} <= labels


async def test_document_symbols_outline_nets_members_and_values(
    model: Editor, client: LanguageClient
) -> None:
    (net,) = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(model.uri))
    )
    assert (net.name, net.detail) == ("Small", "net")  # type: ignore[union-attr]
    children = [(c.name, c.detail) for c in net.children]  # type: ignore[union-attr]
    assert children == [
        ("classes", "parameter"),
        ("x", "input"),
        ("stem", "member"),
        ("y", "value"),
        ("pool", "member"),
        ("h", "value"),
        ("head", "member"),
    ]


async def test_references_of_a_value_stay_inside_its_definition(
    model: Editor, client: LanguageClient
) -> None:
    found = await client.text_document_references_async(
        types.ReferenceParams(
            **model.at(5, 5), context=types.ReferenceContext(include_declaration=True)
        )
    )
    assert [(r.range.start.line, r.range.start.character) for r in found] == [(5, 4), (6, 16)]


async def test_rename_of_a_member_updates_its_uses_and_warns_about_checkpoints(
    model: Editor, client: LanguageClient
) -> None:
    edit = await client.text_document_rename_async(
        types.RenameParams(**model.at(5, 4), new_name="gap")
    )
    changes = edit.changes[model.uri]  # type: ignore[union-attr,index]
    assert sorted((c.range.start.line, c.range.start.character, c.new_text) for c in changes) == [
        (5, 4, "gap"),
        (6, 16, "gap"),
    ]
    # The server warns before it answers: the message is in by now.
    (message,) = [m for m in client.messages if "state_dict" in m.message]
    assert (
        message.type == types.MessageType.Warning and "'pool.*' becomes 'gap.*'" in message.message
    )


async def test_formatting_gives_what_dsl_fmt_writes(model: Editor, client: LanguageClient) -> None:
    messy = MODEL.replace("Stem(16)", "Stem( 16 )").replace(
        "flatten(pool(y), 1)", "flatten(pool(y),1)"
    )
    await model.replace(messy)
    (edit,) = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(model.uri),
            options=types.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert edit.new_text == MODEL
    assert edit.range.start == types.Position(0, 0)
    await model.replace(MODEL)


async def test_inlay_hints_show_each_members_shape(model: Editor, client: LanguageClient) -> None:
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(model.uri),
            range=types.Range(start=types.Position(0, 0), end=types.Position(8, 0)),
        )
    )
    assert [(h.position.line, h.label) for h in hints] == [  # type: ignore[union-attr]
        (4, "→ [B, 16, H, W]"),
        (5, "→ [B, 16, 1, 1]"),
        (7, "→ [B, 10]"),
    ]
