"""Reading specs: either format from a path or a string, and the files they import.

`from unet import DoubleConv` looks for `unet.net` (or `.yaml`/`.yml`) next to the importing
file, then in the standard library (`blocks/`). `from "./parts.net" import Stem` names a
path relative to the importing file. An import may not leave the directory of the spec
being built (or the standard library), and import cycles are errors.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from dsl import ir
from dsl.errors import (
    DSLError,
    DuplicateNameError,
    ImportCycleError,
    ImportError_,
    Note,
    UnknownNameError,
    did_you_mean,
)
from dsl.records import field, record
from dsl.source import Span, register_source, source_line
from dsl.syntax import parse_cache
from dsl.syntax.parse_net import parse_net

SPEC_SUFFIXES = (".net", ".yaml", ".yml")
MAX_FILE_BYTES = 20_000_000


def stdlib_dir() -> Path:
    return Path(str(resources.files("dsl.blocks")))


def parse_text(text: str, file: str = "<string>") -> ir.SpecFile:
    """Parse `.net` or YAML text; the file name's suffix decides, else the content does."""
    if file.endswith((".yaml", ".yml")) or (not file.endswith(".net") and _looks_like_yaml(text)):
        from dsl.syntax.parse_yaml import parse_yaml

        return parse_yaml(text, file)
    return parse_net(text, file)


