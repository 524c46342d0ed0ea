"""The `.net` grammar as Lark parsers: LALR with the contextual lexer, Lark's `Indenter` for
blocks, and a `Transformer` that builds the IR as rules reduce (see net_transform.py).

A Lark parser keeps state while it parses (its postlexer, its transformer), so each thread
makes its own (see `parse_net._Readers`)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from importlib import resources
from typing import Any

from lark import Lark, Token
from lark.indenter import Indenter
from lark.lark import PostLex

from dsl.errors import IndentationError_, LimitError
from dsl.source import Span
from dsl.syntax.net_transform import NetTransformer, PartReader
from dsl.syntax.parse_cache import cache_file

MAX_NESTING = 200


class _Tracker(PostLex):
    """Passes the tokens on, remembering the last one the parser has shifted: the token
    before the one it is reading, whose reductions are running. That token ends the rule
    being reduced (see `NetTransformer`)."""

    def __init__(self) -> None:
        self.previous: Token | None = None

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.previous = None
        return self._tracked(stream)

    def _tracked(self, stream: Iterator[Token]) -> Iterator[Token]:
        current = None
        for token in stream:
            self.previous = current
            current = token
            yield token
        self.previous = current  # the end of input reduces what is left


class NetIndenter(Indenter):
    """Leading whitespace -> _INDENT/_DEDENT tokens, with DSL errors for bad indentation."""

    NL_type = "_NEWLINE"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def __init__(self) -> None:
        super().__init__()
        self.file = "<string>"
        self.tracker = _Tracker()

    def handle_NL(self, token: Token) -> Iterator[Token]:
        if self.paren_level > 0:
            return
        yield token
        indent_str = token.rsplit("\n", 1)[1]
        if "\t" in indent_str and " " in indent_str:
            end = _after_newline(self.file, token)
            raise IndentationError_(
                "indentation mixes tabs and spaces",
                Span(file=self.file, line=end.line, col=1, end_line=end.line, end_col=end.col),
                hint="indent with spaces only (4 per level is the convention)",
            )
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        if indent > self.indent_level[-1]:
            if len(self.indent_level) > MAX_NESTING:
                raise LimitError(
                    f"blocks nest more than {MAX_NESTING} levels deep",
                    _after_newline(self.file, token),
                )
            self.indent_level.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
            return
        yield from self._dedent(indent, indent_str, token)

    def _dedent(self, indent: int, indent_str: str, token: Token) -> Iterator[Token]:
        levels = list(self.indent_level)
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
        if indent != self.indent_level[-1]:
            raise IndentationError_(
                f"this line is indented by {indent} columns, which matches no enclosing block",
                _after_newline(self.file, token),
                hint=f"indent it to one of the enclosing levels ({', '.join(map(str, levels))} columns)",
            )

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        """Lark's own `process`, but a closing bracket with none open is left to the parser
        (which rejects it) and so are brackets still open at the end (the parser says where);
        and the last token shifted is tracked, as `_Tracker` does."""
        self.paren_level = 0
        self.indent_level = [0]
        self.tracker.previous = None
        return self._indented(stream, self.tracker)

    def _indented(self, stream: Iterator[Token], tracker: _Tracker) -> Iterator[Token]:
        token = current = None
        opening, closing = frozenset(self.OPEN_PAREN_types), frozenset(self.CLOSE_PAREN_types)
        for token in stream:
            kind = token.type
            for out in self.handle_NL(token) if kind == "_NEWLINE" else (token,):
                tracker.previous, current = current, out
                yield out
            if kind in opening:
                self.paren_level += 1
            elif kind in closing and self.paren_level > 0:
                self.paren_level -= 1
        while len(self.indent_level) > 1:
            self.indent_level.pop()
            dedent = (
                Token.new_borrow_pos(self.DEDENT_type, "", token)
                if token
                else Token(self.DEDENT_type, "")
            )
            tracker.previous, current = current, dedent
            yield dedent
        tracker.previous = current  # the end of input reduces what is left


def _after_newline(file: str, token: Token) -> Span:
    """The position right after a newline token: where the next line's text begins."""
    line = token.end_line or token.line or 1
    col = token.end_column or 1
    return Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)


class Reader:
    """One Lark parser for one start rule, with its postlexer and its transformer."""

    def __init__(self, start: str, read_part: PartReader | None) -> None:
        self.indenter = NetIndenter() if start == "start" else None
        postlex: NetIndenter | _Tracker = self.indenter or _Tracker()
        self.tracker = self.indenter.tracker if self.indenter else postlex
        assert isinstance(self.tracker, _Tracker)
        self.transformer = NetTransformer(self.tracker, read_part)
        with _BUILDING:
            self.lark = _lark(start, postlex=postlex, transformer=self.transformer)

    def read(self, text: str, file: str, origin: Span | None = None) -> Any:
        """The start rule's value; Lark's exceptions for syntax errors, else the first error
        met while building the IR (see `NetTransformer.finish`)."""
        if self.indenter is not None:
            self.indenter.file = file
        self.transformer.begin(file, origin)
        return self.transformer.finish(self.lark.parse(text))


_BUILDING = threading.Lock()  # threads that start together write the cache file once


def _grammar() -> str:
    return resources.files("dsl.grammar").joinpath("net.lark").read_text()


def _lark(start: str, **options: Any) -> Lark:
    """Lark's LALR analysis of the grammar takes ~0.2 s, most of a first validate. It is
    cached per user, in a file named by the grammar's hash: installs with other grammars
    keep their own (one file would be rewritten by each in turn). Lark also checks the
    grammar, its options and versions, and redoes the analysis on any change."""
    grammar = _grammar()
    digest = hashlib.sha256(grammar.encode()).hexdigest()[:16]
    cache = cache_file(f"grammar-{start}-{digest}.lark-cache")
    return Lark(
        grammar, parser="lalr", lexer="contextual", start=start, cache=cache or False, **options
    )
