"""`dsl lsp` on examples/unet.net with its default debounce: a burst of edits is published
in order, ending at its last version; a block's member shows its shape in every instance;
completion offers a block's parameters and, under `init:`, the initialisers and recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.test_lsp import SERVER, Editor, published_after, start

UNET = Path(__file__).resolve().parent.parent / "examples" / "unet.net"
TEXT = UNET.read_text()

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(
    scope="module",
    loop_scope="module",
    config=SERVER,
)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await start(lsp_client)  # no options: the default debounce
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="module")
def unet(client: LanguageClient) -> Editor:
    return Editor(client, UNET)


async def test_a_burst_of_edits_ends_at_its_last_version(
    unet: Editor, client: LanguageClient
) -> None:
    assert await unet.open(TEXT) == []
    start = len(client.published)  # type: ignore[attr-defined]
    for width in (3, 4, 5, 6):  # typed faster than the debounce
        unet.version += 1
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=unet.uri, version=unet.version
                ),
                content_changes=[
                    types.TextDocumentContentChangeWholeDocument(
                        text=TEXT.replace("n_classes=2", f"n_classes={width}")
                    )
                ],
            )
        )
    end = await published_after(client, start, lambda p: p.version == unet.version)
    versions = [p.version for p in client.published[start : end + 1]]  # type: ignore[attr-defined]
    # The first edit may be checked at once (the leading edge: tests/test_lsp_debounce.py);
    # what is published comes in order and ends at the last version.
    assert versions == sorted(set(versions))


async def test_a_blocks_member_shows_its_shape_in_each_instance(
    unet: Editor, client: LanguageClient
) -> None:
    assert await unet.replace(TEXT) == []
    line = TEXT.splitlines().index("    double_conv = Sequential:")
    hover = await client.text_document_hover_async(types.HoverParams(**unet.at(line, 6)))
    text = hover.contents.value  # type: ignore[union-attr]
    assert "**double_conv**: member of block DoubleConv" in text
    assert "`inc.double_conv`: Sequential → `[B, 64, H, W]` · 38,848 parameters" in text
    assert "`down1.maxpool_conv.1.double_conv`: Sequential → `[B, 128, H/2, W/2]`" in text
    assert "... and 3 more places" in text  # 9 instances of DoubleConv, 6 shown
    line = TEXT.splitlines().index("    input x: [B, n_channels, H, W]")
    hover = await client.text_document_hover_async(types.HoverParams(**unet.at(line, 10)))
    assert hover.contents.value.endswith("shape `[B, 3, H, W]`")  # type: ignore[union-attr]


async def test_completion_offers_a_blocks_parameters(unet: Editor, client: LanguageClient) -> None:
    line = TEXT.splitlines().index("    x1 = inc(x): DoubleConv(64)")
    edited = TEXT.replace("DoubleConv(64)", "DoubleConv(64, ", 1)
    await unet.replace(edited)
    column = len("    x1 = inc(x): DoubleConv(64, ")
    found = await client.text_document_completion_async(
        types.CompletionParams(**unet.at(line, column))
    )
    items = {item.label: item.detail for item in found.items}  # type: ignore[union-attr]
    assert items["out"] == "DoubleConv: out=(required)"
    assert items["mid"] == "DoubleConv: mid=out"


async def test_completion_under_init_offers_initialisers_and_recipes(
    unet: Editor, client: LanguageClient
) -> None:
    edited = TEXT + "    init:\n        \n"
    await unet.replace(edited)
    line = len(edited.splitlines()) - 1
    found = await client.text_document_completion_async(types.CompletionParams(**unet.at(line, 8)))
    items = {item.label: item.detail for item in found.items}  # type: ignore[union-attr]
    assert items["kaiming_normal"] == "initialiser"
    assert items["resnet"] == "init recipe"
    assert "Conv2d" not in items
    await unet.replace(TEXT)
