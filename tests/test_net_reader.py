"""The `.net` reader on Lark's public API: how it reads what Lark's lexer and the indenter
read in their own ways (tabs, brackets across lines, keywords used as names, CRLF), where its
spans sit, which error wins, its limits, and reading in several threads at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from dsl import ir
from dsl.errors import DSLError, IndentationError_, LimitError
from dsl.source import Span
from dsl.syntax.parse_net import parse_expression, parse_net
from dsl.syntax.printer import print_expr
from tests.ir_positions import positions
from tests.strategies import expressions

ROOT = Path(__file__).resolve().parent.parent
NET_FILES = sorted([*ROOT.glob("examples/*.net"), *ROOT.glob("blocks/*.net")])


def _error(text: str) -> DSLError:
    with pytest.raises(DSLError) as info:
        parse_net(text, "t.net")
    return info.value


@pytest.mark.parametrize(
    "text",
    [
        "net A:\n\tinput x\n\treturn x\n",  # tabs only: 8 columns a level
        "net A:\n    input x\n    return x  # done",  # a comment ends the text
        "net A:\n    input x\n    y = f(x,\n  1)\n    return \\\n  y\n",  # lines joined
        "net A:\n    input x\n    y = x.net(input=x)\n    return y\n",  # keywords as names
        "\n\n# only a comment\n",
        "",
    ],
)
def test_unusual_texts_read(text: str) -> None:
    assert isinstance(parse_net(text, "t.net"), ir.SpecFile)


def test_crlf_reads_as_lf() -> None:
    text = "net A:\n    input x\n    y = f(x,\n        1)\n    return y\n"
    lf, crlf = parse_net(text, "t.net"), parse_net(text.replace("\n", "\r\n"), "t.net")
    assert positions(lf) == positions(crlf)


@pytest.mark.parametrize(
    ("text", "kind", "where"),
    [
        ("net A:\n  \tinput x\n  \treturn x\n", IndentationError_, (2, 1)),
        ("net A:\n    input x\n  return x\n", IndentationError_, (3, 3)),
        ("net A:\n    input x\n        return x\n", IndentationError_, (3, 9)),
        ("net A:\n    input x\n    return x $\n", DSLError, (3, 14)),
        ("net A:\n    return f(a=1, a=2)\n", DSLError, (2, 19)),
    ],
)
def test_unusual_texts_fail_where_they_go_wrong(
    text: str, kind: type[DSLError], where: tuple[int, int]
) -> None:
    error = _error(text)
    assert isinstance(error, kind) and (error.span.line, error.span.col) == where


def test_a_syntax_error_wins_over_an_error_read_before_it() -> None:
    error = _error("net A:\n    y = f(a=1, a=2)\n    return y +\n")
    assert "given twice" not in error.message and error.span.line == 3


def test_spans_run_from_first_to_last_token() -> None:
    spec = parse_net("net A:\n    input x\n    return (x + 1) * f(x)[0]\n", "t.net")
    ret = spec.defs[0].body[1]
    assert isinstance(ret, ir.Return)
    assert ret.span[1:5] == (3, 5, 3, 29)
    product = ret.return_
    assert isinstance(product, ir.BinOp) and product.span[1:5] == (3, 12, 3, 29)
    assert isinstance(product.left, ir.BinOp) and product.left.span[1:5] == (3, 13, 3, 18)
    assert product.right.span[1:5] == (3, 22, 3, 29)


def test_keyword_and_import_name_spans() -> None:
    spec = parse_net(
        "from lib import Conv, Norm\nnet A:\n    input x\n    return Conv2d(8, kernel_size=3)(x)\n",
        "t.net",
    )
    assert [s[1:5] for s in spec.imports[0].name_spans] == [(1, 17, 1, 21), (1, 23, 1, 27)]
    ret = spec.defs[0].body[1]
    assert isinstance(ret, ir.Return) and isinstance(ret.return_, ir.Call)
    inner = ret.return_.func
    assert isinstance(inner, ir.Call)
    assert inner.kwarg_spans["kernel_size"][1:5] == (4, 22, 4, 33)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(expressions)
def test_an_expression_at_an_origin_has_the_spans_it_has_in_a_file(expr: Any) -> None:
    """`parse_expression(text, origin)` places spans as if the text sat at `origin`."""
    text = print_expr(expr)
    origin = Span(file="t.net", line=3, col=12, end_line=3, end_col=13)
    alone = parse_expression(text, origin)
    in_file = parse_net(f"net A:\n    input x\n    return {text}\n", "t.net").defs[0].body[1]
    assert isinstance(in_file, ir.Return)
    assert positions(alone) == positions(in_file.return_)


@pytest.mark.parametrize(
    "text",
    [
        "net A:\n    return " + "(" * 600 + "x" + ")" * 600 + "\n",
        "net A:\n    return " + " + ".join(["x"] * 600) + "\n",
        "net A:\n    return " + "-" * 600 + "x\n",
        "net A:\n" + "".join("    " * (i + 1) + "if true:\n" for i in range(300)),
    ],
)
def test_deep_nesting_is_a_located_limit_error(text: str) -> None:
    error = _error(text)
    assert isinstance(error, LimitError) and error.span.file == "t.net"


def test_reading_in_threads_gives_what_reading_in_turn_gives() -> None:
    texts = [(p.name, p.read_text()) for p in NET_FILES]
    expected = [positions(parse_net(text, name)) for name, text in texts]
    results: dict[int, list[Any]] = {}
    start = threading.Barrier(8)

    def read(worker: int) -> None:
        start.wait()
        results[worker] = [positions(parse_net(text, name)) for name, text in texts * 3]

    threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[i] == expected * 3 for i in range(8))


def test_spans_compare_as_values_and_nodes_ignore_them() -> None:
    here = Span(file="t.net", line=2, col=5, end_line=2, end_col=9)
    assert here == Span(file="t.net", line=2, col=5, end_line=2, end_col=9)
    assert hash(here) == hash(Span(file="t.net", line=2, col=5, end_line=2, end_col=9))
    assert here != here._replace(col=6) and here != here._replace(comments=("note",))
    one = parse_net("net A:\n    input x\n    return f(x, k=1)\n", "a.net")
    other = parse_net("\n\nnet A:\n  input x\n  return f(x,   k=1)\n", "b.net")
    assert one == other and one.defs[0].span != other.defs[0].span