def _looks_like_yaml(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return stripped.startswith(("defs:", "imports:", "---", "{"))
    return False


_PARSED: dict[tuple[str, str, int, int], ir.SpecFile] = {}  # IR is immutable: safe to share

# An editor's open documents (the language server's): texts read in place of the files on
# disk, by resolved path, with their parses by the name diagnostics call the file.
_OPEN: dict[Path, tuple[str, dict[str, ir.SpecFile]]] = {}


def open_text(path: Path, text: str | None) -> None:
    """Read `text` wherever `path` is read from now on; None: the file on disk again."""
    key = path.resolve()
    if text is None:
        _OPEN.pop(key, None)
    elif key not in _OPEN or _OPEN[key][0] != text:
        _OPEN[key] = (text, {})


def _read_open(path: Path, name: str) -> ir.SpecFile | None:
    key = _resolved(path) if _OPEN else None
    entry = _OPEN.get(key) if key is not None else None
    if entry is None:
        return None
    text, parses = entry
    if name not in parses:
        parses[name] = parse_text(text, name)
    return parses[name]


def read_file(path: Path, name: str | None = None) -> ir.SpecFile:
    """`name` is how diagnostics call the file (default: the path as given). A file read
    before and unchanged since (same size and mtime) is not parsed again; a file open in
    an editor (`open_text`) is read as the editor holds it."""
    opened = _read_open(path, name or str(path))
    if opened is not None:
        return opened
    try:
        stat = path.stat()
        key = (str(path.resolve()), name or str(path), stat.st_mtime_ns, stat.st_size)
        if key in _PARSED:
            return _PARSED[key]
        size = stat.st_size
        if size > MAX_FILE_BYTES:
            from dsl.errors import LimitError

            raise LimitError(
                f"{path} is {size} bytes; the limit is {MAX_FILE_BYTES}", Span(file=str(path))
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportError_(f"no such file: {path}", Span(file=str(path))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportError_(f"cannot read {path}: {exc}", Span(file=str(path))) from None
    spec = _parse_file(text, name or str(path))
    if len(_PARSED) > 512:
        _PARSED.clear()
    _PARSED[key] = spec
    return spec


def _parse_file(text: str, name: str) -> ir.SpecFile:
    """A file's text -> IR, taken from the parse kept when it was last read unchanged
    (parse_cache, `.net` files: a new process then needs no Lark)."""
    spec = parse_cache.load(text, name)
    if spec is not None:
        register_source(name, text.replace("\r\n", "\n"))  # its lines, as the readers keep them
        return spec
    spec = parse_text(text, name)
    parse_cache.store(text, name, spec)
    return spec


def display_name(path: Path) -> str:
    """An imported file's name in diagnostics: relative to the working directory when it is
    under it, so that messages read the same on every machine."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _part_span(span: Span, pattern: str) -> Span:
    """Where `pattern` (a regex) first matches on the statement's line, after its start: the
    IR keeps one span per import, and a diagnostic should point at the part at fault."""
    line = source_line(span.file, span.line) if span else None
    match = re.compile(pattern).search(line, span.col - 1) if line is not None else None
    if match is None:
        return span
    return Span(
        file=span.file,
        line=span.line,
        col=match.start() + 1,
        end_line=span.line,
        end_col=match.end() + 1,
    )


def _source_span(imp: ir.Import) -> Span:
    return _part_span(
        imp.span, r"([\"'])" + re.escape(imp.from_) + r"\1|\b" + re.escape(imp.from_) + r"\b"
    )


def _name_span(imp: ir.Import, name: str) -> Span:
    written = dict(zip(imp.import_, imp.name_spans or ()))
    if written.get(name):
        return written[name]
    return _part_span(imp.span, r"(?<=[\s,\[])" + re.escape(name) + r"\b(?!.*\bimport\b)")


@record(frozen=True)
class Definition:
    """A net or block with the file it lives in (its imports are that file's)."""

    node: ir.NetDef | ir.BlockDef | ir.FuncDef
    unit: Unit


@record
class Unit:
    """One parsed file and the definitions visible in it (its own and imported ones)."""

    spec: ir.SpecFile
    path: Path | None
    names: dict[str, Definition] = field(default_factory=dict)


class Library:
    """Every file a build reads, loaded once each."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.stdlib = stdlib_dir().resolve()
        self._units: dict[Path, Unit] = {}
        self._loading: list[Path] = []
        self._import_spans: list[Span] = []  # the import that started loading each file in _loading

    def unit(self, spec: ir.SpecFile, path: Path | None) -> Unit:
        key = path.resolve() if path else None
        if key is not None and key in self._units:
            return self._units[key]
        unit = Unit(spec, path)
        if key is not None:
            self._units[key] = unit
        # The file being built takes part in cycles too, as the first link of the chain.
        entry = key if not self._loading else None
        if entry is not None:
            self._loading.append(entry)
            self._import_spans.append(spec.span)
        try:
            self._fill_names(unit)
        finally:
            if entry is not None:
                self._loading.pop()
                self._import_spans.pop()
        return unit

    def loaded(self, path: Path) -> Unit | None:
        """The file at `path` (resolved) if this library has loaded it."""
        return self._units.get(path)

    def paths(self) -> frozenset[Path]:
        """Every file loaded so far (resolved): the one built and all it imports."""
        return frozenset(self._units)

    def _fill_names(self, unit: Unit) -> None:
        for definition in unit.spec.defs:
            if definition.name in unit.names:
                first = unit.names[definition.name].node
                raise DuplicateNameError(
                    f"'{definition.name}' is defined twice",
                    definition.span,
                    notes=[Note("first defined here", first.span)],
                )
            unit.names[definition.name] = Definition(definition, unit)
        for imp in unit.spec.imports:
            imported = self._import(imp, unit)
            for name in imp.import_:
                if name not in imported.names:
                    raise UnknownNameError(
                        f"'{imp.from_}' defines no '{name}'",
                        _name_span(imp, name),
                        hint=did_you_mean(name, imported.names)
                        or f"it defines: {', '.join(imported.names) or 'nothing'}",
                    )
                if name in unit.names and unit.names[name].unit is unit:
                    raise DuplicateNameError(
                        f"'{name}' is both imported and defined here", unit.names[name].node.span
                    )
                unit.names[name] = imported.names[name]

    def _import(self, imp: ir.Import, unit: Unit) -> Unit:
        path = self._find(imp, unit)
        if path in self._loading:
            start = self._loading.index(path)
            chain = " -> ".join(p.name for p in [*self._loading[start:], path])
            notes = [
                Note(f"'{p.name}' is imported here", span)
                for p, span in zip(self._loading[start + 1 :], self._import_spans[start + 1 :])
            ]
            raise ImportCycleError(
                f"import cycle: {chain}",
                _source_span(imp),
                notes=notes,
                hint="move the shared blocks into a third file that both import",
            )
        if path in self._units:
            return self._units[path]
        self._loading.append(path)
        self._import_spans.append(imp.span)
        try:
            return self.unit(read_file(path, display_name(path)), path)
        except DSLError:
            raise
        finally:
            self._loading.pop()
            self._import_spans.pop()

    def _find(self, imp: ir.Import, unit: Unit) -> Path:
        base = unit.path.parent if unit.path else self.root
        source = imp.from_
        is_path = "/" in source or source.endswith(SPEC_SUFFIXES)
        candidates = [base / source] if is_path else self._module_files(imp, base)
        for candidate in candidates:
            resolved = _resolved(candidate)
            if resolved is None:
                continue
            if is_path:
                # Said before looking: whether a file outside exists is none of the spec's business.
                self._check_inside(resolved, imp)
            if _is_file(resolved):
                self._check_inside(resolved, imp)
                return resolved
        looked = ", ".join(str(c) for c in candidates[:4])
        hint = did_you_mean(source, self._available()) if not is_path else None
        raise ImportError_(
            f"cannot find '{source}' (looked for {looked})", _source_span(imp), hint=hint
        )

    def _module_files(self, imp: ir.Import, base: Path) -> list[Path]:
        """Where `from a.b import ...` may live: a/b.net (.yaml, .yml) here, then in the
        standard library."""
        parts = imp.from_.split(".")
        if not all(parts):
            raise ImportError_(
                f"'{imp.from_}' is not a module name",
                _source_span(imp),
                hint='for parts.net, write `from parts import ...` or `from "./parts.net" import ...`',
            )
        relative = Path(*parts)
        candidates = [base / relative.with_suffix(s) for s in SPEC_SUFFIXES]
        return candidates + [self.stdlib / relative.with_suffix(s) for s in SPEC_SUFFIXES]

    def _check_inside(self, path: Path, imp: ir.Import) -> None:
        if path.is_relative_to(self.root) or path.is_relative_to(self.stdlib):
            return
        raise ImportError_(
            f"'{imp.from_}' lies outside the spec's directory",
            _source_span(imp),
            hint="imports may only read files under the spec's own directory or the standard library",
        )

    def _available(self) -> list[str]:
        names = [p.stem for p in self.stdlib.glob("*.net")]
        names += [p.stem for p in self.root.glob("*") if p.suffix in SPEC_SUFFIXES]
        return names


def _resolved(path: Path) -> Path | None:
    """The absolute path, or None where the system could not name such a file (a NUL)."""
    try:
        return path.resolve()
    except (OSError, ValueError):
        return None


def _is_file(path: Path) -> bool:
    """Whether a file is there; a name the system refuses (too long, ...) names none."""
    try:
        return path.is_file()
    except OSError:
        return False


def load(source: str | Path | ir.SpecFile) -> tuple[ir.SpecFile, Path | None]:
    """A spec from a path, from `.net`/YAML text, or as IR already; with its file's path."""
    if isinstance(source, ir.SpecFile):
        return source, None
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith(SPEC_SUFFIXES)
    ):
        path = Path(source)
        return read_file(path), path
    return parse_text(source), None
