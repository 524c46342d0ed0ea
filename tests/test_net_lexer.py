"""The `.net` reader's own lexer (`parse_net._lex`) stands in for Lark's contextual lexer
and the indenter. Wherever it reads a text, the result is what Lark's lexer gives: the same
IR, every span, every comment, the same error. It reads every example and generated spec
itself, and leaves anything unusual (and every syntax error) to Lark's lexer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.errors import DSLError
from dsl.source import Span
from dsl.syntax import parse_net as net
from dsl.syntax.parse_net import parse_expression, parse_net
from dsl.syntax.printer import print_expr, print_net
from tests.ir_positions import positions
from tests.strategies import NET_ALPHABET, expressions, mutated_net_texts, spec_files

ROOT = Path(__file__).resolve().parent.parent
NET_FILES = sorted(
    [
        *ROOT.glob("examples/*.net"),
        *ROOT.glob("tests/specs/*.net"),
        *ROOT.glob("tests/golden/diagnostics/*.net"),
    ]
)

# Texts that Lark's lexer and the indenter read in their own way: the fast lexer must leave
# them (the parse then goes the slow way) or read them the same.
UNUSUAL = [
    "net A:\n\tinput x\n\treturn x\n",  # tabs
    "net A:\n  \tinput x\n  \treturn x\n",  # tabs and spaces
    "net A:\n    input x\n  return x\n",  # a dedent to no enclosing level
    "net A:\n    input x\n        return x\n",  # an unexpected indent
    "net A:\n    input x\n    return x  # done",  # a comment ending the text
    "net A:\n    input x\n    y = f(x,\n  1)\n    return \\\n  y\n",  # brackets and `\` join lines
    "net A:\r\n    input x\r\n    return x\r\n",
    "net A:\n    input x\n    return x $\n",
    "net A:\n    input x\n    for i inx:\n        pass\n    return x\n",
    "net A:\n    input = 1\n    net = input\n    return net\n",  # keywords where a name is expected
    "from a import b\nnet A:\n    import x\n",
    "net A(x==1):\n    return x\n",
    "net A:\n    return x ** -2 // 3 <= 4 != 5\n",
    "net A:\n    return .5 + 5. + 1_000 + 1e-3 + x.y\n",
    "net A:\n    return 'a\\'b' + \"c\\\"d\"\n",
    "net A:\n    return f(a=1, a=2)\n",  # an error found while reading, reported after parsing
    "\n\n# only a comment\n",
    "",
    "net A:\n    return (((((((((((((((x)))))))))))))))\n",
]


def _outcome(read: Any, *args: Any) -> Any:
    try:
        return positions(read(*args))
    except DSLError as exc:
        return type(exc).__name__, exc.render()


def _both_ways(read: Any, *args: Any) -> tuple[Any, Any, bool]:
    """What `read` gives; what it gives with Lark's lexer only; whether `_lex`'s tokens
    took the parse to its end (else Lark's lexer read the text again)."""
    runs: list[bool] = []
    run = net._run

    def spying(parser: Any, text: str, builder: Any, fast: bool) -> Any:
        runs.append(fast)
        return run(parser, text, builder, fast)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(net, "_run", spying)
        fast = _outcome(read, *args)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(net, "_lex", _refuse)
        slow = _outcome(read, *args)
    return fast, slow, bool(runs) and all(runs)


def _refuse(parser: Any, text: str) -> list:
    raise net._Unusual


@pytest.mark.parametrize("path", NET_FILES, ids=lambda p: p.name)
def test_every_file_reads_the_same_with_either_lexer(path: Path) -> None:
    fast, slow, _ = _both_ways(parse_net, path.read_text(), path.name)
    assert fast == slow


@pytest.mark.parametrize("path", sorted(ROOT.glob("examples/*.net")), ids=lambda p: p.name)
def test_examples_are_read_by_the_fast_lexer(path: Path) -> None:
    fast, slow, read_fast = _both_ways(parse_net, path.read_text(), path.name)
    assert read_fast and fast[0] == "SpecFile" and fast == slow


@pytest.mark.parametrize("text", UNUSUAL)
def test_unusual_texts_read_the_same_with_either_lexer(text: str) -> None:
    fast, slow, _ = _both_ways(parse_net, text, "unusual.net")
    assert fast == slow


def test_fast_lexer_leaves_what_it_does_not_read_to_lark() -> None:
    parser = net._parser()
    for text in ("net A:\n\tinput x\n", "net A:\n    return x $\n", "net A:\n    return x  # c"):
        with pytest.raises(net._Unusual):
            net._lex(parser, text)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None)
@given(mutated_net_texts())
def test_mutated_files_read_the_same_with_either_lexer(case: tuple[str, str]) -> None:
    name, text = case
    fast, slow, _ = _both_ways(parse_net, text, name)
    assert fast == slow


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(NET_ALPHABET + list("abcNBS0123456789")), max_size=80))
def test_token_soup_reads_the_same_with_either_lexer(pieces: list[str]) -> None:
    fast, slow, _ = _both_ways(parse_net, "".join(pieces), "soup.net")
    assert fast == slow


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(spec_files)
def test_printed_specs_are_read_by_the_fast_lexer(spec: Any) -> None:
    fast, slow, read_fast = _both_ways(parse_net, print_net(spec), "printed.net")
    assert read_fast and fast == slow


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(expressions, st.integers(1, 30), st.integers(1, 30))
def test_expressions_read_the_same_with_either_lexer(expr: Any, line: int, col: int) -> None:
    where = Span(file="in.yaml", line=line, col=col, end_line=line, end_col=col + 1)
    fast, slow, read_fast = _both_ways(parse_expression, print_expr(expr), where)
    assert read_fast and fast == slow
