"""`dsl export --format python`: a network as standalone PyTorch source ("eject"); the
other formats are `export_formats`'s.

Ejecting writes one class per generated net/block class. Its `__init__` constructs the
members with their final constructor arguments in declaration order (so a seeded build
draws the same weights); arguments that differ between the instances of a block become
the class's `__init__` parameters. Its `forward` is the generated code itself. The file
imports only torch: helpers such as `pad_to` are copied into it.
"""

from __future__ import annotations

import inspect
import keyword
import re
import textwrap
from collections.abc import Callable
from typing import Any

import torch

from dsl.build.compile import GeneratedModule, generated_class
from dsl.errors import ArgumentError
from dsl.plan import (
    AliasSpec,
    ComputedTensor,
    ContainerSpec,
    DerivedSpec,
    GraphSpec,
    LeafSpec,
    ModuleSpec,
    Resolved,
    SourceSpec,
    TensorSpec,
    iter_modules,
)
from dsl.records import field, record
from dsl.tools.export_dynamic import example_inputs as example_inputs  # its old home
from dsl.tools.python_text import python_text
from dsl.torchlib.init import InitCall

# ============================================================================ eject


@record
class _Group:
    """The instances of one generated class with one member structure: one ejected class."""

    name: str
    cls: type[GeneratedModule]
    instances: list[GraphSpec] = field(default_factory=list)
    params: list[tuple[str, int]] = field(
        default_factory=list
    )  # (name, a value position it stands for)
    by_position: dict[int, str] = field(default_factory=dict)  # value position -> param name


Val = Callable[[str, Any], str]


