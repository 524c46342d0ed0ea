"""The files find-references searches: the open documents as the editor holds them, and
the spec files of the workspace that are not open, read from disk. The workspace is the
folder of the document asked from (and those under it: `from a.b import` reads there),
with the standard library where the name is defined in it; nothing outside is read,
links that lead outside included."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from dsl.errors import DSLError
from dsl.lsp.documents import Document, Documents
from dsl.lsp.positions import uri_of
from dsl.records import record
from dsl.syntax.loader import SPEC_SUFFIXES, Definition, Library, read_file, stdlib_dir

MAX_FILES = 2000  # spec files read from one workspace for one request
_SKIPPED = frozenset({"node_modules", "__pycache__"})


@record
class Source:
    """A file to search: its URI, its text, the definitions visible in it."""

    uri: str
    text: str
    names: dict[str, Definition]


def sources(docs: Documents, doc: Document, definition: Definition | None) -> Iterator[Source]:
    """The open documents that parsed, then the workspace's other spec files."""
    opened = set()
    for other in docs.all():
        if other.path is not None:
            opened.add(other.path.resolve())
        if other.parsed is not None:
            yield Source(other.uri, other.text, other.parsed.names)
    if doc.path is None:
        return
    for path in _spec_files(_roots(doc.path, definition)):
        if path not in opened:
            found = _source(path)
            if found is not None:
                yield found


def _roots(path: Path, definition: Definition | None) -> list[Path]:
    roots = [path.resolve().parent]
    where = definition.unit.path if definition is not None else None
    stdlib = stdlib_dir().resolve()
    if where is not None and where.resolve().is_relative_to(stdlib):
        roots.append(stdlib)
    return roots


def _spec_files(roots: list[Path]) -> Iterator[Path]:
    count = 0
    for root in roots:
        for folder, dirs, files in os.walk(root):  # links to folders are not followed
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED)
            for name in sorted(files):
                path = Path(folder, name)
                if not name.endswith(SPEC_SUFFIXES) or not _inside(path, root):
                    continue
                count += 1
                if count > MAX_FILES:
                    return
                yield path.resolve()


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root) and path.is_file()
    except OSError:
        return False


def _source(path: Path) -> Source | None:
    """A file of the workspace with the definitions it sees; None where it does not parse
    or its imports fail (its names are uncertain)."""
    try:
        spec = read_file(path)
        names = Library(path.parent).unit(spec, path).names
        text = path.read_text(encoding="utf-8")
    except (DSLError, OSError, UnicodeDecodeError):
        return None
    return Source(uri_of(path), text, names)
