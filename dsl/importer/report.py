"""What an import could not express precisely: each finding names the op or module, the
module it sits in (by qualified name) and the source line it comes from."""

from __future__ import annotations

import inspect
from typing import Any

from dsl.records import field, record


@record(frozen=True)
class Finding:
    """One thing the spec does not say as the Python did (or says only with help)."""

    kind: str  # "unsupported", "registered", "dropped", "init", "check"
    what: str  # the op, module class or value
    module: str  # qualified name of the module it belongs to ("" for the root)
    source: str = ""  # "file.py:123" where known
    detail: str = ""

    def __str__(self) -> str:
        where = f" in {self.module or '<root>'}"
        at = f" ({self.source})" if self.source else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.kind}: {self.what}{where}{at}{detail}"


@record
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        """Keep `finding`; a function to register is listed once, wherever it is called."""
        once = finding.kind == "registered"
        if not any(
            f == finding or (once and (f.kind, f.what) == (finding.kind, finding.what))
            for f in self.findings
        ):
            self.findings.append(finding)

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def __str__(self) -> str:
        return "\n".join(str(f) for f in self.findings)


def source_of(obj: Any) -> str:
    """`path/to/file.py:LINE` of a class or function, or "" where Python cannot say."""
    try:
        path = inspect.getsourcefile(obj) or ""
        line = inspect.getsourcelines(obj)[1]
    except (TypeError, OSError):
        return ""
    return f"{_short(path)}:{line}" if path else ""


def _short(path: str) -> str:
    """An installed package's file from its package folder on (`torchvision/models/...`)."""
    return path.rpartition("site-packages/")[2]


# Frames of torch itself (fx, functional's dispatch), not of the model's code.
_MACHINERY = ("/torch/",)


def node_source(stack_trace: str | None) -> str:
    """The innermost `File "...", line N` of an fx node's stack trace."""
    if not stack_trace:
        return ""
    lines = [
        ln.strip()
        for ln in stack_trace.splitlines()
        if ln.strip().startswith("File ") and not any(part in ln for part in _MACHINERY)
    ]
    if not lines:
        return ""
    last = lines[-1]
    path = last.split('"')[1] if '"' in last else ""
    number = last.split("line ")[1].split(",")[0] if "line " in last else ""
    return f"{_short(path)}:{number}"
