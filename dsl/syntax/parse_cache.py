"""Parsed `.net` files kept between processes, as Python keeps bytecode: a file read again
unchanged is not parsed again, so a new process that reads it needs no Lark (start-up;
docs/architecture.md).

A spec file is kept in one of 256 cache files (chosen by the hash of its name, so the
cache never grows past them; two names that share one take turns), in the user's cache
directory (`cache_file`). It holds the hash of the text it was read from, of the name
diagnostics call it by and of the reader's own source files, and the IR encoded as plain
data. Loading builds IR node classes only, by name, from `marshal` data (which runs no
code); anything that does not fit is a miss, and the file is parsed as usual."""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from dsl import ir
from dsl.source import Span

_FORMAT = 1
# A kept parse takes ~14 bytes per character of source: a file over ~70 KB (some 2,000
# lines) is read afresh, so that the 256 cache files stay under 256 MB in all.
MAX_KEPT_BYTES = 1_000_000
_NODES = {cls.__name__: cls for cls in ir.node_classes()}
_SPAN = 0  # an encoded span starts with this, an encoded node with its class's name


def cache_file(name: str) -> str | None:
    """A file in the user's cache directory ($NETDSL_CACHE_DIR, else $XDG_CACHE_HOME/netdsl
    or ~/.cache/netdsl); None to cache nothing (NETDSL_CACHE_DIR="", or no usable place).
    Lark's cache is a pickle, so only a directory no one else can write to will do."""
    chosen = os.environ.get("NETDSL_CACHE_DIR")
    if chosen == "":
        return None
    try:
        directory = (
            Path(chosen)
            if chosen
            else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "netdsl"
        )
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return None
    if info.st_mode & 0o022 or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        return None
    return str(directory / name)


@cache
def _reader_version() -> str | None:
    """What the IR of a text depends on besides the text: the reader's source files (by
    size and modification time, as Python checks bytecode), the grammar and Python's
    version; None (keep nothing) where the sources cannot be found."""
    package = Path(__file__).resolve().parent.parent
    sources = sorted([*package.glob("syntax/*.py"), package / "ir.py", package / "source.py"])
    try:
        stamps = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sources]
        grammar = resources.files("dsl.grammar").joinpath("net.lark").read_bytes()
    except OSError:
        return None
    if len(stamps) < 3:
        return None
    return repr((_FORMAT, sys.version_info[:2], stamps, hashlib.sha256(grammar).hexdigest()))


def _digest(text: str, name: str) -> str:
    parts = (str(_reader_version()), name, text)
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _place(name: str) -> str | None:
    """The cache file for `name`: `.net` files only (YAML's reading also depends on PyYAML's
    and pydantic's versions), and nothing where the reader's version is unknown."""
    if not name.endswith(".net") or _reader_version() is None:
        return None
    bucket = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()[0]
    return cache_file(f"ir-{bucket:02x}.marshal")


def load(text: str, name: str) -> ir.SpecFile | None:
    """The IR kept for `text` read as `name`, or None."""
    place = _place(name)
    if place is None:
        return None
    try:
        with open(place, "rb") as kept:
            digest, data = marshal.load(kept)
        if digest != _digest(text, name):
            return None
        spec = _decode(data)
    except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    return spec if isinstance(spec, ir.SpecFile) else None


def store(text: str, name: str, spec: ir.SpecFile) -> None:
    """Keep `spec`, read from `text` as `name` (nothing happens where nothing can be kept)."""
    place = _place(name)
    if place is None:
        return
    try:
        data = marshal.dumps((_digest(text, name), _encode(spec)))
        if len(data) > MAX_KEPT_BYTES:
            return
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(place), prefix=".ir-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, place)
    except (OSError, ValueError, RecursionError):
        return


def _encode(value: Any) -> Any:
    if isinstance(value, ir.Node):
        return (type(value).__name__, *(_encode(v) for v in value.__dict__.values()))
    if isinstance(value, Span):
        return (_SPAN, *value)
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"cannot keep {type(value).__name__}")


_new = object.__new__
_set = object.__setattr__


def _decode(value: Any) -> Any:
    if isinstance(value, tuple):
        if value[0] == _SPAN:
            return Span._make(value[1:])
        cls = _NODES[value[0]]
        if len(value) != len(cls.fields) + 1:
            raise ValueError(f"a kept {value[0]} has other fields")
        node = _new(cls)
        _set(node, "__dict__", dict(zip(cls.fields, map(_decode, value[1:]))))
        return node
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict):
        return {key: _decode(item) for key, item in value.items()}
    return value
