"""Spans (1-based, end column exclusive) as LSP ranges (0-based), file names as URIs, and
the identifiers of a `.net` text with where each stands."""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types
from pygls import uris

from dsl.records import record
from dsl.source import Span

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING_OR_COMMENT = re.compile(r"\"(?:\\.|[^\"\\])*\"?|'(?:\\.|[^'\\])*'?|#.*")


def to_range(span: Span) -> types.Range:
    """The span's range; a span without an end covers the word (or else one character)."""
    line, col = max(span.line - 1, 0), max(span.col - 1, 0)
    if span.end_line and (span.end_line, span.end_col) > (span.line, span.col):
        end = types.Position(span.end_line - 1, max(span.end_col - 1, 0))
    else:
        end = types.Position(line, col + 1)
    return types.Range(types.Position(line, col), end)


def span_path(span: Span) -> Path | None:
    """The file a span points into: diagnostics name imported files relative to the
    working directory (`loader.display_name`), the open document by its full path."""
    if not span.file or span.file.startswith("<"):
        return None
    path = Path(span.file)
    return path if path.is_absolute() else Path.cwd() / path


def path_of(uri: str) -> Path | None:
    found = uris.to_fs_path(uri)
    return Path(found) if found else None


def uri_of(path: Path) -> str:
    return uris.from_fs_path(str(path.resolve())) or str(path)


@record(frozen=True)
class Token:
    """An identifier as written: `attr` after a dot (`x.shape`), `keyword` before `=` in a
    call (`kernel_size=3`); neither names a value of the spec."""

    name: str
    line: int  # 0-based
    start: int
    end: int
    attr: bool
    keyword: bool

    @property
    def range(self) -> types.Range:
        return types.Range(
            types.Position(self.line, self.start), types.Position(self.line, self.end)
        )


def code_of(line: str) -> str:
    """The line with its strings and comment blanked out (same length)."""
    return _STRING_OR_COMMENT.sub(lambda m: " " * len(m.group()), line)


def tokens(text: str) -> list[Token]:
    """Every identifier outside strings and comments, in order."""
    found = []
    for number, line in enumerate(text.splitlines()):
        code = code_of(line)
        for match in _IDENTIFIER.finditer(code):
            before = code[: match.start()].rstrip()
            after = code[match.end() :].lstrip()
            keyword = after.startswith("=") and not after.startswith("==") and "(" in before
            found.append(
                Token(
                    match.group(),
                    number,
                    match.start(),
                    match.end(),
                    before.endswith("."),
                    keyword,
                )
            )
    return found


def token_at(text: str, position: types.Position) -> Token | None:
    """The identifier under (or just before) the cursor."""
    for token in tokens_on_line(text, position.line):
        if token.start <= position.character <= token.end:
            return token
    return None


def tokens_on_line(text: str, line: int) -> list[Token]:
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return []
    return [Token(t.name, line, t.start, t.end, t.attr, t.keyword) for t in tokens(lines[line])]


def name_range(text: str, line: int, name: str, start: int = 0) -> types.Range:
    """Where `name` is first written on 0-based `line` from column `start` (the line's
    start where it is not found)."""
    for token in tokens_on_line(text, line):
        if token.name == name and token.start >= start:
            return token.range
    return types.Range(types.Position(line, start), types.Position(line, start))


def open_call(lines: list[str]) -> str | None:
    """The name called by the innermost parenthesis still open before the cursor."""
    depth = 0
    for line in reversed(lines[-20:]):
        code = code_of(line)
        for index in range(len(code) - 1, -1, -1):
            char = code[index]
            if char in ")]}":
                depth += 1
            elif char in "([{" and depth:
                depth -= 1
            elif char == "(":
                head = code[:index].rstrip()
                name = head[
                    len(
                        head.rstrip(
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_."
                        )
                    ) :
                ]
                return name or None
            elif char in "[{":
                return None
    return None