class _Ejector:
    def __init__(self, resolved: Resolved) -> None:
        self.resolved = resolved
        self.groups: dict[Any, _Group] = {}
        self.order: list[_Group] = []  # children before parents
        self._keys: dict[int, Any] = {}
        self._values: dict[int, list[tuple[str, Any]]] = {}
        self.needs_ordered_dict = False
        self.needs_torchvision = False
        self.init_rules = False  # the spec's init rules are not written out
        self.renames: dict[str, str] = {}  # global names in generated code -> names in the file

    # -- grouping instances into classes
    def key(self, spec: ModuleSpec | SourceSpec) -> Any:
        own_forward = isinstance(spec, ContainerSpec) and spec.forward is not None
        if own_forward or not isinstance(spec, LeafSpec | ContainerSpec | GraphSpec):
            what = f"a {type(spec).__name__}"
            if isinstance(spec, DerivedSpec):
                what = "a net derived from another model ('net X = Base(...):')"
            if own_forward:
                what = "a container block with a forward of its own"
            raise ArgumentError(
                f"{what} cannot be ejected yet",
                getattr(spec, "span", None),
                hint="export it as onnx, torchscript or exported-program instead",
            )
        if id(spec) in self._keys:
            return self._keys[id(spec)]
        if isinstance(spec, LeafSpec):
            key: Any = ("leaf", spec.layer.name, tuple(spec.kwargs))
        elif isinstance(spec, ContainerSpec):
            key = ("container", spec.kind, tuple((n, self.key(c)) for n, c in spec.children))
        else:
            members: list[tuple[Any, ...]] = []
            for name, m in spec.members:
                if isinstance(m, AliasSpec):
                    members.append((name, "alias", m.target))
                elif isinstance(m, TensorSpec):
                    members.append((name, m.kind, _init_key(m), m.persistent, m.requires_grad))
                else:
                    members.append((name, self.key(m)))
            key = ("graph", generated_class(spec.class_name, spec.graph), tuple(members))
        self._keys[id(spec)] = key
        return key

    def collect(self, root: ModuleSpec) -> None:
        """The classes to write, children before parents."""
        self.key(root)  # raises for anything in the tree that cannot be ejected
        for _, spec in iter_modules(root):
            if getattr(spec, "init_rules", None):
                self.init_rules = True
            if isinstance(spec, GraphSpec):
                self.add_instance(spec)

    def add_instance(self, spec: GraphSpec) -> None:
        key = self.key(spec)
        group = self.groups.get(key)
        if group is None:
            taken = {g.name for g in self.order}
            name, n = spec.class_name, 1
            while name in taken:
                n += 1
                name = f"{spec.class_name}_{n}"
            group = self.groups[key] = _Group(name, key[1])
            self.order.append(group)
        group.instances.append(spec)

    def group(self, spec: GraphSpec) -> _Group:
        return self.groups[self.key(spec)]

    def values(self, spec: GraphSpec) -> list[tuple[str, Any]]:
        """The instance's constructor values, in the order `init_body` uses them."""
        if id(spec) not in self._values:
            found: list[tuple[str, Any]] = []

            def record(label: str, value: Any) -> str:
                found.append((label, value))
                return python_text(value)

            self.init_body(spec, record)
            self._values[id(spec)] = found
        return self._values[id(spec)]

    def settle(self) -> None:
        """Each group's parameters: the values that differ between its instances."""
        for group in self.order:
            table = [self.values(inst) for inst in group.instances]
            columns: dict[tuple, str] = {}
            used: set[str] = set()
            for position, label in enumerate(label for label, _ in table[0]):
                column = tuple(
                    (type(row[position][1]).__name__, repr(row[position][1])) for row in table
                )
                if len(set(column)) == 1:
                    continue
                if column not in columns:
                    name = _identifier(label)
                    n = 1
                    while name in used:
                        n += 1
                        name = f"{_identifier(label)}_{n}"
                    used.add(name)
                    columns[column] = name
                    group.params.append((name, position))
                group.by_position[position] = columns[column]

    # -- code
    def init_body(self, spec: GraphSpec, val: Val) -> list[str]:
        lines = []
        for name, member in spec.members:
            if isinstance(member, AliasSpec):
                lines.append(
                    f"self.{name} = self.{member.target}  # the same module under a second name"
                )
            elif isinstance(member, TensorSpec):
                lines.extend(self.tensor(name, member, val))
            else:
                lines.append(f"self.{name} = {self.expr(member, val, '')}")
        return lines

    def tensor(self, name: str, spec: TensorSpec, val: Val) -> list[str]:
        dtype = "" if spec.dtype == torch.float32 else f", dtype={spec.dtype}"
        if isinstance(spec.init, ComputedTensor):  # its value, as a literal
            persistent = "" if spec.persistent else ", persistent=False"
            value = val(f"{name}_value", _computed_value(spec.init))
            return [f'self.register_buffer("{name}", torch.tensor({value}{dtype}){persistent})']
        shape = val(f"{name}_shape", tuple(spec.shape))
        lines = []
        if spec.kind == "param":
            grad = "" if spec.requires_grad else ", requires_grad=False"
            lines.append(f"self.{name} = nn.Parameter(torch.empty({shape}{dtype}){grad})")
        else:
            persistent = "" if spec.persistent else ", persistent=False"
            make = "empty" if spec.init is not None else "zeros"
            lines.append(
                f'self.register_buffer("{name}", torch.{make}({shape}{dtype}){persistent})'
            )
        if isinstance(spec.init, InitCall):  # never computed: key() refused those
            args = [repr(a) for a in spec.init.args] + [
                f"{k}={v!r}" for k, v in spec.init.kwargs.items()
            ]
            lines.append(f"nn.init.{spec.init.name}_(self.{name}{''.join(', ' + a for a in args)})")
        elif spec.kind == "param":
            lines.append(f"nn.init.zeros_(self.{name})")
        return lines

    def expr(self, spec: ModuleSpec | SourceSpec, val: Val, indent: str) -> str:
        if isinstance(spec, LeafSpec):
            return self.leaf(spec, val)
        if isinstance(spec, GraphSpec):
            group = self.group(spec)
            values = self.values(spec)
            args = ", ".join(
                f"{name}={val(name, values[position][1])}" for name, position in group.params
            )
            return f"{group.name}({args})"
        assert isinstance(spec, ContainerSpec)  # key() has refused every other kind
        inner = indent + "    "
        children = [(n, self.expr(c, val, inner)) for n, c in spec.children]
        if not children:
            return {
                "Sequential": "nn.Sequential()",
                "ModuleList": "nn.ModuleList()",
                "ModuleDict": "nn.ModuleDict()",
            }[spec.kind]
        if spec.kind == "Sequential":
            if all(n == str(i) for i, (n, _) in enumerate(children)):
                items = [e for _, e in children]
                return "nn.Sequential(\n" + "".join(f"{inner}{e},\n" for e in items) + f"{indent})"
            self.needs_ordered_dict = True
            return (
                "nn.Sequential(OrderedDict([\n"
                + "".join(f'{inner}("{n}", {e}),\n' for n, e in children)
                + f"{indent}]))"
            )
        if spec.kind == "ModuleList":
            return (
                "nn.ModuleList([\n" + "".join(f"{inner}{e},\n" for _, e in children) + f"{indent}])"
            )
        return (
            "nn.ModuleDict({\n"
            + "".join(f'{inner}"{n}": {e},\n' for n, e in children)
            + f"{indent}}})"
        )

    def leaf(self, spec: LeafSpec, val: Val) -> str:
        layer = spec.layer
        if layer.source == "torch.nn":
            ref = f"nn.{layer.name}"
        elif layer.source == "torchvision":
            self.needs_torchvision = True
            ref = layer.name
        else:
            raise ArgumentError(
                f"{layer.name} is a layer registered from Python (@dsl.register); an ejected file cannot construct it",
                spec.span,
            )
        positional = [k for k in spec.kwargs if k.isdigit()]
        args = [val(f"arg{k}", spec.kwargs[k]) for k in positional]
        order = {name: i for i, name in enumerate(layer.keyword_names)}
        named = sorted(
            (k for k in spec.kwargs if not k.isdigit()), key=lambda k: order.get(k, len(order))
        )
        args += [f"{k}={val(k, spec.kwargs[k])}" for k in named]
        return f"{ref}({', '.join(args)})"

    def class_source(self, group: _Group) -> str:
        spec = group.instances[0]
        counter = [0]

        def use(label: str, value: Any) -> str:
            position = counter[0]
            counter[0] += 1
            return group.by_position.get(position, python_text(value))

        body = self.init_body(spec, use)
        params = "".join(f", {name}" for name, _ in group.params)
        lines = [
            f"class {group.name}(nn.Module):",
            f"    def __init__(self{params}):",
            "        super().__init__()",
        ]
        lines += [textwrap.indent(line, " " * 8) for line in body]
        forward = _rename(group.cls.dsl_source.strip("\n").rstrip(), self.renames) + "\n"
        return "\n".join(lines) + "\n\n" + textwrap.indent(forward, "    ")


