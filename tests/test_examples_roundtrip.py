"""Every shipped spec (examples/ and the standard library) converts .net -> YAML -> .net
without loss, prints canonically to itself, and each committed YAML twin equals its .net."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl.syntax.loader import read_file
from dsl.syntax.parse_net import parse_net
from dsl.syntax.parse_yaml import parse_yaml
from dsl.syntax.printer import print_net
from dsl.syntax.yaml_printer import print_yaml

ROOT = Path(__file__).parent.parent
SPECS = sorted([*ROOT.glob("examples/*.net"), *ROOT.glob("blocks/*.net")])
TWINS = sorted(ROOT.glob("examples/*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_net_yaml_net_is_lossless(path: Path) -> None:
    spec = read_file(path)
    through_yaml = parse_yaml(print_yaml(spec), "twin.yaml")
    assert through_yaml == spec
    assert parse_net(print_net(through_yaml), "again.net") == spec


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_canonical_print_is_stable(path: Path) -> None:
    printed = print_net(read_file(path))
    assert print_net(parse_net(printed, "printed.net")) == printed


@pytest.mark.parametrize("twin", TWINS, ids=lambda p: p.name)
def test_yaml_twin_equals_its_net_file(twin: Path) -> None:
    assert read_file(twin) == read_file(twin.with_suffix(".net"))


def test_the_design_sketch_has_twins() -> None:
    """DESIGN.md's sketch is examples/unet.net; S1, S6 and S7 ship YAML twins."""
    assert {p.name for p in TWINS} >= {"mnist_mlp.yaml", "unet.yaml", "resnet18.yaml"}
