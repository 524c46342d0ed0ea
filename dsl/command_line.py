"""The `dsl` command line: its sub-commands, their arguments and help, and nothing else.

`dsl.cli` runs the command a parse names; this module imports nothing heavy, so `--help`
is quick.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

SPEC_SUFFIXES = (".net", ".yaml", ".yml")
PICTURE_SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv", ".mmd", ".mermaid", ".md")
WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth")

EXAMPLES = {
    "validate": "dsl validate examples/unet.net\n  dsl validate examples/gpt.net --set n_layer=96 --set d_model=12288\n  dsl validate blocks/*.net --format json",
    "fmt": "dsl fmt examples/unet.net\n  dsl fmt --check examples/*.net",
    "blocks": "dsl blocks\n  dsl blocks Bottleneck",
    "convert": "dsl convert examples/unet.net -o unet.yaml\n  dsl convert unet.yaml -o unet.net",
    "schema": "dsl schema > netdsl.schema.json",
    "ops": "dsl ops\n  dsl ops | grep -w sin",
    "summary": "dsl summary examples/unet.net\n  dsl summary examples/unet.net --input 1x3x256x256 --depth 1\n  dsl summary examples/gpt.net --set n_layer=96 --set d_model=12288 --set n_head=96 --set vocab=50257 --set block_size=2048 --depth 1\n  dsl summary examples/unet.net --format json\n  dsl summary examples/resnet18.net --depth 1 --init\n  dsl summary examples/resnet50.net --input 1x3x224x224 --columns output,params,flops",
    "graph": "dsl graph examples/unet.net -o unet.svg\n  dsl graph examples/unet.net -o unet.dot --depth 1\n  dsl graph examples/gpt.net -o gpt.mmd --depth 3",
    "diff": "dsl diff examples/resnet18.net examples/resnet50.net\n  dsl diff examples/unet.net examples/unet.yaml --format json",
    "resolve": "dsl resolve examples/unet.net\n  dsl resolve examples/unet.net --set n_classes=5 --no-defaults\n  dsl resolve examples/gpt.net --format json",
    "build": "dsl build examples/unet.net -o unet.safetensors --seed 0\n  dsl build examples/gpt.net -o gpt.pt --set n_layer=4\n  python -c 'import dsl; m = dsl.load_model(\"unet.safetensors\")'",
    "lsp": "dsl lsp    (started by an editor; see docs/editors.md)",
    "import": "dsl import torchvision.models:resnet18 -o resnet18.net\n  dsl import torchvision.models:resnet18 --args '{\"num_classes\": 10}' -o resnet18.yaml --format yaml\n  dsl import mypackage.models:Net --input 1x3x32x32 -o net.net",
    "export": "dsl export examples/unet.net --format python -o unet.py\n  dsl export examples/unet.net --format onnx -o unet.onnx\n  dsl export examples/gpt.net --format exported-program -o gpt.pt2\n  dsl export examples/unet.net --format torchscript -o unet.ts\n  dsl export examples/gpt.net --format onnx -o gpt.onnx --dynamic B,T:1..64\n  dsl export examples/resnet18.net --format onnx -o resnet18.onnx --input 1x3x224x224",
}


def parser() -> argparse.ArgumentParser:
    """The parser of `dsl`'s arguments; a parse's `command` names the sub-command."""
    top = argparse.ArgumentParser(
        prog="dsl",
        description="netdsl: declarative PyTorch networks. Exit codes: 0 ok, 1 errors in a spec, 2 bad command line.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    _language_commands(sub)
    _measuring_commands(sub)
    _building_commands(sub)
    return top


def _version() -> str:
    try:
        return metadata.version("netdsl")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


# ----------------------------------------------------------------------------- argument types
# argparse turns an ArgumentTypeError into "dsl CMD: error: argument NAME: message", exit 2.


def spec_path(text: str) -> Path:
    """An existing spec file."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a directory; give spec files, e.g. {path / '*.net'}"
        )
    return path


def output_path(*suffixes: str) -> Callable[[str], Path]:
    """A file to write: one of `suffixes` (any, if none), in a folder that exists."""

    def check(text: str) -> Path:
        path = Path(text)
        if suffixes and path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"cannot write '{path.name}': give a name ending in {', '.join(suffixes)}"
            )
        if not path.parent.is_dir():
            raise argparse.ArgumentTypeError(f"cannot write {text}: no folder {path.parent}")
        return path

    return check


