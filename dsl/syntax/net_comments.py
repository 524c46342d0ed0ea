"""Comments in a `.net` text, attached to the IR: a comment block above a definition is its
doc; other comments ride on the span of the statement below them (`dsl fmt` keeps them)."""

from __future__ import annotations

import bisect
import re
from typing import Any

from dsl import ir
from dsl.source import Span

_COMMENT_LINE = re.compile(r"^[ \t]*#(.*)$")


def comments_of(text: str) -> dict[float, str]:
    """Comments by position: a full-line comment at its line, an end-of-line comment just
    before its line (line - 0.5), so that it rides on the statement that starts there and
    `dsl fmt` moves it above that statement instead of dropping it."""
    out: dict[float, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        match = _COMMENT_LINE.match(line)
        if match:
            out[number] = _comment_text(match.group(1))
        elif "#" in line:
            trailing = _trailing_comment(line)
            if trailing is not None:
                out[number - 0.5] = _comment_text(trailing)
    return out


def _comment_text(body: str) -> str:
    return body[1:] if body.startswith(" ") else body


def _trailing_comment(line: str) -> str | None:
    """The text after a `#` that is not inside a string literal."""
    quote = None
    escaped = False
    for index, char in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[index + 1 :]
    return None


def attach_comments(spec: ir.SpecFile, comments: dict[float, str]) -> ir.SpecFile:
    """A comment block right above a definition is its doc; other comment lines ride on the
    span of the statement below them, so `dsl fmt` keeps them without their taking part in
    equality."""
    return _Attacher(comments).spec(spec) if comments else spec


class _Attacher:
    """Hands each comment, in order, to the first node that starts below it."""

    def __init__(self, comments: dict[float, str]) -> None:
        self.comments = comments
        self.lines = sorted(comments)
        self.claimed: set[float] = set()
        self.unread = 0  # every line before lines[unread] is claimed

    def take(self, before: float) -> list[str]:
        end = bisect.bisect_left(self.lines, before, lo=self.unread)
        taken = [n for n in self.lines[self.unread : end] if n not in self.claimed]
        self.unread = end
        self.claimed.update(taken)
        return [self.comments[n] for n in taken]

    def doc_block(self, before: int) -> list[str]:
        block = []
        line = before - 1
        while line in self.comments and line not in self.claimed:
            block.append(line)
            line -= 1
        self.claimed.update(block)
        return [self.comments[n] for n in sorted(block)]

    def spec(self, spec: ir.SpecFile) -> ir.SpecFile:
        imports = []
        for imp in spec.imports:
            leading = self.take(imp.span.line)
            span = _with_comments(imp.span, leading)
            imports.append(imp.replace(span=span) if leading else imp)
        defs = [self.definition(definition) for definition in spec.defs]
        trailing = self.take(10**12)
        span = _with_comments(spec.span, trailing) if trailing else spec.span
        return spec.replace(imports=imports, defs=defs, span=span)

    def definition(self, definition: Any) -> Any:
        doc = self.doc_block(definition.span.line)
        leading = self.take(definition.span.line)
        body: Any = definition.body
        body = self.container(body) if isinstance(body, ir.Container) else self.stmts(body)
        updates: dict[str, Any] = {"doc": "\n".join(doc)} if doc else {}
        if body is not definition.body:
            updates["body"] = body
        if leading:
            updates["span"] = _with_comments(definition.span, leading)
        return definition.replace(**updates) if updates else definition

    def stmts(self, stmts: list) -> list:
        """The statements with their comments: the same list when none of them changed."""
        if (
            not stmts
            or self.unread == len(self.lines)
            or self.lines[self.unread] >= _last_line(stmts)
        ):
            return stmts  # no comment left before their end
        visited = [self.stmt(s) for s in stmts]
        return stmts if all(new is old for new, old in zip(visited, stmts)) else visited

    def container(self, container: ir.Container) -> ir.Container:
        body = self.stmts(container.body)
        return container if body is container.body else container.replace(body=body)

    def stmt(self, stmt: Any) -> Any:
        leading = self.take(stmt.span.line)
        updates: dict[str, Any] = {}
        if leading:
            updates["span"] = _with_comments(stmt.span, leading)
        fields = stmt.__dict__  # not getattr: a statement has only some of these fields
        for field in ("then", "else_", "body", "forward"):
            value = fields.get(field)
            if isinstance(value, list) and (visited := self.stmts(value)) is not value:
                updates[field] = visited
        for field in ("value", "define", "layer"):
            value = fields.get(field)
            if isinstance(value, ir.Container) and (inner := self.container(value)) is not value:
                updates[field] = inner
        return stmt.replace(**updates) if updates else stmt


def _last_line(stmts: list) -> int:
    """The line where the last of these statements ends. An `elif` is an If whose span ends
    where its `else` begins, so follow those."""
    line = 0
    stmt = stmts[-1]
    while True:
        line = max(line, stmt.span.end_line)
        if not (isinstance(stmt, ir.If) and stmt.else_):
            return line
        stmt = stmt.else_[-1]


def _with_comments(span: Span, comments: list[str]) -> Span:
    return span._replace(comments=(*span.comments, *comments))
