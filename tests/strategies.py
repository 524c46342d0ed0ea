"""Hypothesis strategies for random valid IR: every expression and statement kind, nested.

"Valid" means what the `.net` parser can produce: containers only as statement values,
slices only inside brackets, names that are not keywords.
"""

from __future__ import annotations

import functools
from pathlib import Path

from hypothesis import strategies as st

from dsl import ir
from dsl.source import Span
from dsl.syntax.printer import KEYWORDS

MAX_EXPR_LEAVES = 8

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
    lambda s: s not in KEYWORDS and s != "__span__"
)
callee_names = st.from_regex(r"[A-Z][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
    lambda s: s not in KEYWORDS
)
# `down{i + 1}`: a name that a build-time `for` fills in.
templated_names = st.builds(
    lambda base, part: f"{base}{{{part}}}",
    identifiers,
    st.sampled_from(["i", "i + 1", "2 * j", "k[0]"]),
)
names = st.one_of(identifiers, identifiers, templated_names)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
comment_texts = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20)

constants = st.builds(
    ir.Const,
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**12), max_value=10**12),
        st.floats(allow_nan=False, allow_infinity=False),
        texts,
    ),
)
name_exprs = st.builds(ir.Name, id=names)
atoms = st.one_of(constants, name_exprs)


def _items(children: st.SearchStrategy) -> st.SearchStrategy:
    """Arguments and list or tuple items, where `*xs` may stand."""
    return st.lists(children | st.builds(ir.Starred, value=children), max_size=3)


# A loop's target: a name, or a (nested) list of targets.
targets = st.recursive(
    identifiers, lambda inner: st.lists(inner, min_size=1, max_size=3), max_leaves=4
)


def _calls(children: st.SearchStrategy) -> st.SearchStrategy:
    funcs = st.one_of(
        children,
        st.builds(ir.Name, id=callee_names),
        st.builds(ir.Attr, value=st.builds(ir.Name, id=identifiers), attr=identifiers),
    )
    return st.builds(
        ir.Call,
        func=funcs,
        args=_items(children),
        kwargs=st.dictionaries(identifiers, children, max_size=3),
        spread=st.lists(children, max_size=2),
    )


def _comprehensions(children: st.SearchStrategy) -> st.SearchStrategy:
    clause = st.builds(ir.CompFor, for_=targets, in_=children, if_=st.lists(children, max_size=2))
    return st.builds(
        ir.Comprehension,
        element=children,
        key=st.none() | children,
        clauses=st.lists(clause, min_size=1, max_size=2),
    )


def _slices(children: st.SearchStrategy) -> st.SearchStrategy:
    part = st.none() | children
    return st.builds(ir.Slice, start=part, stop=part, step=part)


def _indexes(children: st.SearchStrategy) -> st.SearchStrategy:
    subscript = children | _slices(children)
    index = st.one_of(subscript, st.builds(ir.TupleExpr, items=st.lists(subscript, max_size=3)))
    return st.builds(ir.Index, value=children, index=index)


def _compound(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.builds(ir.Attr, value=children, attr=identifiers),
        _indexes(children),
        _calls(children),
        st.builds(ir.BinOp, op=st.sampled_from(ir.BINARY_OPS), left=children, right=children),
        st.builds(ir.UnaryOp, op=st.sampled_from(ir.UNARY_OPS), operand=children),
        st.builds(ir.IfExp, cond=children, then=children, orelse=children),
        st.builds(ir.ListExpr, items=_items(children)),
        st.builds(ir.TupleExpr, items=_items(children)),
        _comprehensions(children),
        st.lists(st.tuples(children, children), max_size=3).map(
            lambda pairs: ir.DictExpr(keys=[k for k, _ in pairs], values=[v for _, v in pairs])
        ),
    )


expressions = st.recursive(atoms, _compound, max_leaves=MAX_EXPR_LEAVES)
small_expressions = st.recursive(atoms, _compound, max_leaves=3)
dims = st.lists(st.one_of(st.builds(ir.Name, id=identifiers), small_expressions), max_size=4)
dtypes = st.none() | st.sampled_from(["long", "float16", "bool"])
options = st.dictionaries(identifiers, small_expressions, max_size=2)
container_options = st.dictionaries(
    identifiers.filter(lambda s: s != "body"), small_expressions, max_size=2
)
comments = st.lists(comment_texts, max_size=2).map(tuple)
aug_ops = st.sampled_from(["+", "-", "*", "/", "//", "%", "@", "**", "|", "&"])


