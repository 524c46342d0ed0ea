"""The YAML form: the same IR as `.net`, and every mistake a located DSLError."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dsl import ir
from dsl.errors import DSLError, DSLSyntaxError, LimitError, SchemaError, YAMLFormatError
from dsl.syntax.parse_net import parse_net
from dsl.syntax.parse_yaml import parse_yaml

UNET_NET = """\
block DoubleConv(out, mid=none):
    double_conv = Sequential:
        Conv2d(mid if mid != none else out, kernel_size=3, padding=1, bias=false)
        BatchNorm2d()
        ReLU(inplace=true)

block Up(out, bilinear=true):
    input x1, x2
    if bilinear:
        up = Upsample(scale_factor=2, mode="bilinear", align_corners=true)
    else:
        up = ConvTranspose2d(x1.shape[1] // 2, kernel_size=2, stride=2)
    conv = DoubleConv(out)
    y = pad_to(up(x1), x2)
    return conv(cat([x2, y], dim=1))

net UNet(n_channels=3, n_classes=2, bilinear=true):
    input x: [B, n_channels, H, W]
    factor = 2 if bilinear else 1
    x1 = inc(x): DoubleConv(64)
    for i in range(1, 3):
        down{i} = MaxPool2d(2)
    x2 = Sequential:
        MaxPool2d(2)
        DoubleConv(128 // factor)
    heads = ModuleList(run="parallel", merge="cat"):
        Identity()
    up1 = Up(64, bilinear)
    init:
        Conv2d.weight: kaiming_normal(mode="fan_out", nonlinearity="relu")
    return outc(up1(x2(x1), x1)): Conv2d(n_classes, kernel_size=1)
"""

UNET_YAML = """\
defs:
  - block: DoubleConv
    params: [out, {mid: "${none}"}]
    body:
      - let: double_conv
        value:
          Sequential:
            - layer: {Conv2d: {args: ["${mid if mid != none else out}"], kernel_size: 3, padding: 1, bias: false}}
            - layer: {BatchNorm2d: {}}
            - layer: {ReLU: {inplace: true}}

  - block: Up
    params: [out, {bilinear: true}]
    body:
      - input: x1
      - input: x2
      - if: ${bilinear}
        then:
          - let: up
            value: {Upsample: {scale_factor: 2, mode: bilinear, align_corners: true}}
        else:
          - let: up
            value: {ConvTranspose2d: {args: ["${x1.shape[1] // 2}"], kernel_size: 2, stride: 2}}
      - let: conv
        value: {DoubleConv: ["${out}"]}
      - let: y
        value: ${pad_to(up(x1), x2)}
      - return: ${conv(cat([x2, y], dim=1))}

  - net: UNet
    params: [{n_channels: 3}, {n_classes: 2}, {bilinear: true}]
    body:
      - input: x
        shape: [B, n_channels, H, W]
      - let: factor
        value: ${2 if bilinear else 1}
      - let: x1
        value: ${inc(x)}
        define: {Conv2d: null}
      - for: i
        in: ${range(1, 3)}
        body:
          - let: down{i}
            value: {MaxPool2d: [2]}
      - let: x2
        value:
          Sequential:
            - layer: {MaxPool2d: [2]}
            - layer: {DoubleConv: ["${128 // factor}"]}
      - let: heads
        value:
          ModuleList:
            run: parallel
            merge: cat
            body:
              - layer: {Identity: null}
      - let: up1
        value: {Up: ["${64}", "${bilinear}"]}
      - init:
          - match: Conv2d.weight
            init: ${kaiming_normal(mode="fan_out", nonlinearity="relu")}
      - return: ${outc(up1(x2(x1), x1))}
        define: {Conv2d: {args: ["${n_classes}"], kernel_size: 1}}
"""


def test_unet_in_both_formats_gives_the_same_ir() -> None:
    net = parse_net(UNET_NET)
    yaml_spec = parse_yaml(
        UNET_YAML.replace("define: {Conv2d: null}", "define: {DoubleConv: [64]}")
    )
    assert yaml_spec == net


def test_a_difference_is_seen() -> None:
    assert parse_yaml(UNET_YAML) != parse_net(UNET_NET)


def _position(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """1-based line and column of `needle` (plus `offset` characters) in `text`."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def test_nodes_carry_yaml_positions() -> None:
    spec = parse_yaml(UNET_YAML, "unet.yaml")
    let_y = spec.defs[1].body[4]
    assert let_y.span.file == "unet.yaml"
    assert (let_y.span.line, let_y.span.col) == _position(UNET_YAML, "let: y")
    # `${pad_to(up(x1), x2)}`: the expression's position is inside the `${...}`.
    assert (let_y.value.span.line, let_y.value.span.col) == _position(UNET_YAML, "pad_to(")
    assert (let_y.value.args[0].span.line, let_y.value.args[0].span.col) == _position(
        UNET_YAML, "up(x1)"
    )
    shape = spec.defs[2].body[0].shape
    assert shape[0] == ir.Name(id="B")
    assert (shape[0].span.line, shape[0].span.col) == _position(UNET_YAML, "[B, ", 1)
    call = spec.defs[0].body[0].value.body[0].layer
    assert (call.span.line, call.span.col) == _position(UNET_YAML, "{Conv2d: {args")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", ir.Const(value=3)),
        ("relu", ir.Const(value="relu")),
        ("${relu}", ir.Name(id="relu")),
        ('[1, "${a}"]', ir.ListExpr(items=[ir.Const(value=1), ir.Name(id="a")])),
        ("{ReLU: null}", ir.Call(func=ir.Name(id="ReLU"))),
        ("{ReLU: {}}", ir.Call(func=ir.Name(id="ReLU"))),
        ("{Linear: [10]}", ir.Call(func=ir.Name(id="Linear"), args=[ir.Const(value=10)])),
        (
            "{Linear: {out_features: 10}}",
            ir.Call(func=ir.Name(id="Linear"), kwargs={"out_features": ir.Const(value=10)}),
        ),
        (
            "{torchvision.ops.SqueezeExcitation: {args: [3], squeeze_channels: 4}}",
            ir.Call(
                func=ir.Attr(
                    value=ir.Attr(value=ir.Name(id="torchvision"), attr="ops"),
                    attr="SqueezeExcitation",
                ),
                args=[ir.Const(value=3)],
                kwargs={"squeeze_channels": ir.Const(value=4)},
            ),
        ),
        ('{"down{i}": [x]}', ir.Call(func=ir.Name(id="down{i}"), args=[ir.Const(value="x")])),
        (
            "{Sequential: [{layer: 1}]}",
            ir.Container(kind="Sequential", body=[ir.Layer(layer=ir.Const(value=1))]),
        ),
        (
            "{ModuleDict: {run: parallel, body: []}}",
            ir.Container(kind="ModuleDict", options={"run": ir.Const(value="parallel")}),
        ),
    ],
)
def test_expression_spellings(value: str, expected: ir.ExprNode) -> None:
    spec = parse_yaml(f"defs:\n  - net: X\n    body:\n      - layer: {value}\n")
    assert spec.defs[0].body[0].layer == expected


