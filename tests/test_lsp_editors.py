"""The editor files: the VS Code extension's manifest, grammar and client agree with each
other and with the language, and the docs that set editors up are linked."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"


def _json(name: str) -> dict:
    return json.loads((VSCODE / name).read_text(encoding="utf-8"))


def test_the_manifest_names_files_that_exist_and_starts_dsl_lsp() -> None:
    manifest = _json("package.json")
    (language,) = manifest["contributes"]["languages"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert language["extensions"] == [".net"]
    assert grammar["language"] == language["id"]
    assert grammar["scopeName"] == _json(grammar["path"])["scopeName"]
    for path in (manifest["main"], language["configuration"], grammar["path"]):
        assert (VSCODE / path).is_file(), path
    command = manifest["contributes"]["configuration"]["properties"]["netdsl.server.command"]
    assert command["default"] == ["dsl", "lsp"]
    client = (VSCODE / manifest["main"]).read_text(encoding="utf-8")
    assert '"server.command", ["dsl", "lsp"]' in client and "debounceMs" in client


def _grammar_patterns(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["match"]] if "match" in node else []
        return own + [p for value in node.values() for p in _grammar_patterns(value)]
    if isinstance(node, list):
        return [p for item in node for p in _grammar_patterns(item)]
    return []


def test_the_grammar_highlights_every_keyword_of_the_language() -> None:
    grammar = _json("syntaxes/netdsl.tmLanguage.json")
    patterns = _grammar_patterns(grammar)
    compiled = [re.compile(p) for p in patterns]  # Oniguruma's syntax, within Python's here
    lark = (ROOT / "grammar" / "net.lark").read_text(encoding="utf-8")
    keywords = set(re.findall(r'"([a-z]+)"', lark))
    assert {"net", "block", "input", "return", "if", "for", "import", "init"} <= keywords
    for word in keywords:
        assert any(p.search(f"    {word} x") for p in compiled), word
    comment = next(p for p in compiled if p.pattern.startswith("#"))
    assert comment.search("x = 1  # a comment").group() == "# a comment"


def test_the_language_configuration_indents_after_a_colon() -> None:
    config = _json("language-configuration.json")
    assert config["comments"]["lineComment"] == "#"
    indent = re.compile(config["indentationRules"]["increaseIndentPattern"])
    assert indent.search("block DoubleConv(out, mid=out):")
    assert not indent.search("    return conv(x)")


def test_the_editor_docs_are_linked_and_cover_three_editors() -> None:
    assert "(docs/editors.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    text = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    assert all(f"## {name}" in text for name in ("VS Code", "Neovim", "Helix"))
    assert 'cmd = { "dsl", "lsp" }' in text and 'args = ["lsp"]' in text
