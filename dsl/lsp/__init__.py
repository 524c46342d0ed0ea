"""`dsl lsp`: the language server (pygls on stdio), on top of the tools like the CLI.

`server` registers the features; `documents` keeps the open texts and what was computed
from them (diagnostics per version, shapes and provenance on demand); `diagnostics`,
`outline` (symbols, definitions, references), `insight` (hover, inlay hints), `completion`
and `edits` (formatting, rename) answer from those; `positions` maps spans to ranges.
"""
