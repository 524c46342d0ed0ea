"""Properties of random valid specs (tests/spec_gen.py), in both formats.

For every generated net: it validates and builds; a real forward gives the shape the shape
pass predicted, for several batch sizes; the parameters are exactly the ones the generator
declared, each once, with the analytic count; the state_dict round-trips through
`torch.save`/`torch.load(weights_only=True)`; printing and parsing gives the same IR; and
the YAML twin builds the same model; and the ejected PyTorch source (`dsl export --format
python`) builds the same model without netdsl.
"""

from __future__ import annotations

import ast
import io

import torch
from hypothesis import given
from hypothesis import strategies as st

import dsl
from dsl.elaborate import limits
from dsl.syntax import printer, yaml_printer
from dsl.syntax.parse_net import parse_net
from dsl.tools.export import eject
from tests.spec_gen import GeneratedSpec, specs

BATCHES = (2, 3, 5)  # BatchNorm in training mode needs more than one value per channel


def _outputs(value: object) -> list[torch.Tensor]:
    return list(value) if isinstance(value, tuple | list) else [value]


@given(specs, st.sampled_from(BATCHES))
def test_validates_builds_and_runs_with_predicted_shapes(gen: GeneratedSpec, batch: int) -> None:
    resolved = dsl.validate(gen.text, sizes={"B": batch})
    predicted = [tuple(m.shape) for m in _outputs(resolved.output)]
    assert predicted == [(batch, *s) for s in gen.outputs], gen.text
    model = dsl.build_model(gen.text, seed=0, sizes={"B": batch}).eval()
    for b in sorted({batch, *BATCHES}):
        expected = [tuple(m.shape) for m in _outputs(dsl.validate(gen.text, sizes={"B": b}).output)]
        with torch.no_grad():
            out = _outputs(model(torch.randn(gen.input_size(b))))
        assert [tuple(o.shape) for o in out] == expected, gen.text


@given(specs)
def test_parameters_appear_once_with_the_analytic_count(gen: GeneratedSpec) -> None:
    model = dsl.build_model(gen.text, seed=0)
    named = list(model.named_parameters(remove_duplicate=False))
    names = [n for n, _ in named]
    assert len(names) == len(set(names)), gen.text
    assert len({id(p) for _, p in named}) == len(named), gen.text
    assert {n: p.numel() for n, p in named} == gen.params, gen.text
    assert sum(p.numel() for p in model.parameters()) == gen.n_params
    # The budget check counts the resolved tree without building it: the same number.
    assert limits.count(dsl.validate(gen.text))[0] == gen.n_params
    assert limits.count(dsl.validate(gen.text))[1] == sum(b.numel() for b in model.buffers())


@given(specs)
def test_state_dict_round_trips(gen: GeneratedSpec) -> None:
    model = dsl.build_model(gen.text, seed=1)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    other = dsl.build_model(gen.text, seed=2)
    other.load_state_dict(loaded, strict=True)
    ours, theirs = model.state_dict(), other.state_dict()
    assert list(ours) == list(theirs)
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


@given(specs)
def test_print_parse_round_trip(gen: GeneratedSpec) -> None:
    from dsl.syntax.parse_yaml import parse_yaml

    spec = parse_net(gen.text)
    text = printer.print_net(spec)
    assert parse_net(text) == spec
    assert printer.print_net(parse_net(text)) == text
    assert parse_yaml(yaml_printer.print_yaml(spec)) == spec


@given(specs)
def test_yaml_twin_builds_the_same_model(gen: GeneratedSpec) -> None:
    yaml_text = yaml_printer.print_yaml(parse_net(gen.text))
    resolved = dsl.validate(yaml_text)
    assert [tuple(m.shape)[1:] for m in _outputs(resolved.output)] == gen.outputs
    a = dsl.build_model(gen.text, seed=3).eval()
    b = dsl.build_model(yaml_text, seed=3).eval()
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.randn(gen.input_size(2))
    with torch.no_grad():
        for oa, ob in zip(_outputs(a(x.clone())), _outputs(b(x.clone()))):
            assert torch.equal(oa, ob)


def _imported_modules(source: str) -> set[str]:
    """The top-level package of every import statement in `source`, wherever it appears."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add((node.module or "").split(".")[0] if node.level == 0 else ".")
    return found


@given(specs, st.sampled_from(BATCHES))
def test_ejected_python_builds_the_same_model(gen: GeneratedSpec, batch: int) -> None:
    resolved = dsl.validate(gen.text)
    source = eject(resolved)
    # torch only; `collections` (stdlib) supplies OrderedDict for a Sequential with named children.
    assert _imported_modules(source) <= {"torch", "collections"}, source
    assert "dsl" not in _imported_modules(source)
    namespace: dict = {"__name__": "ejected"}
    # A fresh namespace: the file gets only what it imports itself.
    exec(compile(source, "<ejected>", "exec"), namespace)
    built = dsl.build_model(gen.text, seed=0).eval()
    ejected = namespace[resolved.name]().eval()
    ours, theirs = built.state_dict(), ejected.state_dict()
    assert list(theirs) == list(ours), source
    shapes = [tuple(v.shape) for v in ours.values()]
    assert [tuple(v.shape) for v in theirs.values()] == shapes, source
    ejected.load_state_dict(ours, strict=True)
    x = torch.randn(gen.input_size(batch))
    with torch.no_grad():
        expected, actual = _outputs(built(x.clone())), _outputs(ejected(x.clone()))
    assert len(actual) == len(expected), source
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e)