def _error(text: str) -> DSLError:
    with pytest.raises(DSLError) as info:
        parse_yaml(text, "spec.yaml")
    return info.value


def test_tab_indentation() -> None:
    error = _error("defs:\n  - net: X\n    body:\n\t- layer: 1\n")
    assert isinstance(error, YAMLFormatError)
    assert (error.span.file, error.span.line) == ("spec.yaml", 4)
    assert error.hint is not None and "spaces" in error.hint


def test_python_tags_are_refused() -> None:
    error = _error("defs:\n  - !!python/object/apply:os.system ['echo hi']\n")
    assert isinstance(error, YAMLFormatError)
    assert error.span.line == 2


def test_unknown_tags_are_refused() -> None:
    error = _error("defs:\n  - net: X\n    doc: !secret abc\n")
    assert isinstance(error, YAMLFormatError)
    assert error.span.line == 3


BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi")
)


def test_billion_laughs_fails_fast() -> None:
    start = time.perf_counter()
    error = _error(BILLION_LAUGHS)
    assert isinstance(error, LimitError)
    assert "aliases" in error.message
    assert time.perf_counter() - start < 2


def test_too_many_aliases() -> None:
    error = _error("a: &a 1\nb: [" + ", ".join(["*a"] * 10_001) + "]\n")
    assert isinstance(error, LimitError)