def set_item(text: str) -> str:
    """`KEY=VALUE` for --set (the value is read by `dsl.tools.overrides`)."""
    key, sep, _ = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"takes KEY=VALUE, not '{text}'")
    return text


def shape(text: str) -> tuple[int, ...]:
    """`1x3x256x256` (or `1,3,256,256`) -> (1, 3, 256, 256)."""
    parts = [p for p in text.replace(",", "x").replace("X", "x").split("x") if p.strip()]
    if not parts or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(
            f"takes non-negative sizes such as 1x3x256x256, not '{text}'"
        )
    return tuple(int(p) for p in parts)


# ----------------------------------------------------------------------------- commands


def _command(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog="examples:\n  " + EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _set_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument(
        "--set", action="append", default=[], type=set_item, metavar="K=V", help=help_text
    )


def _spec_options(p: argparse.ArgumentParser) -> None:
    _set_option(p, "override a net parameter (repeatable)")
    p.add_argument("--net", help="which net of the file (default: the last one)")


def _input_option(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--input",
        type=shape,
        metavar="SHAPE",
        help=f"the first input's shape, e.g. 1x3x224x224: sets its symbolic sizes {default}",
    )


def _language_commands(sub: Any) -> None:
    """validate, fmt, convert, schema, blocks: the commands that read and write specs."""
    validate = _command(
        sub,
        "validate",
        "check specs: syntax, names, arguments and shapes, without allocating weights",
    )
    validate.add_argument("files", nargs="+", type=spec_path)
    _set_option(validate, "override a net parameter (repeatable)")
    validate.add_argument("--net", help="which net to check (default: every net in the file)")
    _input_option(validate, "(default: sizes that fit the network)")
    validate.add_argument("--format", choices=("human", "json"), default="human")

    _command(sub, "ops", "list the torch functions a graph body may call")

    fmt = _command(sub, "fmt", "rewrite spec files in canonical form")
    fmt.add_argument("files", nargs="+", type=spec_path)
    fmt.add_argument(
        "--check", action="store_true", help="only report files that would change (exit 1 if any)"
    )

    convert = _command(sub, "convert", "convert a spec between .net and YAML, without loss")
    convert.add_argument("file", type=spec_path)
    convert.add_argument(
        "-o",
        "--output",
        type=output_path(*SPEC_SUFFIXES),
        required=True,
        help="the output file: .net, .yaml or .yml (its suffix picks the format)",
    )

    _command(sub, "schema", "print the JSON Schema of the YAML form (for editors)")

    _command(sub, "lsp", "run the language server on stdin/stdout (for editors; needs netdsl[lsp])")

    blocks = _command(
        sub, "blocks", "list the standard library's blocks and nets, or show one's documentation"
    )
    blocks.add_argument("name", nargs="?", help="a block or net name, e.g. Bottleneck")


def _measuring_commands(sub: Any) -> None:
    """summary, graph, diff: the commands that look at a net measured on meta."""
    summary = _command(
        sub,
        "summary",
        "a table of modules: output shapes, parameters, FLOPs and spec lines, measured on the meta device",
    )
    summary.add_argument("file", type=spec_path)
    _input_option(summary, "(default: the symbolic shape the spec declares)")
    summary.add_argument(
        "--depth", type=int, default=3, help="show modules nested at most this deep (default 3)"
    )
    summary.add_argument(
        "--columns",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        metavar="LIST",
        help="the columns to show after Module, e.g. output,params,flops "
        "(of type, output, params, trainable, flops, spec; default all)",
    )
    summary.add_argument(
        "--init",
        action="store_true",
        help="add a table: for every parameter, the init rule (or default) that set it, and its spec line",
    )
    _spec_options(summary)
    summary.add_argument("--format", choices=("human", "json"), default="human")

    _graph_command(sub)

    diff = _command(
        sub, "diff", "what changed between two networks: modules, parameters, checkpoint keys"
    )
    diff.add_argument("a", type=spec_path)
    diff.add_argument("b", type=spec_path)
    _set_option(diff, "override a parameter of both nets (repeatable)")
    diff.add_argument("--format", choices=("human", "json"), default="human")


def _graph_command(sub: Any) -> None:
    graph = _command(
        sub, "graph", "draw the network: DOT or Mermaid text, or SVG/PNG/PDF through Graphviz's dot"
    )
    graph.add_argument("file", type=spec_path)
    graph.add_argument(
        "-o",
        "--output",
        type=output_path(*PICTURE_SUFFIXES),
        required=True,
        help="net.svg, net.png, net.pdf, net.dot or net.mmd (the suffix picks the format)",
    )
    graph.add_argument(
        "--depth",
        type=int,
        default=2,
        help="open blocks and Sequentials nested less deep than this (default 2; 1 shows the top level only)",
    )
    graph.add_argument(
        "--concrete",
        action="store_true",
        help="show sizes as numbers rather than symbols (B, H, W)",
    )
    _spec_options(graph)


def _building_commands(sub: Any) -> None:
    """resolve, build, export: the commands that expand, build or write out a net."""
    res = _command(
        sub,
        "resolve",
        "the fully expanded network: every module's constructor arguments and where each came from",
    )
    res.add_argument("file", type=spec_path)
    _spec_options(res)
    res.add_argument(
        "--no-defaults",
        action="store_true",
        help="leave out the arguments that keep torch's defaults",
    )
    res.add_argument("--format", choices=("human", "json"), default="human")

    build = _writing_command(
        sub,
        "build",
        "build a network and save its initialised weights with the spec (load with dsl.load_model)",
        output_path(*WEIGHTS_SUFFIXES),
        "model.safetensors or model.pt",
    )
    _seed_option(build, "the initial weights")
    _spec_options(build)
    build.add_argument(
        "--allow-download",
        action="store_true",
        help="let torchvision download the pretrained weights a spec names",
    )
    _export_command(sub)
    _import_command(sub)


def _import_command(sub: Any) -> None:
    command = _command(
        sub, "import", "write an existing PyTorch model as a spec, checked against it"
    )
    command.add_argument(
        "target", help="MODULE:CALLABLE or MODULE.CALLABLE (a class, a builder or a module)"
    )
    command.add_argument(
        "--args", type=_json_object, default={}, help="keyword arguments for the callable, as JSON"
    )
    command.add_argument(
        "-o",
        "--output",
        type=output_path(*SPEC_SUFFIXES),
        required=True,
        help="model.net or model.yaml",
    )
    command.add_argument(
        "--format", choices=("net", "yaml"), default=None, help="default: from the output's suffix"
    )
    command.add_argument(
        "--input",
        action="append",
        default=[],
        help="an example input: 2x3x224x224 or long:2x16 (repeat for several)",
    )
    command.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not build the spec and compare it with the model",
    )


