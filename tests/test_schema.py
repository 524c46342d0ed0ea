"""`dsl schema` describes the YAML form truly: every shipped YAML spec (examples/*.yaml and
each ```yaml spec block of the docs) validates against it with the `jsonschema` package,
and a spec the loader rejects is rejected by the schema too."""

from __future__ import annotations

import contextlib
import io
import json

import jsonschema
import pytest
import yaml

from dsl.cli import main
from tests.test_docs import ROOT, YAML_SPECS

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SHIPPED = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in EXAMPLES]
SHIPPED += YAML_SPECS


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    schema = json.loads(out.getvalue())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_every_example_is_shipped_here() -> None:
    assert {"examples/unet.yaml", "examples/mnist_mlp.yaml"} <= {w for w, _ in SHIPPED}
    assert any(w.startswith("docs/yaml.md") for w, _ in SHIPPED)


@pytest.mark.parametrize(("where", "text"), SHIPPED, ids=[w for w, _ in SHIPPED])
def test_shipped_yaml_follows_the_schema(
    validator: jsonschema.protocols.Validator, where: str, text: str
) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(yaml.safe_load(text))
    ]
    assert not errors, f"{where}:\n" + "\n".join(errors)


def test_the_schema_rejects_what_the_loader_rejects(
    validator: jsonschema.protocols.Validator,
) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "mnist_mlp.yaml").read_text(encoding="utf-8"))
    spec["defs"][0]["body"][1]["let"] = 3  # a let names values: a string or a list of them
    assert not validator.is_valid(spec)
