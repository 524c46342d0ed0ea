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

from dsl import command_line


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_line.parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from dsl.errors import CommandLineError

    try:
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # `dsl summary ... | head` closed our output: that is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
        return 0
    except CommandLineError as exc:
        hint = f"\n  hint: {exc.hint}" if exc.hint else ""
        print(f"dsl {args.command}: error: {exc.message}{hint}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written: one line, no traceback
        print(f"dsl {args.command}: error: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 1


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
        summary = f"{checked} {noun} checked: " + (
            f"{len(errors)} error{'s' if len(errors) != 1 else ''}" if errors else "ok"
        )
        print(summary, file=sys.stderr if errors else sys.stdout)
    return 1 if errors else 0


def _overrides(args: argparse.Namespace, *, every_net: bool = False) -> dict[str, Any]:
    """`--set` values, each of its parameter's type (checked against every file given)."""
    from dsl.tools.overrides import check_override_types, parse_overrides

    overrides = parse_overrides(args.set)
    for path in getattr(args, "files", None) or [args.file]:
        check_override_types(path, overrides, args.net, every_net=every_net)
    return overrides


# ----------------------------------------------------------------------------- commands


def _validate(args: argparse.Namespace) -> int:
    from dsl.errors import DSLError

    errors: list[DSLError] = []
    overrides = _overrides(args, every_net=True)
    for path in args.files:
        errors.extend(validate_file(path, overrides, args.net, args.input))
    return _report(errors, args.format, len(args.files))


def validate_file(
    path: Path,
    overrides: dict[str, Any],
    net: str | None = None,
    shape: tuple[int, ...] | None = None,
) -> list[Any]:
    """Every diagnostic for one file: the static checks of all definitions, then each net
    elaborated with shapes (the first error in each); `shape` is `--input`'s."""
    from dsl.tools.validate import validate_spec

    return validate_spec(path, net=net, params=overrides, shape=shape, every_net=True).errors


def _fmt(args: argparse.Namespace) -> int:
    from dsl.errors import DSLError
    from dsl.syntax.loader import read_file
    from dsl.syntax.printer import print_net
    from dsl.syntax.yaml_printer import print_yaml

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
    print(
        f"{len(changed)} file{'s' if len(changed) != 1 else ''} {verb}, {len(args.files) - len(changed)} unchanged"
    )
    return 1 if args.check and changed else 0


def _convert(args: argparse.Namespace) -> int:
    from dsl.errors import DSLError
    from dsl.syntax.loader import read_file
    from dsl.syntax.printer import print_net
    from dsl.syntax.yaml_printer import print_yaml

    try:
        spec = read_file(args.file)
    except DSLError as exc:
        return _report([exc], "human", 1)
    text = print_yaml(spec) if args.output.suffix in (".yaml", ".yml") else print_net(spec)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def _blocks(args: argparse.Namespace) -> int:
    """The comment header of each library definition is its documentation."""
    from dsl.errors import UnknownNameError, did_you_mean
    from dsl.syntax.loader import read_file, stdlib_dir
    from dsl.syntax.printer import print_expr

    found = []
    for path in sorted(stdlib_dir().glob("*.net")):
        for definition in read_file(path, f"blocks/{path.name}").defs:
            params = ", ".join(
                p.name if p.default is None else f"{p.name}={print_expr(p.default)}"
                for p in definition.params
            )
            found.append((path.stem, definition, f"{definition.kind} {definition.name}({params})"))
    if args.name is None:
        for module, definition, head in found:
            summary = (definition.doc or "").split("\n")[0]
            print(f"{module:<12} {head}\n{'':<12}   {summary}")
        print(
            "\nimport with: from MODULE import NAME   (dsl blocks NAME shows the whole documentation)"
        )
        return 0
    for module, definition, head in found:
        if definition.name == args.name:
            print(f"from {module} import {definition.name}\n\n{head}\n")
            print(definition.doc or "(no documentation)")
            return 0
    error = UnknownNameError(
        f"the standard library has no block '{args.name}'",
        hint=did_you_mean(args.name, [d.name for _, d, _ in found]),
    )
    print(error.render(color=_color(sys.stderr)), file=sys.stderr)
    return 1


def _schema(args: argparse.Namespace) -> int:
    from dsl.syntax.yaml_exprs import container_schema
    from dsl.syntax.yaml_schema import MODELS

    schema = MODELS["SpecFile"].model_json_schema(by_alias=True)
    schema["title"] = "netdsl spec (YAML form)"
    # a definition's body may be one container, written as YAML writes it
    schema["$defs"]["Container"] = container_schema(schema["$defs"]["Container"])
    print(json.dumps(schema, indent=2))
    return 0


# ----------------------------------------------------------------------------- tool commands


def _errors_reported(run: Any) -> Any:
    """A command body whose DSLErrors become diagnostics and exit code 1."""

    def wrapper(args: argparse.Namespace) -> int:
        from dsl.errors import CommandLineError, DSLError

        try:
            return run(args)
        except CommandLineError:
            raise  # main reports it: exit 2
        except DSLError as exc:
            return _report(
                [exc],
                getattr(args, "format", "human")
                if getattr(args, "format", "human") == "json"
                else "human",
                1,
            )

    return wrapper


@_errors_reported
def _summary(args: argparse.Namespace) -> int:
    from dsl.tools.progress import Progress
    from dsl.tools.sizes import resolve_for_input
    from dsl.tools.summary import render, render_json, summarise

    overrides = _overrides(args)
    columns = _columns(args.columns)
    with Progress(f"measuring {args.file.name}"):
        resolved = resolve_for_input(args.file, overrides, args.input, args.net)
        result = summarise(resolved, concrete=args.input is not None, init=args.init)
    if args.format == "json":
        print(render_json(result))
    else:
        depth = args.depth if args.depth >= 0 else None
        print(render(result, depth=depth, color=_color(sys.stdout), columns=columns))
    return 0


def _columns(names: list[str] | None) -> list[str] | None:
    from dsl.errors import ArgumentError, CommandLineError
    from dsl.tools.summary import check_columns

    try:
        return None if names is None else check_columns(names)
    except ArgumentError as exc:
        raise CommandLineError(f"argument --columns: {exc.message}", hint=exc.hint) from None


@_errors_reported
def _graph(args: argparse.Namespace) -> int:
    from dsl.build.resolve import resolve
    from dsl.tools.graph import draw, write

    resolved = resolve(args.file, net=args.net, params=_overrides(args))
    picture = draw(resolved, depth=max(args.depth, 1), symbols=not args.concrete)
    print(write(picture, args.output))
    return 0


@_errors_reported
def _diff(args: argparse.Namespace) -> int:
    from dsl.build.resolve import resolve
    from dsl.tools.diff import compare, render, render_json
    from dsl.tools.overrides import check_override_types, parse_overrides

    overrides = parse_overrides(args.set)
    for path in (args.a, args.b):
        check_override_types(path, overrides)
    a = resolve(args.a, params=overrides)
    b = resolve(args.b, params=overrides)
    result = compare(a, b, str(args.a), str(args.b))
    print(
        render_json(result) if args.format == "json" else render(result, color=_color(sys.stdout))
    )
    return 0


@_errors_reported
def _resolve(args: argparse.Namespace) -> int:
    from dsl.tools.provenance import explain, render, render_json

    _, entries = explain(args.file, net=args.net, overrides=_overrides(args))
    print(
        render_json(entries)
        if args.format == "json"
        else render(entries, color=_color(sys.stdout), defaults=not args.no_defaults)
    )
    return 0


def _build_with_progress(
    path: Path,
    overrides: dict[str, Any],
    net: str | None,
    seed: int,
    shape: tuple[int, ...] | None = None,
) -> tuple[Any, Any]:
    import torch

    from dsl.build.checkpoint import count_modules
    from dsl.build.compile import compile_resolved
    from dsl.build.resolve import resolve
    from dsl.tools.progress import Progress, counting_modules
    from dsl.tools.sizes import resolve_for_input

    with Progress(f"checking {path.name}") as progress:
        if shape is None:
            resolved = resolve(path, net=net, params=overrides)
        else:  # `--input`: the symbolic sizes it sets
            resolved = resolve_for_input(path, overrides, shape, net)
        progress.total = count_modules(resolved.root)
        progress.stage(f"building {resolved.name}")
        torch.manual_seed(seed)
        with counting_modules(progress):
            model = compile_resolved(resolved)
    return resolved, model


@_errors_reported
def _build(args: argparse.Namespace) -> int:
    from dsl.build.checkpoint import save
    from dsl.tools.progress import Progress
    from dsl.tools.summary import human_bytes
    from dsl.torchlib.offline import downloads_allowed

    overrides = _overrides(args)
    with downloads_allowed(args.allow_download):
        resolved, model = _build_with_progress(args.file, overrides, args.net, args.seed)
    with Progress(f"writing {args.output.name}"):
        save(
            model,
            args.output,
            spec_text=args.file.read_text(encoding="utf-8"),
            spec_file=str(args.file),
            net=resolved.name,
            params=overrides,
        )
    count = sum(p.numel() for p in model.parameters())
    print(
        f"wrote {args.output}: {resolved.name}, {count:,} parameters, {human_bytes(args.output.stat().st_size)}, seed {args.seed}"
    )
    return 0


@_errors_reported
def _export(args: argparse.Namespace) -> int:
    from dsl.build.resolve import resolve
    from dsl.tools.export import eject
    from dsl.tools.export_formats import export_model
    from dsl.tools.progress import Progress

    overrides = _overrides(args)
    if args.format == "python":
        resolved = resolve(args.file, net=args.net, params=overrides)
        args.output.write_text(eject(resolved, source_name=str(args.file)), encoding="utf-8")
        print(f"wrote {args.output} ({args.format})")
        return 0
    resolved, model = _build_with_progress(args.file, overrides, args.net, args.seed, args.input)
    static = args.static or (args.input is not None and args.dynamic is None)
    with Progress(f"exporting {resolved.name} ({args.format})"):
        result = export_model(
            model,
            resolved,
            args.format,
            args.output,
            dynamic=False if static else (args.dynamic or True),
            check=not args.no_check,
            spec=args.file,
            source_name=str(args.file),
        )
    print(result)
    return 0


def _import(args: argparse.Namespace) -> int:
    from dsl.importer.command import import_target

    result, verdict = import_target(args.target, args.args, args.input, args.check)
    fmt = args.format or ("yaml" if args.output.suffix in (".yaml", ".yml") else "net")
    args.output.write_text(result.text(fmt), encoding="utf-8")
    print(f"wrote {args.output}: {verdict}")
    for finding in result.report.findings:
        print(f"  {finding}", file=sys.stderr)
    return 1 if result.checked and not result.faithful else 0


def _ops(args: argparse.Namespace) -> int:
    from dsl.tools.ops_list import render

    print(render())
    return 0


def _lsp(args: argparse.Namespace) -> int:
    try:
        from dsl.lsp.server import serve
    except ModuleNotFoundError as exc:  # pygls / lsprotocol: the `lsp` extra
        print(
            f"dsl lsp: error: {exc.name} is not installed\n  hint: pip install 'netdsl[lsp]'",
            file=sys.stderr,
        )
        return 2
    serve()
    return 0


_COMMANDS = {
    "ops": _ops,
    "validate": _validate,
    "fmt": _fmt,
    "convert": _convert,
    "schema": _schema,
    "blocks": _blocks,
    "summary": _summary,
    "graph": _graph,
    "diff": _diff,
    "resolve": _resolve,
    "build": _build,
    "export": _export,
    "lsp": _lsp,
    "import": _import,
}


if __name__ == "__main__":
    sys.exit(main())