def _with_comments(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Attach comments to a statement's span (they must print, but never affect equality)."""
    return st.tuples(strategy, comments).map(
        lambda pair: pair[0].replace(span=Span(comments=pair[1]))
    )


def _containers(body: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(
        ir.Container, kind=st.sampled_from(ir.CONTAINER_KINDS), options=container_options, body=body
    )


@st.composite
def _inputs(draw: st.DrawFn) -> ir.Input:
    shape = draw(st.none() | dims)
    return ir.Input(
        input=draw(identifiers), shape=shape, dtype=None if shape is None else draw(dtypes)
    )


def _tensor_decls() -> st.SearchStrategy:
    fields = {
        "shape": dims,
        "dtype": dtypes,
        "init": st.none() | small_expressions,
        "options": options,
    }
    return st.one_of(
        st.builds(ir.ParamDecl, param=identifiers, **fields),
        st.builds(ir.BufferDecl, buffer=identifiers, **fields),
    )


init_rules = st.builds(
    ir.InitRule,
    match=st.one_of(
        st.none(),
        st.sampled_from(["Conv2d.weight", "bn.bias", "layer*.bn2.weight", "true", "a b"]),
        texts,
    ),
    init=small_expressions,
)


def _simple_statements() -> st.SearchStrategy:
    let_targets = st.lists(names, min_size=1, max_size=3)
    return st.one_of(
        _inputs(),
        st.builds(ir.Let, let=let_targets, value=expressions, define=st.none() | small_expressions),
        # `x += y`
        st.builds(ir.Let, let=names.map(lambda n: [n]), value=expressions, op=aug_ops),
        st.builds(ir.Layer, layer=expressions),
        st.builds(ir.Return, return_=expressions, define=st.none() | small_expressions),
        _tensor_decls(),
        st.builds(ir.InitBlock, init=st.lists(init_rules, min_size=1, max_size=3)),
    )


def _nested_statements(body: st.SearchStrategy) -> st.SearchStrategy:
    targets = st.lists(names, min_size=1, max_size=2)
    containers = _containers(body)
    return st.one_of(
        st.builds(ir.Let, let=targets, value=containers),
        st.builds(ir.Let, let=targets, value=small_expressions, define=containers),
        st.builds(ir.Layer, layer=containers),
        st.builds(ir.Return, return_=small_expressions, define=containers),
        st.builds(ir.If, if_=small_expressions, then=body, else_=body),
        # An elif chain: `else_` holding exactly one If.
        st.builds(
            ir.If,
            if_=small_expressions,
            then=body,
            else_=st.builds(ir.If, if_=small_expressions, then=body, else_=body).map(lambda s: [s]),
        ),
        st.builds(ir.For, for_=targets, in_=small_expressions, body=body),
        st.builds(ir.Forward, forward=body),  # a container block's own, after its children
    )


@functools.cache
def statement_lists(depth: int = 2) -> st.SearchStrategy:
    simple = _with_comments(_simple_statements())
    if depth == 0:
        return st.lists(simple, max_size=3)
    nested = _with_comments(_nested_statements(statement_lists(depth - 1)))
    return st.lists(st.one_of(simple, nested), max_size=3)


def _params() -> st.SearchStrategy:
    param = st.builds(
        ir.DefParam, name=identifiers | st.just("name"), default=st.none() | small_expressions
    )
    return st.lists(param, max_size=3, unique_by=lambda p: p.name)


def _definitions() -> st.SearchStrategy:
    doc = st.none() | st.lists(comment_texts, min_size=1, max_size=2).map("\n".join)
    plain = {
        "params": _params(),
        "body": st.one_of(statement_lists(), _containers(statement_lists(1))),
        "doc": doc,
    }
    # A derived net: `net X(p) = Base(args)`, with or without a body of changes.
    callee = st.one_of(
        st.builds(ir.Name, id=identifiers),
        st.builds(ir.Attr, value=st.builds(ir.Name, id=identifiers), attr=identifiers),
    )
    base = st.builds(ir.Call, func=callee, args=st.lists(small_expressions, max_size=2))
    derived = {"params": _params(), "base": base, "body": statement_lists(), "doc": doc}
    function = {"params": _params(), "body": statement_lists(), "doc": doc}
    definition = st.one_of(
        st.builds(ir.NetDef, net=identifiers, **plain),
        st.builds(ir.BlockDef, block=identifiers, **plain),
        st.builds(ir.NetDef, net=identifiers, **derived),
        st.builds(ir.FuncDef, def_=identifiers, **function),
    )
    return _with_comments(definition)


imports = st.builds(
    ir.Import,
    from_=st.one_of(
        st.sampled_from(["unet", "blocks.common", "./parts.net", "net.x", "a b"]), texts
    ),
    import_=st.lists(identifiers, min_size=1, max_size=3),
)

spec_files = st.builds(
    ir.SpecFile, imports=st.lists(imports, max_size=2), defs=st.lists(_definitions(), max_size=3)
)


# ----------------------------------------------------------------------- mutated `.net` texts

EXAMPLES = Path(__file__).parent.parent / "examples"
SEED_FILES = sorted(p for p in EXAMPLES.glob("*.net") if p.stat().st_size < 4000)
NET_ALPHABET = [
    *":=()[]{},.+-*/@#\"'\n\t ",
    "    ",
    "if ",
    "for ",
    "net ",
    "input ",
    "return ",
    "Sequential",
    "1",
    "x",
    "${",
    "- ",
]


@st.composite
def mutated_net_texts(draw: st.DrawFn) -> tuple[str, str]:
    """An example `.net` file (its name, its text) with a few characters or lines changed."""
    path = draw(st.sampled_from(SEED_FILES))
    text = path.read_text()
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(0, len(text) - 1)))
        action = draw(
            st.sampled_from(["delete", "insert", "replace", "duplicate_line", "drop_line"])
        )
        if action == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 8)) :]
        elif action == "insert":
            text = text[:position] + draw(st.sampled_from(NET_ALPHABET)) + text[position:]
        elif action == "replace":
            text = text[:position] + draw(st.sampled_from(NET_ALPHABET)) + text[position + 1 :]
        else:
            lines = text.split("\n")
            index = draw(st.integers(0, len(lines) - 1))
            if action == "duplicate_line":
                lines.insert(index, lines[index])
            else:
                del lines[index]
            text = "\n".join(lines)
    return path.name, text
