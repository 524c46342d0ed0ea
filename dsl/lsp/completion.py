"""Completion: inside a call's parentheses, the callee's keyword arguments (a layer's from
its signature, with torch's defaults; a block's from its parameters) and the names in scope;
elsewhere layers (torch.nn, registered ones), blocks and nets in scope, containers,
functions and ops, and in an `init:` block the initialisers and init recipes."""

from __future__ import annotations

import functools
import inspect

from lsprotocol import types

from dsl import ir
from dsl.lsp.documents import Document
from dsl.lsp.outline import scope_at, scopes
from dsl.lsp.positions import open_call
from dsl.syntax.printer import print_expr
from dsl.torchlib.init import INITIALISERS, RECIPES
from dsl.torchlib.registry import REGISTRY

KEYWORDS = (
    *("net", "block", "input", "return", "param", "buffer", "if", "else", "for", "in"),
    *(
        "elif",
        "pass",
        "from",
        "import",
        "init",
        "forward",
        "true",
        "false",
        "none",
        "and",
        "or",
        "not",
    ),
)
_KIND = types.CompletionItemKind


def complete(doc: Document, position: types.Position) -> list[types.CompletionItem]:
    lines = doc.text.splitlines()
    before = lines[position.line][: position.character] if position.line < len(lines) else ""
    callee = open_call([*lines[: position.line], before])
    items = _scope_items(doc, position.line)
    if callee is not None:
        return _keyword_items(doc, callee) + items
    if _in_init_block(lines, position.line):
        return _init_items() + items
    return items + _global_items(doc)


def _keyword_items(doc: Document, callee: str) -> list[types.CompletionItem]:
    analysis = doc.parsed
    definition = analysis.names.get(callee) if analysis is not None else None
    if definition is not None:
        return [
            _keyword(p.name, print_expr(p.default) if p.default is not None else None, callee)
            for p in definition.node.params
        ]
    layer = REGISTRY.layer(callee)
    if layer is None or layer.signature is None:
        return []
    return [
        _keyword(
            p.name, repr(p.default) if p.default is not inspect.Parameter.empty else None, callee
        )
        for p in layer.signature.parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _keyword(name: str, default: str | None, callee: str) -> types.CompletionItem:
    return types.CompletionItem(
        label=name,
        kind=_KIND.Property,
        detail=f"{callee}: {name}=" + (default if default is not None else "(required)"),
        insert_text=f"{name}=",
        sort_text=f"0{name}",
    )


def _scope_items(doc: Document, line: int) -> list[types.CompletionItem]:
    analysis = doc.parsed
    if analysis is None or analysis.spec is None:
        return []
    scope = scope_at(scopes(analysis.spec, doc.text), line)
    if scope is None:
        return []
    return [
        types.CompletionItem(
            label=b.name, kind=_KIND.Variable, detail=b.kind, sort_text=f"1{b.name}"
        )
        for b in scope.bindings.values()
    ]


def _global_items(doc: Document) -> list[types.CompletionItem]:
    analysis = doc.parsed
    defined = [
        types.CompletionItem(label=name, kind=_KIND.Class, detail=d.node.kind, sort_text=f"2{name}")
        for name, d in (analysis.names.items() if analysis is not None else ())
    ]
    return defined + list(_static_items())


@functools.cache
def _static_items() -> tuple[types.CompletionItem, ...]:
    layers = [
        types.CompletionItem(
            label=name, kind=_KIND.Class, detail=f"layer ({layer.source})", sort_text=f"3{name}"
        )
        for name, layer in REGISTRY.layers.items()
    ]
    containers = [
        types.CompletionItem(
            label=kind, kind=_KIND.Struct, detail="container", sort_text=f"3{kind}"
        )
        for kind in ir.CONTAINER_KINDS
    ]
    keywords = [
        types.CompletionItem(label=word, kind=_KIND.Keyword, sort_text=f"4{word}")
        for word in KEYWORDS
    ]
    functions = [
        types.CompletionItem(
            label=name, kind=_KIND.Function, detail="function", sort_text=f"5{name}"
        )
        for name in REGISTRY.functions
    ]
    return (*layers, *containers, *keywords, *functions)


def _init_items() -> list[types.CompletionItem]:
    return [
        *(
            types.CompletionItem(
                label=name, kind=_KIND.Function, detail="initialiser", sort_text=f"0{name}"
            )
            for name in INITIALISERS
        ),
        *(
            types.CompletionItem(
                label=name, kind=_KIND.Function, detail="init recipe", sort_text=f"0{name}"
            )
            for name in RECIPES
        ),
    ]


def _in_init_block(lines: list[str], line: int) -> bool:
    """Whether `line` is indented under an `init:` line."""
    current = lines[line] if line < len(lines) else ""
    indent = len(current) - len(current.lstrip())
    for previous in reversed(lines[:line]):
        stripped = previous.strip()
        if not stripped or stripped.startswith("#"):
            continue
        level = len(previous) - len(previous.lstrip())
        if level < indent or (not current.strip() and level <= indent):
            return stripped.startswith("init") and stripped.endswith(":")
    return False
