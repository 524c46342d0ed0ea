"""`dsl lsp`'s debounce, on the leading edge: an edit after a quiet spell is checked at once,
edits in quick succession wait and are checked once, at the last, and no result is
published over a newer version's. The debounce is long here (1 s) so that "quick
succession" holds on a busy machine; which way each check went is in the server's log."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.test_lsp import SERVER, Editor, published_after, start
from tests.test_lsp_unet import TEXT, UNET

DEBOUNCE_MS = 1000

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(
    scope="module",
    loop_scope="module",
    config=SERVER,
)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await start(lsp_client, debounce_ms=DEBOUNCE_MS)
    yield
    await lsp_client.shutdown_session()


def _how_checked(client: LanguageClient, uri: str, version: int) -> list[str]:
    prefix = f"checked {uri} version {version} "
    return [
        r.message[len(prefix) :].partition(":")[0]
        for r in client.log_messages
        if r.message.startswith(prefix)
    ]


def _change(client: LanguageClient, editor: Editor, text: str) -> None:
    editor.version += 1
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=editor.uri, version=editor.version),
            [types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def test_an_edit_after_a_quiet_spell_is_checked_at_once_a_burst_once_at_its_end(
    client: LanguageClient,
) -> None:
    unet = Editor(client, UNET)
    assert await unet.open(TEXT) == []
    await asyncio.sleep(DEBOUNCE_MS / 1000 + 0.1)  # quiet
    assert await unet.replace(TEXT.replace("n_classes=2", "n_classes=3")) == []
    assert _how_checked(client, unet.uri, unet.version) == ["at once"]
    await asyncio.sleep(DEBOUNCE_MS / 1000 + 0.1)
    first, start = unet.version + 1, len(client.published)  # type: ignore[attr-defined]
    for width in (4, 5, 6, 7):  # typed in quick succession
        _change(client, unet, TEXT.replace("n_classes=2", f"n_classes={width}"))
    end = await published_after(client, start, lambda p: p.version == unet.version, 60)
    published = [p.version for p in client.published[start : end + 1]]  # type: ignore[attr-defined]
    # The burst's first edit was checked at once; its result is published only if it was
    # done before the next edit came.
    assert published in ([unet.version], [first, unet.version])
    assert _how_checked(client, unet.uri, unet.version) == [f"after the {DEBOUNCE_MS} ms debounce"]
    assert all(_how_checked(client, unet.uri, v) == [] for v in range(first + 1, unet.version))
