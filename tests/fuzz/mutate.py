"""Mutations of spec texts: bytes, tokens, numbers, identifiers, indentation, unicode,
nesting, and YAML tags and aliases. Deterministic for a given `random.Random`."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\"[^\"\n]*\"|\S")
NUMBER = re.compile(r"(?<![A-Za-z_\d.])\d+(?:\.\d+)?")
IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")

EDGE_NUMBERS = ("0", "-1", "1", "3.5", "1e999", "-0.0", "10**18", "2**70", "10**9", "65537", "0.0")
ODD_NAMES = (
    "forward",
    "training",
    "state_dict",
    "to",
    "B",
    "H",
    "input",
    "self",
    "None",
    "true",
    "Linear",
    "Conv2d",
    "torch",
    "F",
    "lambda",
    "def",
    "if",
    "for",
    "net",
    "block",
    "x" * 300,
    "sin",
    "dropout",
    "__class__",
    "__import__",
    "eval",
    "open",
)
ODD_TEXT = (
    "\u200b",
    "\u202e",
    "\u0301",
    "\U0001f600",
    "\uff11",
    "\t",
    "\r",
    "\x00",
    "\ufeff",
    "ß",
    "\u2028",
    "é",
    "Ⅻ",
    "\U0001d431",
)
NESTINGS = ("(" * 200 + "1" + ")" * 200, "[" * 120 + "]" * 120, "-" * 500 + "1", "not " * 300 + "x")
YAML_BITS = (
    "!!timestamp 2001-12-14",
    "!!python/object:os.system",
    "!!binary aGk=",
    "!!set {a, b}",
    "&a [*a]",
    "*undefined",
    "!!float .inf",
    "!!int 0x7fffffffffffffffffff",
    "? complex key",
    "<<: *a",
    "!custom x",
    "!!omap [a: 1]",
    "'${__import__}'",
    "${x.size(10)}",
)


def _pick(rng: random.Random, text: str, pattern: re.Pattern[str]) -> re.Match[str] | None:
    found = list(pattern.finditer(text))
    return rng.choice(found) if found else None


def _splice(text: str, match: re.Match[str] | None, new: str) -> str:
    return text if match is None else text[: match.start()] + new + text[match.end() :]


def byte(rng: random.Random, text: str) -> str:
    at = rng.randrange(len(text) + 1)
    action = rng.randrange(3)
    char = chr(rng.choice((rng.randrange(32, 127), rng.randrange(0, 0x3000))))
    if action == 0:
        return text[:at] + char + text[at:]
    if action == 1:
        return text[:at] + text[at + 1 :]
    return text[:at] + char + text[at + 1 :]


def token(rng: random.Random, text: str) -> str:
    found = list(TOKEN.finditer(text))
    if not found:
        return text
    one, other = rng.choice(found), rng.choice(found)
    action = rng.randrange(3)
    new = ("", one.group() * 2, other.group())[action]
    return _splice(text, one, new)


def number(rng: random.Random, text: str) -> str:
    return _splice(text, _pick(rng, text, NUMBER), rng.choice(EDGE_NUMBERS))


def identifier(rng: random.Random, text: str) -> str:
    match = _pick(rng, text, IDENTIFIER)
    names = [m.group() for m in IDENTIFIER.finditer(text)] or ["x"]
    return _splice(text, match, rng.choice((*ODD_NAMES, *names)))


def indentation(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    stripped = lines[i].lstrip(" \t")
    lines[i] = rng.choice(("", " ", "\t", "    " * rng.randrange(1, 12), " \t ")) + stripped
    return "\n".join(lines)


def unicode(rng: random.Random, text: str) -> str:
    at = rng.randrange(len(text) + 1)
    return text[:at] + rng.choice(ODD_TEXT) + text[at:]


def nesting(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    if rng.random() < 0.3:
        lines[i : i + 1] = [lines[i]] * rng.choice((2, 50, 400))
        return "\n".join(lines)
    return _splice(
        text, _pick(rng, text, NUMBER) or _pick(rng, text, IDENTIFIER), rng.choice(NESTINGS)
    )


def yaml_bits(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    head, colon, _ = lines[i].partition(": ")
    bit = rng.choice(YAML_BITS)
    lines[i] = f"{head}: {bit}" if colon else lines[i] + " " + bit
    return "\n".join(lines)


MUTATIONS: dict[str, Callable[[random.Random, str], str]] = {
    "byte": byte,
    "token": token,
    "number": number,
    "identifier": identifier,
    "indentation": indentation,
    "unicode": unicode,
    "nesting": nesting,
    "yaml": yaml_bits,
}


def mutate(rng: random.Random, text: str, yaml: bool) -> tuple[str, list[str]]:
    """One to three mutations; YAML texts also get tags and aliases."""
    kinds = [k for k in MUTATIONS if yaml or k != "yaml"]
    applied = [rng.choice(kinds) for _ in range(rng.choice((1, 1, 2, 3)))]
    for kind in applied:
        text = MUTATIONS[kind](rng, text)
    return text, applied