def _computed_value(computed: ComputedTensor) -> Any:
    """A computed buffer's value as nested lists (it reads no input: the graph runs here)."""
    from torch import fx

    return fx.GraphModule(torch.nn.Module(), computed.graph)().tolist()


def _identifier(label: str) -> str:
    name = re.sub(r"\W", "_", label)
    if not name or name[0].isdigit() or keyword.iskeyword(name) or name == "self":
        name = f"p_{name}"
    return name


def _init_key(spec: TensorSpec) -> str | None:
    if isinstance(spec.init, ComputedTensor):  # written out as its value (`tensor`)
        return f"computed {spec.init.text}"
    return spec.init.name if spec.init else None


class _Globals:
    """The names generated forwards use, as imports or copied helper definitions."""

    def __init__(self) -> None:
        self.header: dict[str, str] = {}
        self.helpers: dict[str, str] = {}
        self.renames: dict[str, str] = {}
        self.needs_functional = False

    def add(self, name: str, path: str, source: str) -> None:
        if not re.search(rf"(?<![\w.]){re.escape(name)}\b", source) or name in self.renames:
            return
        module, _, qualname = path.partition(":")
        if name == "torch" or (module == "torch" and not qualname):
            return
        if path == "math:inf":
            self.header[name] = f'{name} = float("inf")'
        elif path == "math:nan":
            self.header[name] = f'{name} = float("nan")'
        elif path == "types:NoneType":
            self.header[name] = f"{name} = type(None)"
        elif module == "builtins":
            if name != qualname:
                self.header[name] = f"{name} = {qualname}"
        elif module.split(".")[0] == "torch" and "." not in qualname:
            self.header[name] = f"from {module} import {qualname}" + (
                f" as {name}" if name != qualname else ""
            )
        else:
            from dsl.build.compile import _resolve_import

            fn = _resolve_import(path)
            if not inspect.isfunction(fn):
                raise ArgumentError(
                    f"the generated forward uses {path}, which cannot be copied into an ejected file"
                )
            text = textwrap.dedent(inspect.getsource(fn))
            short = fn.__name__
            self.renames[name] = short
            self.helpers[short] = text
            self.needs_functional = self.needs_functional or "F." in text


