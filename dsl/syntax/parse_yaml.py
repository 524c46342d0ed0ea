"""YAML text -> IR, through a safe loader that remembers where every value was written.

Every mapping gets a `__span__` key and every string, integer, float and list carries a
`.span`, so that schema errors point at the line that caused them. Expressions have a YAML
spelling (scalars, lists, `{Callee: args}` mappings, `${...}` strings in `.net` syntax);
dsl/syntax/yaml_exprs.py turns it into IR nodes. The reading is split in modules:
yaml_values (located values), yaml_loader (the loader, limits, YAML errors), yaml_builder
(the one-pass reader), yaml_exprs (expressions), yaml_schema_errors (pydantic's errors).
See docs/yaml.md.
"""

from __future__ import annotations

from typing import Any

from dsl import ir
from dsl.errors import LimitError, SchemaError
from dsl.pauses import gc_paused
from dsl.source import Span, register_source
from dsl.syntax.parse_net import check_source_size
from dsl.syntax.yaml_builder import load
from dsl.syntax.yaml_exprs import validate
from dsl.syntax.yaml_values import describe, span_of


def parse_yaml(text: str, file: str = "<string>") -> ir.SpecFile:
    """Parse a whole YAML spec file."""
    check_source_size(text, file)
    register_source(file, text)
    with gc_paused():
        return _parse(text, file)


def _parse(text: str, file: str) -> ir.SpecFile:
    try:
        data = load(text, file)
        if not isinstance(data, dict):
            raise SchemaError(
                f"a spec file is a mapping with 'imports' and 'defs', not {describe(data)}",
                span_of(data) or Span(file=file, line=1, col=1),
                hint="start the file with 'defs:'",
            )
        _add_name_spans(data.get("imports"))
        return validate(ir.SpecFile, data)
    except RecursionError:
        raise LimitError(
            "the spec nests too deeply to read", Span(file=file, line=1, col=1)
        ) from None


def _add_name_spans(imports: Any) -> None:
    """Give each import mapping the positions of the names it imports (`Import.name_spans`)."""
    for imp in imports if isinstance(imports, list) else []:
        names = imp.get("import") if isinstance(imp, dict) else None
        if isinstance(names, str):
            imp["__name_spans__"] = [span_of(names)]
        elif isinstance(names, list):
            imp["__name_spans__"] = [span_of(name) for name in names]