def test_recursive_alias() -> None:
    error = _error("defs: &d [*d]\n")
    assert isinstance(error, LimitError)
    assert error.span.line == 1


def test_deep_nesting_is_a_limit_not_a_crash() -> None:
    depth = 100_000
    error = _error("a: " + "[" * depth + "]" * depth + "\n")
    assert isinstance(error, LimitError)


def test_unknown_key_with_hint() -> None:
    error = _error("defs:\n  - net: X\n    body:\n      - let: y\n        vlaue: 3\n")
    assert isinstance(error, SchemaError)
    assert (error.span.line, error.span.col) == (5, 9)
    assert "vlaue" in error.message
    assert error.hint == "did you mean 'value'?"


def test_unknown_statement_kind_with_hint() -> None:
    error = _error("defs:\n  - net: X\n    body:\n      - lyer: {ReLU: null}\n")
    assert isinstance(error, SchemaError)
    assert error.span.line == 4
    assert error.hint == "did you mean 'layer'?"


def test_unknown_top_level_key() -> None:
    error = _error("def:\n  - net: X\n")
    assert isinstance(error, SchemaError)
    assert error.hint == "did you mean 'defs'?"


def test_wrong_type() -> None:
    error = _error("defs:\n  - net: X\n    body:\n      - input: [1, 2]\n")
    assert isinstance(error, SchemaError)
    assert (error.span.line, error.span.col) == (4, 16)
    assert "'input'" in error.message


def test_missing_key() -> None:
    error = _error("defs:\n  - net: X\n    body:\n      - let: y\n")
    assert isinstance(error, SchemaError)
    assert error.span.line == 4
    assert "'value'" in error.message


def test_error_inside_a_container_body_is_located() -> None:
    error = _error(
        "defs:\n  - net: X\n    body:\n      - layer:\n          Sequential:\n            - let: a\n              valu: 1\n"
    )
    assert isinstance(error, SchemaError)
    assert error.span.line == 7
    assert error.hint == "did you mean 'value'?"


def test_bad_expression_is_located_in_the_yaml_file() -> None:
    error = _error("defs:\n  - net: X\n    body:\n      - layer: ${a + * b}\n")
    assert isinstance(error, DSLSyntaxError)
    assert (error.span.file, error.span.line, error.span.col) == ("spec.yaml", 4, 22)


@pytest.mark.parametrize(
    "text",
    [
        "- a\n- b\n",
        "",
        "defs:\n  - net: X\n    net: Y\n",
        "defs:\n  - net: X\n    body:\n      - layer: {Conv2d: 3}\n",
        "defs:\n  - net: X\n    body:\n      - layer: {Conv2d: [1], ReLU: []}\n",
        "defs:\n  - net: X\n    body:\n      - layer: {'a b': []}\n",
        "defs:\n  - net: X\n    body:\n      - layer: {Conv2d: {1: 2}}\n",
        "defs:\n  - net: X\n    body:\n      - if: true\n        then: 3\n",
        "defs:\n  - net: X\n    params: [{a: 1, b: 2}]\n",
        "defs:\n  - net: X\n    body: {Conv2d: [1]}\n",
        "a: 1\n---\nb: 2\n",
        "defs: [\n",
        "defs:\n  - net: X\n    doc: !!timestamp 2001-02-30\n",
    ],
)
def test_mistakes_are_dsl_errors_with_a_position(text: str) -> None:
    error = _error(text)
    assert isinstance(error, SchemaError | YAMLFormatError | LimitError)
    assert error.span.file == "spec.yaml"
    assert error.span.line >= 1


def test_dates_stay_strings() -> None:
    spec = parse_yaml("defs:\n  - net: X\n    doc: 2001-02-03\n")
    assert spec.defs[0].doc == "2001-02-03"


def _doc_block(text: str, language: str) -> str:
    start = text.index(f"```{language}\n") + len(language) + 4
    return text[start : text.index("```", start)]


def test_the_documented_example_is_the_same_in_both_forms() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "yaml.md").read_text()
    assert parse_yaml(_doc_block(doc, "yaml")) == parse_net(_doc_block(doc, "net"))