def _rename(source: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        source = re.sub(rf"\b{re.escape(old)}\b", new, source)
    return source


def eject(resolved: Resolved, *, source_name: str = "") -> str:
    """Standalone PyTorch source for `resolved`; its last class builds the whole network."""
    ej = _Ejector(resolved)
    glob = _Globals()
    root = resolved.root
    while (
        isinstance(root, DerivedSpec) and not root.ops
    ):  # `net ResNet18 = ResNet(...)`: the base itself
        root = root.base
    ej.collect(root)
    ej.settle()
    for group in ej.order:
        for name, path in group.cls.dsl_globals.items():
            glob.add(name, path, group.cls.dsl_source)
    ej.renames = glob.renames
    classes = [ej.class_source(g) for g in ej.order]
    entry = _entry_class(ej, root, classes)
    parts = [_docstring(resolved, source_name, ej.init_rules), "\n".join(_imports(ej, glob))]
    if glob.header:
        parts.append("\n".join(glob.header.values()))
    parts += [text.rstrip() for text in glob.helpers.values()]
    parts += [c.rstrip() for c in classes]
    if entry != resolved.name:
        parts.append(f"{resolved.name} = {entry}")
        entry = resolved.name
    example = ", ".join(_example_text(meta) for _, meta in resolved.inputs)
    parts.append(
        f'if __name__ == "__main__":\n    model = {entry}()\n    out = model({example})\n    print(out.shape if isinstance(out, torch.Tensor) else out)'
    )
    return "\n\n\n".join(parts) + "\n"


def _entry_class(ej: _Ejector, root: ModuleSpec, classes: list[str]) -> str:
    """The name of the class that builds the whole network; a Sequential net's is added
    to `classes` here."""
    if isinstance(root, GraphSpec):
        if ej.group(root).params:
            raise ArgumentError("internal: the root class has parameters")
        return ej.group(root).name
    if not (isinstance(root, ContainerSpec) and root.kind == "Sequential"):
        raise ArgumentError(
            f"a {getattr(root, 'kind', type(root).__name__)} net cannot be ejected yet",
            hint="export it as onnx, torchscript or exported-program instead",
        )
    entry = ej.resolved.name

    def literal(label: str, value: Any) -> str:
        return python_text(value)

    inner = ej.expr(root, literal, "        ")
    args = inner[len("nn.Sequential(") : -1].rstrip()
    classes.append(
        f"class {entry}(nn.Sequential):\n    def __init__(self):\n        super().__init__({args.strip()}\n        )\n"
    )
    return entry


def _docstring(resolved: Resolved, source_name: str, init_rules: bool) -> str:
    return (
        f'"""{resolved.name}, as plain PyTorch: ejected by netdsl'
        + (f" from {source_name}" if source_name else "")
        + ".\n\n"
        "The state_dict keys are those of the model dsl.build_model builds, so its checkpoints load here.\n"
        + (
            "The spec's init rules are not written out here: modules start with torch's own initialisation;\n"
            "load the built model's weights for the same numbers.\n"
            if init_rules
            else ""
        )
        + '"""'
    )


def _imports(ej: _Ejector, glob: _Globals) -> list[str]:
    imports = ["import torch", "import torch.nn as nn"]
    if glob.needs_functional:
        imports.append("import torch.nn.functional as F")
    if ej.needs_torchvision:
        imports.append("import torchvision")
    if ej.needs_ordered_dict:
        imports.insert(0, "from collections import OrderedDict\n")
    return imports


def _example_text(meta: torch.Tensor) -> str:
    shape = ", ".join(str(int(s)) for s in meta.shape)
    if meta.dtype.is_floating_point:
        dtype = "" if meta.dtype == torch.float32 else f", dtype={meta.dtype}"
        return f"torch.randn({shape}{dtype})" if shape else f"torch.randn(()){dtype}"
    return f"torch.zeros(({shape}{',' if meta.dim() == 1 else ''}), dtype={meta.dtype})"
