"""The open documents and what the server computed from each version of them.

An edit replaces a document's text in the loader (`loader.open_text`), so every reader of
the pipeline (`validate_spec`, the summary, `dsl resolve`'s provenance) sees the editor's
text, and files that import an open document see its unsaved edits too. Between edits the
loader keeps the parse of every imported file (unchanged files are not read again) and the
registry keeps its layers' signatures and meta modules: only the edited file is parsed
again, and its nets elaborated again; a block instance whose definition, arguments, input
shapes and every name it reads are unchanged is taken from the earlier checks
(`dsl.elaborate.reuse`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dsl import ir
from dsl.elaborate.reuse import Kept, reusing
from dsl.elaborate.watch import Seen, watching
from dsl.errors import DSLError
from dsl.lsp.positions import path_of
from dsl.plan import Resolved
from dsl.records import field, record
from dsl.syntax.loader import Definition, Library, Unit, open_text, parse_text, read_file
from dsl.tools.measure import shape_text
from dsl.tools.provenance import Entry, explain
from dsl.tools.summary import Row, summarise
from dsl.tools.validate import validate_spec


@record
class Analysis:
    """One version of a document, checked: its errors, its IR (None when it does not
    parse) and the definitions visible in it, its own and imported ones."""

    version: int
    errors: list[DSLError]
    spec: ir.SpecFile | None
    names: dict[str, Definition] = field(default_factory=dict)
    resolved: Resolved | None = None
    wall_ms: float = 0.0  # how long the check took, and the CPU time of its thread
    cpu_ms: float = 0.0
    reused: int = 0  # block instances an earlier check's elaboration answered
    reads: frozenset[Path] = frozenset()  # the files its imports loaded (resolved)


@record
class Insight:
    """What `dsl summary` and `dsl resolve` know of one version: every module's output
    shape and parameter count (rows), its constructor arguments with their origins, and
    the shapes of the values the document's statements bind (by 0-based line and name;
    one per distinct place, a block's statement having one per instance)."""

    version: int
    rows: list[Row]
    entries: dict[str, Entry]
    values: dict[tuple[int, str], list[str]] = field(default_factory=dict)


@record
class Document:
    uri: str
    path: Path | None
    text: str
    version: int
    analysis: Analysis | None = None
    insight: Insight | None = None
    # The latest analysis of a text that parsed: what names mean while an edit is half done.
    parsed: Analysis | None = None


class Documents:
    """The open documents by URI. Edits arrive on the server's event loop; analyses run on
    worker threads and are kept only while their version is the document's latest."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}
        self._lock = threading.Lock()
        self.kept = Kept()  # blocks elaborated by earlier checks (analyses run one at a time)

    def update(self, uri: str, text: str, version: int) -> Document:
        with self._lock:
            doc = self._docs.get(uri)
            if doc is None or version >= doc.version:
                before = doc.parsed if doc is not None else None
                doc = self._docs[uri] = Document(uri, path_of(uri), text, version, parsed=before)
            return doc

    def close(self, uri: str) -> None:
        with self._lock:
            doc = self._docs.pop(uri, None)
        if doc is not None and doc.path is not None:
            open_text(doc.path, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def all(self) -> list[Document]:
        return list(self._docs.values())

    def dependents(self, uri: str) -> list[Document]:
        """The other open documents whose last check read `uri`'s file: forgotten, so that
        their next check reads its new text."""
        doc = self._docs.get(uri)
        if doc is None or doc.path is None:
            return []
        target = doc.path.resolve()
        found = []
        with self._lock:
            for other in self._docs.values():
                if other is not doc and other.analysis and target in other.analysis.reads:
                    other.analysis = other.insight = None
                    found.append(other)
        return found

    def is_latest(self, uri: str, version: int) -> bool:
        doc = self._docs.get(uri)
        return doc is not None and doc.version == version

    def analyse(self, uri: str) -> Analysis | None:
        """Check the latest text of `uri` (None if it changed meanwhile: a newer analysis
        is on its way)."""
        doc = self._docs.get(uri)
        if doc is None:
            return None
        if doc.analysis is not None and doc.analysis.version == doc.version:
            return doc.analysis  # checked already (an edit's check that came late)
        wall, cpu, hits = time.perf_counter(), time.thread_time(), self.kept.hits
        with reusing(self.kept):
            analysis = analyse_text(doc.path, doc.text, doc.version)
        analysis.wall_ms = (time.perf_counter() - wall) * 1000
        analysis.cpu_ms = (time.thread_time() - cpu) * 1000
        analysis.reused = self.kept.hits - hits
        with self._lock:
            if not self.is_latest(uri, analysis.version):
                return None
            doc.analysis = analysis
            if analysis.spec is not None:
                doc.parsed = analysis
        return analysis

    def insight(self, uri: str) -> Insight | None:
        """Shapes and provenance of the latest version, measured once per version."""
        doc = self._docs.get(uri)
        if doc is None or doc.path is None:
            return None
        if doc.insight is not None and doc.insight.version == doc.version:
            return doc.insight
        analysis = doc.analysis
        if analysis is None or analysis.version != doc.version or analysis.resolved is None:
            return None
        found = measure(doc.path, analysis)
        with self._lock:
            if self.is_latest(uri, found.version):
                doc.insight = found
        return found


def analyse_text(path: Path | None, text: str, version: int) -> Analysis:
    """Every diagnostic of `text` (read as the file at `path`), its IR and names in scope."""
    if path is None:  # an unsaved buffer: no imports can be resolved next to it
        result = validate_spec(text if "\n" in text else text + "\n", every_net=True)
        return Analysis(version, result.errors, _parsed(text), resolved=result.resolved)
    open_text(path, text)
    result = validate_spec(path, every_net=True)
    try:
        spec = read_file(path)  # the parse validate made
    except DSLError:
        return Analysis(version, result.errors, None)
    library = Library(path.parent)
    names = _scope(library, spec, path)
    return Analysis(version, result.errors, spec, names, result.resolved, reads=library.paths())


def _scope(library: Library, spec: ir.SpecFile, path: Path) -> dict[str, Definition]:
    """The definitions visible in the file; where an import fails, its own ones."""
    try:
        return library.unit(spec, path).names
    except DSLError:
        unit = Unit(spec, path)
        return {d.name: Definition(d, unit) for d in spec.defs}


def _parsed(text: str) -> ir.SpecFile | None:
    try:
        return parse_text(text)
    except DSLError:
        return None


def measure(path: Path, analysis: Analysis) -> Insight:
    """The summary's rows, the provenance of the net `validate` resolved last and the
    shapes of the values its elaboration bound in this file."""
    assert analysis.resolved is not None
    try:
        rows = summarise(analysis.resolved).rows
        with watching() as seen:
            resolved, entries = explain(path, net=analysis.resolved.name)
    except DSLError:
        return Insight(analysis.version, [], {})
    return Insight(
        analysis.version, rows, {e.name: e for e in entries}, _shapes(seen, path, resolved)
    )


def _shapes(seen: Seen, path: Path, resolved: Resolved) -> dict[tuple[int, str], list[str]]:
    target = path.resolve()
    files = {file for file, _, _ in seen}
    here = {file: bool(file) and Path(file).resolve() == target for file in files}
    found: dict[tuple[int, str], list[str]] = {}
    for (file, line, name), metas in seen.items():
        if here[file]:
            shapes = (shape_text(m, resolved.symbols) for m in metas)
            found[line - 1, name] = list(dict.fromkeys(shapes))
    return found
