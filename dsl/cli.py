"""The `dsl` command. Heavy imports (torch) happen inside the commands, so `--help` is quick.

Exit codes: 0 success; 1 the spec has errors (diagnostics printed); 2 the command line
itself is wrong (argparse's convention).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXAMPLES = {
    "validate": "dsl validate examples/unet.net\n  dsl validate examples/gpt.net --set n_layer=96 --set d_model=12288\n  dsl validate blocks/*.net --format json",
    "fmt": "dsl fmt examples/unet.net\n  dsl fmt --check examples/*.net",
    "convert": "dsl convert examples/unet.net -o unet.yaml\n  dsl convert unet.yaml -o unet.net",
    "schema": "dsl schema > netdsl.schema.json",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsl",
        description="netdsl: declarative PyTorch networks. Exit codes: 0 ok, 1 errors in a spec, 2 bad command line.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog="examples:\n  " + EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    validate = command("validate", "check specs: syntax, names, arguments and shapes, without allocating weights")
    validate.add_argument("files", nargs="+", type=Path)
    validate.add_argument("--set", action="append", default=[], metavar="K=V", help="override a net parameter (repeatable)")
    validate.add_argument("--net", help="which net to check (default: every net in the file)")
    validate.add_argument("--format", choices=("human", "json"), default="human")
    validate.set_defaults(run=_validate)

    fmt = command("fmt", "rewrite spec files in canonical form")
    fmt.add_argument("files", nargs="+", type=Path)
    fmt.add_argument("--check", action="store_true", help="only report files that would change (exit 1 if any)")
    fmt.set_defaults(run=_fmt)

    convert = command("convert", "convert a spec between .net and YAML, without loss")
    convert.add_argument("file", type=Path)
    convert.add_argument("-o", "--output", type=Path, required=True, help="the output file; its suffix picks the format")
    convert.set_defaults(run=_convert)

    schema = command("schema", "print the JSON Schema of the YAML form (for editors)")
    schema.set_defaults(run=_schema)
    return parser


# ----------------------------------------------------------------------------- output


def _color(stream: Any) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


def _report(errors: list[Any], fmt: str, checked: int) -> int:
    if fmt == "json":
        print(json.dumps([e.to_json() for e in errors], indent=2))
    else:
        color = _color(sys.stderr)
        for error in errors:
            print(error.render(color=color), file=sys.stderr)
            print(file=sys.stderr)
        noun = "file" if checked == 1 else "files"
        summary = f"{checked} {noun} checked: " + (f"{len(errors)} error{'s' if len(errors) != 1 else ''}" if errors else "ok")
        print(summary, file=sys.stderr if errors else sys.stdout)
    return 1 if errors else 0


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`--set k=v`: v is a literal (number, string, true/false, list); a bare word is a string."""
    from dsl.errors import ArgumentError

    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ArgumentError(f"--set takes KEY=VALUE, not '{item}'")
        out[key.strip()] = _literal(text.strip(), item)
    return out


def _literal(text: str, item: str) -> Any:
    from dsl import ir
    from dsl.errors import ArgumentError, DSLError
    from dsl.parse_net import parse_expression
    from dsl.source import Span

    try:
        node = parse_expression(text, Span(file="--set", line=1, col=1))
    except DSLError:
        return text
    if isinstance(node, ir.Const):
        return node.value
    if isinstance(node, ir.Name):
        return node.id
    if isinstance(node, ir.ListExpr | ir.TupleExpr):
        values = [_literal_node(i, item) for i in node.items]
        return values if isinstance(node, ir.ListExpr) else tuple(values)
    raise ArgumentError(f"--set {item}: the value must be a literal")


def _literal_node(node: Any, item: str) -> Any:
    from dsl import ir
    from dsl.errors import ArgumentError

    if isinstance(node, ir.Const):
        return node.value
    if isinstance(node, ir.Name):
        return node.id
    raise ArgumentError(f"--set {item}: the value must be a literal")


# ----------------------------------------------------------------------------- commands


def _validate(args: argparse.Namespace) -> int:
    from dsl.errors import DSLError

    errors: list[DSLError] = []
    try:
        overrides = parse_overrides(args.set)
    except DSLError as exc:
        return _report([exc], args.format, 0)
    for path in args.files:
        errors.extend(validate_file(path, overrides, args.net))
    return _report(errors, args.format, len(args.files))


def validate_file(path: Path, overrides: dict[str, Any], net: str | None = None) -> list[Any]:
    """Every diagnostic for one file: the static checks of all definitions, then each net
    elaborated with shapes (the first error in each)."""
    from dsl.check import check_unit
    from dsl.errors import DSLError, LimitError
    from dsl.loader import Library, read_file
    from dsl.resolve import resolve
    from dsl.source import Span

    try:
        spec = read_file(path)
        unit = Library(path.parent).unit(spec, path)
        errors = check_unit(unit)
        if errors:
            return errors
        nets = [n.name for n in spec.nets() if net is None or n.name == net]
        if net is not None and not nets:
            resolve(spec, net=net)  # raises the "no net named" diagnostic
        for name in nets:
            resolve(path, net=name, params=overrides)
    except DSLError as exc:
        return [exc]
    except RecursionError:
        return [LimitError("the spec nests too deeply to check", Span(file=str(path), line=1, col=1))]
    return []


def _fmt(args: argparse.Namespace) -> int:
    from dsl.errors import DSLError
    from dsl.loader import read_file
    from dsl.printer import print_net, print_yaml

    errors: list[DSLError] = []
    changed = []
    for path in args.files:
        try:
            spec = read_file(path)
        except DSLError as exc:
            errors.append(exc)
            continue
        text = print_yaml(spec) if path.suffix in (".yaml", ".yml") else print_net(spec)
        if path.read_text(encoding="utf-8") != text:
            changed.append(path)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    if errors:
        return _report(errors, "human", len(args.files))
    verb = "would reformat" if args.check else "reformatted"
    for path in changed:
        print(f"{verb} {path}")
    print(f"{len(changed)} file{'s' if len(changed) != 1 else ''} {verb}, {len(args.files) - len(changed)} unchanged")
    return 1 if args.check and changed else 0


def _convert(args: argparse.Namespace) -> int:
    from dsl.errors import DSLError
    from dsl.loader import read_file
    from dsl.printer import print_net, print_yaml

    try:
        spec = read_file(args.file)
    except DSLError as exc:
        return _report([exc], "human", 1)
    text = print_yaml(spec) if args.output.suffix in (".yaml", ".yml") else print_net(spec)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from dsl.ir import SpecFile

    schema = SpecFile.model_json_schema(by_alias=True)
    schema["title"] = "netdsl spec (YAML form)"
    print(json.dumps(schema, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
