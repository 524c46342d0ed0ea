"""Formatting (what `dsl fmt` writes: the printers' canonical text) and rename."""

from __future__ import annotations

from lsprotocol import types

from dsl.errors import DSLError
from dsl.ir import IDENTIFIER
from dsl.lsp.completion import KEYWORDS
from dsl.lsp.documents import Document, Documents
from dsl.lsp.navigation import references, target_at
from dsl.lsp.outline import MEMBER
from dsl.syntax.loader import parse_text
from dsl.syntax.printer import print_net
from dsl.syntax.yaml_printer import print_yaml


def formatted(doc: Document) -> list[types.TextEdit]:
    """One edit that replaces the whole text by its canonical form; none when the text is
    canonical already or does not parse (its diagnostics say why)."""
    name = str(doc.path) if doc.path is not None else "<string>"
    try:
        spec = parse_text(doc.text, name)
    except DSLError:
        return []
    yaml = name.endswith((".yaml", ".yml"))
    text = print_yaml(spec) if yaml else print_net(spec)
    if text == doc.text:
        return []
    lines = doc.text.splitlines()
    end = types.Position(len(lines), 0)
    return [types.TextEdit(types.Range(types.Position(0, 0), end), text)]


def prepare_rename(doc: Document, position: types.Position) -> types.Range | None:
    target = target_at(doc, position)
    return target.token.range if target is not None else None


def rename(
    docs: Documents, doc: Document, position: types.Position, new_name: str
) -> tuple[types.WorkspaceEdit | None, str | None]:
    """The edits that rename the name under the cursor everywhere it is used, and a warning
    to show: a member's name is an attribute of the built module and a checkpoint key."""
    target = target_at(doc, position)
    if target is None:
        return None, None
    if not IDENTIFIER.fullmatch(new_name) or new_name in KEYWORDS:
        return None, f"'{new_name}' is not a name a spec can use"
    changes: dict[str, list[types.TextEdit]] = {}
    for location in references(docs, doc, position, declaration=True):
        changes.setdefault(location.uri, []).append(types.TextEdit(location.range, new_name))
    warning = None
    if target.binding is not None and target.binding.kind == MEMBER:
        warning = (
            f"renaming member '{target.token.name}' to '{new_name}' changes the model's "
            f"state_dict keys ('{target.token.name}.*' becomes '{new_name}.*'): checkpoints "
            "saved before will not load with strict=True"
        )
    return types.WorkspaceEdit(changes=changes), warning
