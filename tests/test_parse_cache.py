"""Parsed `.net` files are kept between processes (dsl/syntax/parse_cache.py): a file read
again unchanged gives the IR a fresh parse gives, positions and comments included; any
change of text, name or reader is a miss; a broken cache file is a miss, never an error;
and a new process that reads only kept files imports neither Lark nor pydantic. YAML files
are read afresh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsl.syntax import parse_cache
from dsl.syntax.loader import parse_text
from tests.ir_positions import positions

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted([*ROOT.glob("examples/*.net"), *ROOT.glob("blocks/*.net")])


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NETDSL_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_a_kept_parse_is_the_fresh_parse(cache_dir: Path, path: Path) -> None:
    text, name = path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))
    fresh = parse_text(text, name)
    assert parse_cache.load(text, name) is None
    parse_cache.store(text, name, fresh)
    kept = parse_cache.load(text, name)
    assert kept == fresh and positions(kept) == positions(fresh)


def test_a_change_of_text_or_name_is_a_miss(cache_dir: Path) -> None:
    text = "net N:\n    input x: [1, 4]\n    return x\n"
    parse_cache.store(text, "n.net", parse_text(text, "n.net"))
    assert parse_cache.load(text, "n.net") is not None
    assert parse_cache.load(text + "# more\n", "n.net") is None
    assert parse_cache.load(text, "m.net") is None


def test_a_change_of_the_reader_is_a_miss(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "net N:\n    input x: [1, 4]\n    return x\n"
    parse_cache.store(text, "n.net", parse_text(text, "n.net"))
    monkeypatch.setattr(parse_cache, "_reader_version", lambda: "another reader")
    assert parse_cache.load(text, "n.net") is None


@pytest.mark.parametrize(
    "content",
    [b"", b"not marshal", b"\xe9\x02\x00\x00\x00", None],
    ids=["empty", "garbage", "truncated", "wrong-node"],
)
def test_a_broken_cache_file_is_a_miss(cache_dir: Path, content: bytes | None) -> None:
    import marshal

    text = "net N:\n    input x: [1, 4]\n    return x\n"
    parse_cache.store(text, "n.net", parse_text(text, "n.net"))
    (kept,) = cache_dir.glob("ir-*")
    if content is None:  # a node of a class the IR does not have
        digest, _ = marshal.loads(kept.read_bytes())
        content = marshal.dumps((digest, ("Nonexistent", 1)))
    kept.write_bytes(content)
    assert parse_cache.load(text, "n.net") is None


def test_yaml_files_are_not_kept(cache_dir: Path) -> None:
    """YAML's reading depends on PyYAML's and pydantic's versions too: it is read afresh."""
    path = ROOT / "examples" / "unet.yaml"
    text = path.read_text(encoding="utf-8")
    parse_cache.store(text, "examples/unet.yaml", parse_text(text, "examples/unet.yaml"))
    assert parse_cache.load(text, "examples/unet.yaml") is None and not list(cache_dir.glob("ir-*"))


def test_nothing_is_kept_when_caching_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETDSL_CACHE_DIR", "")
    text = "net N:\n    input x: [1, 4]\n    return x\n"
    parse_cache.store(text, "n.net", parse_text(text, "n.net"))
    assert parse_cache.load(text, "n.net") is None


def test_a_parse_too_large_to_keep_is_not_kept(cache_dir: Path) -> None:
    lines = [f"    x = l{i}(x): Linear(16, 16)" for i in range(3000)]
    text = "\n".join(["net N:", "    input x: [1, 16]", *lines, "    return x", ""])
    parse_cache.store(text, "big.net", parse_text(text, "big.net"))
    assert parse_cache.load(text, "big.net") is None and not list(cache_dir.glob("ir-*"))


def test_the_cache_holds_at_most_256_files(cache_dir: Path) -> None:
    text = "net N:\n    input x: [1, 4]\n    return x\n"
    spec = parse_text(text, "n.net")
    for i in range(600):
        parse_cache.store(text, f"n{i}.net", spec)
    names = sorted(p.name for p in cache_dir.iterdir())
    assert 200 < len(names) <= 256 and all(n.startswith("ir-") for n in names)


def test_a_new_process_reading_kept_files_imports_no_lark_or_pydantic(tmp_path: Path) -> None:
    """Start-up: the second process validates the unchanged spec from the kept parses."""
    code = (
        "import sys, dsl; dsl.validate(sys.argv[1]); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'lark', 'pydantic', 'yaml'}))"
    )
    env = {**os.environ, "NETDSL_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, spec],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for spec in ("examples/unet.net", "examples/unet.net", "examples/resnet50.net")
    ]
    assert runs[0] == "['lark']" and runs[1] == "[]"
    assert runs[2] == "['lark']"  # resnet50.net and the blocks it imports were never read
