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
    if not comments:
        return spec
    lines = sorted(comments)
    claimed: set[float] = set()
    unread = 0  # every line before lines[unread] is claimed

    def take(before: int) -> list[str]:
        nonlocal unread
        end = bisect.bisect_left(lines, before, lo=unread)
        taken = [n for n in lines[unread:end] if n not in claimed]
        unread = end
        claimed.update(taken)
        return [comments[n] for n in taken]

    def doc_block(before: int) -> list[str]:
        block = []
        line = before - 1
        while line in comments and line not in claimed:
            block.append(line)
            line -= 1
        claimed.update(block)
        return [comments[n] for n in sorted(block)]

    def visit_stmts(stmts: list) -> list:
        """The statements with their comments: the same list when none of them changed."""
        if not stmts or unread == len(lines) or lines[unread] >= _last_line(stmts):
            return stmts  # no comment left before their end
        visited = [visit_stmt(s) for s in stmts]
        return stmts if all(new is old for new, old in zip(visited, stmts)) else visited

    def visit_container(container: ir.Container) -> ir.Container:
        body = visit_stmts(container.body)
        return container if body is container.body else container.model_copy(update={"body": body})

    def visit_stmt(stmt: Any) -> Any:
        leading = take(stmt.span.line)
        updates: dict[str, Any] = {}
        if leading:
            updates["span"] = _with_comments(stmt.span, leading)
        fields = stmt.__dict__  # not getattr: a missing attribute costs pydantic an exception
        for field in ("then", "else_", "body"):
            value = fields.get(field)
            if isinstance(value, list) and (visited := visit_stmts(value)) is not value:
                updates[field] = visited
        for field in ("value", "define", "layer"):
            value = fields.get(field)
            if isinstance(value, ir.Container) and (visited := visit_container(value)) is not value:
                updates[field] = visited
        return stmt.model_copy(update=updates) if updates else stmt

    new_imports = []
    for imp in spec.imports:
        leading = take(imp.span.line)
        new_imports.append(
            imp.model_copy(update={"span": _with_comments(imp.span, leading)}) if leading else imp
        )
    new_defs = []
    for definition in spec.defs:
        doc = doc_block(definition.span.line)
        leading = take(definition.span.line)
        body = definition.body
        body = visit_container(body) if isinstance(body, ir.Container) else visit_stmts(body)
        updates: dict[str, Any] = {"doc": "\n".join(doc)} if doc else {}
        if body is not definition.body:
            updates["body"] = body
        if leading:
            updates["span"] = _with_comments(definition.span, leading)
        new_defs.append(definition.model_copy(update=updates) if updates else definition)
    trailing = take(10**12)
    span = _with_comments(spec.span, trailing) if trailing else spec.span
    return spec.model_copy(update={"imports": new_imports, "defs": new_defs, "span": span})


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
