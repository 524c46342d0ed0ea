"""`DSLError`s as LSP diagnostics: the error's range, code and message; its notes and its
hint as related information (a hint has no place of its own: it points at the error)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from dsl import ir
from dsl.errors import DSLError
from dsl.lsp.positions import span_path, to_range, uri_of
from dsl.source import Span

SOURCE = "netdsl"


def diagnostics(
    errors: list[DSLError], path: Path | None, spec: ir.SpecFile | None
) -> list[types.Diagnostic]:
    """One diagnostic per error, on the document at `path`; an error inside an imported
    file is shown on the document's imports (where it comes in), naming its place."""
    return [_diagnostic(error, path, spec) for error in errors]


def _diagnostic(error: DSLError, path: Path | None, spec: ir.SpecFile | None) -> types.Diagnostic:
    where = span_path(error.span)
    here = where is None or path is None or where.resolve() == path.resolve()
    message = error.message
    span = error.span
    if not here:
        message = f"in {error.location()}: {message}"
        span = _import_span(spec)
    related = [
        types.DiagnosticRelatedInformation(_location(note.span, path), note.message)
        for note in error.notes
        if note.span
    ]
    if error.hint:
        related.append(
            types.DiagnosticRelatedInformation(_location(error.span, path), f"hint: {error.hint}")
        )
    if not here and where is not None:
        related.insert(0, types.DiagnosticRelatedInformation(_location(error.span, path), message))
    return types.Diagnostic(
        range=to_range(span),
        message=message + (f"\nhint: {error.hint}" if error.hint else ""),
        severity=types.DiagnosticSeverity.Error,
        code=error.code,
        source=SOURCE,
        related_information=related or None,
    )


def _import_span(spec: ir.SpecFile | None) -> Span:
    """Where an imported file's error shows: the first import, else the file's start."""
    if spec is not None and spec.imports:
        return spec.imports[0].span._replace(end_line=0, end_col=0)
    return Span(line=1, col=1)


def _location(span: Span, path: Path | None) -> types.Location:
    where = span_path(span) or path
    uri = uri_of(where) if where is not None else "untitled:"
    return types.Location(uri, to_range(span))