def _json_object(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('a JSON object, like {"num_classes": 10}')
    return value


def _export_command(sub: Any) -> None:
    export = _writing_command(
        sub,
        "export",
        "export a network: ONNX, TorchScript, torch.export program, or standalone PyTorch source",
        output_path(),
        None,
    )
    export.add_argument(
        "--format", required=True, choices=("onnx", "torchscript", "exported-program", "python")
    )
    _seed_option(export, "the weights in the exported file")
    _spec_options(export)
    _input_option(export, "and exports a static graph of that shape (unless --dynamic is given)")
    export.add_argument(
        "--static",
        action="store_true",
        help="every size fixed: the representative ones, or --input's",
    )
    export.add_argument(
        "--dynamic",
        metavar="LIST",
        help="the symbols that stay dynamic, each with an optional range: B,T or B,H:64..512 "
        "(default: every symbol of the inputs, with the ranges the network needs)",
    )
    export.add_argument(
        "--no-check",
        action="store_true",
        help="skip running the written file at two other sizes against the eager model",
    )


def _writing_command(
    sub: Any, name: str, description: str, output_type: Any, output_help: str | None
) -> Any:
    """A command that reads one spec file and writes `-o FILE`."""
    command = _command(sub, name, description)
    command.add_argument("file", type=spec_path)
    command.add_argument("-o", "--output", type=output_type, required=True, help=output_help)
    return command


def _seed_option(command: Any, what: str) -> None:
    command.add_argument("--seed", type=int, default=0, help=f"random seed for {what} (default 0)")
