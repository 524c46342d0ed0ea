"""The language server: pygls on stdio, one handler per LSP feature.

Diagnostics are computed on a worker thread, debounced on the leading edge: an edit after
a quiet spell (`debounceMs` in the client's initializationOptions, default 50 ms, without
an edit) is checked at once; an edit that follows another within it waits that long, and
edits in quick succession are checked once, at the last. A result is published only while
its version is the document's latest, so a slow check never overwrites a newer one.
When a check of one document is published, the other open documents that import it are
checked again (after the debounce), so they show what its new text means for them.
Shapes for hover and inlay hints are measured on a second worker thread, once per
version, when asked for.
"""

from __future__ import annotations

import asyncio
import math
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from dsl.lsp import completion, edits, insight, navigation, outline
from dsl.lsp.diagnostics import diagnostics
from dsl.lsp.documents import Document, Documents

DEFAULT_DEBOUNCE_S = 0.05
T = TypeVar("T")


class NetdslServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("netdsl", "0.1.0")
        self.docs = Documents()
        self.debounce_s = DEFAULT_DEBOUNCE_S
        self.checker = ThreadPoolExecutor(1, thread_name_prefix="netdsl-check")
        self.measurer = ThreadPoolExecutor(1, thread_name_prefix="netdsl-measure")
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_edit: dict[str, float] = {}  # by URI, on the monotonic clock

    def edited(self, uri: str, version: int) -> None:
        """Check the new version at once after a quiet spell, else after the debounce."""
        now = time.monotonic()
        quiet = now - self.last_edit.get(uri, -math.inf) >= self.debounce_s
        self.last_edit[uri] = now
        self.schedule(uri, version, 0.0 if quiet else self.debounce_s)

    def schedule(self, uri: str, version: int, delay: float, cascade: bool = True) -> None:
        task = asyncio.ensure_future(self.check(uri, version, delay, cascade))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def check(self, uri: str, version: int, delay: float, cascade: bool) -> None:
        if delay:
            await asyncio.sleep(delay)
        if not self.docs.is_latest(uri, version):
            return  # a newer edit has scheduled its own check
        analysis = await self.off_loop(self.checker, self.docs.analyse, uri)
        doc = self.docs.get(uri)
        if analysis is None or doc is None or not self.docs.is_latest(uri, analysis.version):
            return  # stale: never published over a newer version
        found = diagnostics(analysis.errors, doc.path, analysis.spec)
        when = f"after the {delay * 1000:.0f} ms debounce" if delay else "at once"
        report = (
            f"checked {uri} version {analysis.version} {when}: {len(found)} diagnostics in "
            f"{analysis.wall_ms:.1f} ms ({analysis.cpu_ms:.1f} ms CPU), "
            f"{analysis.reused} block instances reused"
        )  # logged first: a client that has the diagnostics has the report too
        self.window_log_message(types.LogMessageParams(type=types.MessageType.Log, message=report))
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=analysis.version)
        )
        if cascade:
            self.recheck(self.docs.dependents(uri))

    def recheck(self, docs: list[Document]) -> None:
        """Check documents again for an edit of a file they import (and not what imports
        them in turn: an import cycle would go round for ever)."""
        for doc in docs:
            self.schedule(doc.uri, doc.version, self.debounce_s, cascade=False)

    async def measured(self, uri: str, answer: Callable[[Document, Any], T]) -> T | None:
        """`answer(doc, insight)` with the shapes of the document's latest version."""
        doc = self.docs.get(uri)
        if doc is None:
            return None
        found = await self.off_loop(self.measurer, self.docs.insight, uri)
        return answer(doc, found)

    async def off_loop(
        self, pool: ThreadPoolExecutor, work: Callable[[str], T], uri: str
    ) -> T | None:
        """`work(uri)` on a worker thread; a failure of ours (never a mistake in the spec:
        those are diagnostics) is logged to the client with its traceback, and answers None."""
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, work, uri)
        except Exception:
            message = f"netdsl: internal error on {uri}:\n{traceback.format_exc()}"
            self.window_log_message(
                types.LogMessageParams(type=types.MessageType.Error, message=message)
            )
            return None


