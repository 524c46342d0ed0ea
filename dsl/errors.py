"""Every mistake a user can make is a `DSLError`; each kind has its own subclass and code.

Rendering follows compilers people already read every day:

    examples/unet.net:5:9: error[E201]: unknown layer 'BatchNorm2D'
        5 |         BatchNorm2D()
          |         ^^^^^^^^^^^
      hint: did you mean 'BatchNorm2d'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from dsl.records import record
from dsl.source import NO_SPAN, Span, source_line, source_text


@record(frozen=True)
class Note:
    """A secondary location that explains the error ("the shape came from here")."""

    message: str
    span: Span


class DSLError(Exception):
    """Base of every user-facing error. Not a ValueError, so validators never swallow it."""

    code = "E000"
    kind = "error"

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        hint: str | None = None,
        notes: Iterable[Note] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span or NO_SPAN
        self.hint = hint
        self.notes = tuple(notes)
        self.quoted: dict[str, str] = {}  # the texts this error quotes, as they were when raised
        self._quote(self.span, *(note.span for note in self.notes))

    def __str__(self) -> str:
        return self.render()

    def with_span(self, span: Span) -> DSLError:
        """Give a position to an error raised where none was known."""
        if not self.span:
            self.span = span
            self._quote(span)
        return self

    def _quote(self, *spans: Span) -> None:
        for span in spans:
            if span and span.file not in self.quoted:
                text = source_text(span.file)
                if text is not None:
                    self.quoted[span.file] = text

    def render(self, color: bool = False) -> str:
        style = _Style(color)
        head = f"{style.bold(self.location())}: {style.red(f'error[{self.code}]')}: {style.bold(self.message)}"
        lines = [head, *_snippet(self.span, style, self.quoted)]
        for note in self.notes:
            lines.append(
                f"  {style.blue('note')}: {note.message} ({note.span})"
                if note.span
                else f"  {style.blue('note')}: {note.message}"
            )
            lines.extend(_snippet(note.span, style, self.quoted))
        if self.hint:
            lines.append(f"  {style.green('hint')}: {self.hint}")
        return "\n".join(lines)

    def location(self) -> str:
        if not self.span:
            return self.span.file
        return f"{self.span.file}:{self.span.line}:{self.span.col}"

    def to_json(self) -> dict:
        return {
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "code": self.code,
            "kind": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "notes": [
                {"message": n.message, "file": n.span.file, "line": n.span.line, "col": n.span.col}
                for n in self.notes
            ],
        }


class DSLSyntaxError(DSLError):
    code = "E100"


class IndentationError_(DSLSyntaxError):
    code = "E101"


class YAMLFormatError(DSLSyntaxError):
    code = "E110"


class SchemaError(DSLSyntaxError):
    """The YAML is well formed but does not follow the spec schema."""

    code = "E111"


class UnknownNameError(DSLError):
    code = "E200"


class UnknownLayerError(UnknownNameError):
    code = "E201"


class UndefinedValueError(UnknownNameError):
    code = "E202"


class DuplicateNameError(DSLError):
    code = "E210"


class ArgumentError(DSLError):
    code = "E300"


class CommandLineError(ArgumentError):
    """A mistake in the `dsl` command line itself (not in a spec): exit 2, as argparse's."""


class UnknownKeywordError(ArgumentError):
    code = "E301"


class ArgumentTypeError(ArgumentError):
    code = "E302"


class ArityError(ArgumentError):
    code = "E303"


class CallArgumentError(ArgumentError):
    """An argument of the Python API itself (`build_model(seed=..., device=...)`), not of a spec."""

    code = "E304"


class EvaluationError(DSLError):
    code = "E310"


class SymbolicDecisionError(EvaluationError):
    """A build-time decision that reads a symbolic size (docs/language.md)."""

    code = "E311"


class StructureError(DSLError):
    """A construct used where it does not belong (a `return` in a Sequential, ...)."""

    code = "E320"


class ShapeError(DSLError):
    code = "E400"


class ImportError_(DSLError):
    code = "E500"


class ImportCycleError(ImportError_):
    code = "E501"


class RecursionError_(DSLError):
    code = "E510"


class LimitError(DSLError):
    code = "E600"


class WorkLimitError(LimitError):
    """Elaboration that would spend more than a spec's work budget (NETDSL_MAX_WORK)."""

    code = "E601"


class SizeLimitError(LimitError):
    """A value, line or declared tensor too large to build: a string over MAX_STRING
    characters, a line over MAX_LINE_CHARS, a dimension over MAX_DIM."""

    code = "E602"


class NetworkAccessError(DSLError):
    """A spec that would download something (pretrained weights) without the caller's consent."""

    code = "E520"


class InitError(DSLError):
    code = "E700"


class WeightsError(DSLError):
    code = "E800"


class CheckpointError(WeightsError):
    """A checkpoint file that is corrupt, truncated, or whose metadata cannot be read."""

    code = "E801"


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Candidates that look like `name`; case-insensitive equality ranks first."""
    pool = list(dict.fromkeys(candidates))
    exact_case = [c for c in pool if c.lower() == name.lower() and c != name]
    fuzzy = difflib.get_close_matches(name, pool, n=n, cutoff=0.6)
    lowered = {c.lower(): c for c in pool}
    fuzzy_lower = [
        lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    ]
    return list(dict.fromkeys([*exact_case, *fuzzy, *fuzzy_lower]))[:n]


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    matches = close_matches(name, candidates)
    if not matches:
        return None
    return "did you mean " + " or ".join(f"'{m}'" for m in matches) + "?"


def _snippet(span: Span, style: _Style, quoted: dict[str, str]) -> list[str]:
    if not span:
        return []
    text = source_line(span.file, span.line, quoted.get(span.file))
    if text is None:
        return []
    text = text.replace("\t", " ")
    width = len(str(span.line))
    end = (
        span.end_col
        if span.end_line == span.line and span.end_col > span.col
        else len(text.rstrip()) + 1
    )
    carets = "^" * max(1, min(end, len(text) + 1) - span.col)
    gutter = " " * (width + 5)
    return [
        f"    {style.blue(str(span.line))} | {text}",
        f"{gutter}{style.blue('|')} {' ' * (span.col - 1)}{style.red(carets)}",
    ]


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def red(self, text: str) -> str:
        return self._wrap("1;31", text)

    def green(self, text: str) -> str:
        return self._wrap("1;32", text)

    def blue(self, text: str) -> str:
        return self._wrap("1;34", text)
