"""The grammar's LALR analysis is cached per user, and only where no one else can write:
Lark's cache is a pickle, and loading one from a shared directory could run another user's code."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsl.syntax.parse_cache import cache_file

ROOT = Path(__file__).resolve().parent.parent


def test_cache_goes_to_a_private_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETDSL_CACHE_DIR", str(tmp_path / "cache"))
    path = cache_file("grammar-start.lark-cache")
    assert path == str(tmp_path / "cache" / "grammar-start.lark-cache")
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700


def test_no_cache_in_a_directory_others_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("NETDSL_CACHE_DIR", str(shared))
    assert cache_file("grammar-start.lark-cache") is None


def test_cache_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETDSL_CACHE_DIR", "")
    assert cache_file("grammar-start.lark-cache") is None


def test_a_cached_grammar_parses_the_same(tmp_path: Path) -> None:
    """A fresh process writes the cache, a second one reads it: both give the same IR."""
    code = "import sys; from dsl.syntax.parse_net import parse_net; print(repr(parse_net(open(sys.argv[1]).read(), 'x.net')))"
    spec = Path(__file__).resolve().parent.parent / "examples" / "unet.net"
    env = {**os.environ, "NETDSL_CACHE_DIR": str(tmp_path)}
    first = subprocess.run(
        [sys.executable, "-c", code, str(spec)], env=env, capture_output=True, text=True, check=True
    ).stdout
    (written,) = sorted(p.name for p in tmp_path.iterdir())
    digest = hashlib.sha256((ROOT / "grammar" / "net.lark").read_bytes()).hexdigest()[:16]
    assert written == f"grammar-start-{digest}.lark-cache"  # named by the grammar it holds
    second = subprocess.run(
        [sys.executable, "-c", code, str(spec)], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert first == second and "SpecFile" in first