server = NetdslServer()


def _doc(uri: str) -> Document | None:
    return server.docs.get(uri)


@server.feature(types.INITIALIZE)
def _initialize(ls: NetdslServer, params: types.InitializeParams) -> None:
    options = params.initialization_options
    if isinstance(options, dict) and isinstance(options.get("debounceMs"), int | float):
        ls.debounce_s = max(0.0, options["debounceMs"] / 1000)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: NetdslServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    ls.docs.update(item.uri, item.text, item.version)
    ls.edited(item.uri, item.version)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def _did_change(ls: NetdslServer, params: types.DidChangeTextDocumentParams) -> None:
    uri, version = params.text_document.uri, params.text_document.version
    ls.docs.update(uri, ls.workspace.get_text_document(uri).source, version)
    ls.edited(uri, version)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def _did_save(ls: NetdslServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.recheck(ls.docs.dependents(params.text_document.uri))  # they see it as saved now


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: NetdslServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.recheck(ls.docs.dependents(params.text_document.uri))  # the file on disk again
    ls.docs.close(params.text_document.uri)
    ls.last_edit.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
    )


@server.feature(types.TEXT_DOCUMENT_HOVER)
async def _hover(ls: NetdslServer, params: types.HoverParams) -> types.Hover | None:
    return await ls.measured(
        params.text_document.uri, lambda doc, found: insight.hover(doc, found, params.position)
    )


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
async def _inlay(ls: NetdslServer, params: types.InlayHintParams) -> list[types.InlayHint] | None:
    lines = range(params.range.start.line, params.range.end.line + 1)
    return await ls.measured(
        params.text_document.uri, lambda doc, found: insight.inlay_hints(doc, found, lines)
    )


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def _definition(ls: NetdslServer, params: types.DefinitionParams) -> list[types.Location] | None:
    doc = _doc(params.text_document.uri)
    return navigation.definition(doc, params.position) if doc is not None else None


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
def _references(ls: NetdslServer, params: types.ReferenceParams) -> list[types.Location] | None:
    doc = _doc(params.text_document.uri)
    if doc is None:
        return None
    return navigation.references(ls.docs, doc, params.position, params.context.include_declaration)


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def _symbols(
    ls: NetdslServer, params: types.DocumentSymbolParams
) -> list[types.DocumentSymbol] | None:
    doc = _doc(params.text_document.uri)
    if doc is None or doc.parsed is None or doc.parsed.spec is None:
        return None
    return outline.document_symbols(outline.scopes(doc.parsed.spec, doc.text))


@server.feature(
    types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["(", ","])
)
def _complete(ls: NetdslServer, params: types.CompletionParams) -> types.CompletionList | None:
    doc = _doc(params.text_document.uri)
    if doc is None:
        return None
    return types.CompletionList(
        is_incomplete=False, items=completion.complete(doc, params.position)
    )


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
def _format(ls: NetdslServer, params: types.DocumentFormattingParams) -> list[types.TextEdit]:
    doc = _doc(params.text_document.uri)
    return edits.formatted(doc) if doc is not None else []


@server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
def _prepare_rename(ls: NetdslServer, params: types.PrepareRenameParams) -> types.Range | None:
    doc = _doc(params.text_document.uri)
    return edits.prepare_rename(doc, params.position) if doc is not None else None


@server.feature(types.TEXT_DOCUMENT_RENAME)
def _rename(ls: NetdslServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    doc = _doc(params.text_document.uri)
    if doc is None:
        return None
    change, warning = edits.rename(ls.docs, doc, params.position, params.new_name)
    if warning is not None:
        kind = types.MessageType.Warning if change is not None else types.MessageType.Error
        ls.window_show_message(types.ShowMessageParams(type=kind, message=warning))
    return change


def serve() -> None:
    """Speak LSP on stdin and stdout until the client says exit."""
    server.start_io()
