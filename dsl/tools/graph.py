"""`dsl graph`: a picture of a network, drawn from the fx graphs its bodies were written as.

Nodes are inputs, modules (type and output shape), tensor functions and outputs; edges are
the data flow of the generated `forward`, so skip connections show as the edges they are.
Modules nested deeper than `depth` are one box; shallower blocks and Sequentials are drawn
as clusters holding their own graph. Output is DOT or Mermaid text, and SVG/PNG through
Graphviz's `dot` when it is installed.
"""

from __future__ import annotations

import operator
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from dsl.build.branch_code import METHOD_PREFIX  # `if training:`: drawn as one box
from dsl.errors import ArgumentError
from dsl.plan import ContainerSpec, DerivedSpec, GraphSpec, LeafSpec, ModuleSpec, Resolved
from dsl.records import field, record
from dsl.tools.measure import meta_model, trace
from dsl.torchlib.symbols import Symbols, describe

FORMATS = ("svg", "png", "pdf", "dot", "mmd")


@record
class Node:
    id: str
    title: str
    detail: str
    kind: str  # input, output, module, function, tensor


@record
class Cluster:
    id: str
    label: str
    nodes: list[str] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)


@record
class Picture:
    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    root: Cluster = field(default_factory=lambda: Cluster("root", ""))


class _Drawer:
    def __init__(
        self, resolved: Resolved, model: nn.Module, depth: int, symbols: Symbols | None
    ) -> None:
        self.resolved = resolved
        self.model = model
        self.depth = depth
        self.symbols = symbols
        self.picture = Picture(resolved.name)
        self.calls = trace(model, [m for _, m in resolved.inputs], count_flops=False).calls
        self._count = 0

    def new(self, cluster: Cluster, title: str, detail: str, kind: str) -> str:
        self._count += 1
        node_id = f"n{self._count}"
        self.picture.nodes[node_id] = Node(node_id, title, detail, kind)
        cluster.nodes.append(node_id)
        return node_id

    def shape(self, value: Any) -> str:
        return describe(value, self.symbols) if _has_tensor(value) else ""

    # -- the top level
    def draw(self) -> Picture:
        root = self.resolved.root
        while isinstance(root, DerivedSpec) and isinstance(root.base, GraphSpec | DerivedSpec):
            root = root.base  # `net ResNet18 = ResNet(...)`: draw the block it is made from
        cluster = self.picture.root
        if isinstance(root, GraphSpec):
            self.graph(root, self.model, "", 0, cluster, None)
        else:
            ids = [
                self.new(cluster, f"input {n}", self.shape(m), "input")
                for n, m in self.resolved.inputs
            ]
            outs = self.module(root, self.model, "", 0, cluster, ids, force=True)
            out = self.new(
                cluster,
                "output",
                self.shape(self.calls.get(id(self.model), (None, None))[1]),
                "output",
            )
            self.edges(outs, out)
        return self.picture

    def edges(self, sources: list[str], target: str) -> None:
        for s in dict.fromkeys(sources):
            self.picture.edges.append((s, target))

    # -- one module: a box, or a cluster when it is shallow enough to open
    def module(
        self,
        spec: ModuleSpec,
        module: nn.Module,
        name: str,
        level: int,
        cluster: Cluster,
        sources: list[str],
        force: bool = False,
        local: str | None = None,
    ) -> list[str]:
        """`name` is the qualified name, `local` the name in the enclosing body (`h.0`)."""
        call = self.calls.get(id(module))
        opens = force or (level < self.depth and not isinstance(spec, LeafSpec))
        if opens and call is not None and isinstance(spec, GraphSpec):
            inner = Cluster(
                f"c{len(self.picture.nodes)}_{name}",
                f"{name or self.resolved.name}: {spec.class_name}",
            )
            cluster.clusters.append(inner)
            return self.graph(spec, module, name, level, inner, sources)
        if (
            opens
            and isinstance(spec, ContainerSpec)
            and spec.kind == "Sequential"
            and spec.forward is None  # one of its own is drawn as a box: children run as it says
            and call is not None
        ):
            inner = Cluster(
                f"c{len(self.picture.nodes)}_{name}", f"{name or self.resolved.name}: Sequential"
            )
            cluster.clusters.append(inner)
            outs = sources
            for child_name, child_spec in spec.children:
                child = module.get_submodule(child_name)
                outs = self.module(
                    child_spec,
                    child,
                    f"{name}.{child_name}" if name else child_name,
                    level + 1,
                    inner,
                    outs,
                )
            return outs
        title = f"{local or (name.rsplit('.', 1)[-1] if name else self.resolved.name)}: {type(module).__name__}"
        node = self.new(cluster, title, self.shape(call[1]) if call else "", "module")
        self.edges(sources, node)
        return [node]

    # -- a graph body: its fx graph, node by node
    def graph(
        self,
        spec: GraphSpec,
        module: nn.Module,
        prefix: str,
        level: int,
        cluster: Cluster,
        sources: list[str] | None,
    ) -> list[str]:
        call = self.calls.get(id(module))
        metas = _node_values(spec.graph, module, call[0]) if call else {}
        body = _Body(dict(spec.members), module, prefix, level, cluster, sources)
        env: dict[fx.Node, list[str]] = {}
        outs: list[str] = []
        for node in spec.graph.nodes:
            inputs = [s for arg in _node_args(node) for s in env.get(arg, [])]
            value = metas.get(node)
            if node.op == "output":
                if sources is None:
                    self.edges(inputs, self.new(cluster, "output", self.shape(value), "output"))
                outs = inputs
            else:
                env[node] = self.node(body, node, inputs, value)
        return outs

    def node(self, body: _Body, node: fx.Node, inputs: list[str], value: Any) -> list[str]:
        """The boxes one fx node stands for (none for build-time plumbing)."""
        if node.op == "placeholder":
            if body.sources is None:
                return [self.new(body.cluster, f"input {node.target}", self.shape(value), "input")]
            body.placeholders += 1
            return body.sources[body.placeholders - 1 : body.placeholders]
        if node.op == "call_module" and not str(node.target).startswith(METHOD_PREFIX):
            return self.call_module(body, str(node.target), inputs, value)
        if node.op == "get_attr":
            return [self.new(body.cluster, str(node.target), self.shape(value), "tensor")]
        if not _has_tensor(value):
            return []  # sizes, devices: build-time plumbing, not data flow
        if node.target is operator.getitem:
            return inputs  # `q, k, v = ...split(...)`: the split is the node
        box = self.new(body.cluster, _function_name(node), self.shape(value), "function")
        self.edges(inputs, box)
        return [box]

    def call_module(self, body: _Body, target: str, inputs: list[str], value: Any) -> list[str]:
        child = body.module.get_submodule(target)
        child_spec = _member_spec(body.members, target)
        if child_spec is None:
            box = self.new(
                body.cluster, f"{target}: {type(child).__name__}", self.shape(value), "module"
            )
            self.edges(inputs, box)
            return [box]
        qualified = f"{body.prefix}.{target}" if body.prefix else target
        return self.module(
            child_spec, child, qualified, body.level + 1, body.cluster, inputs, local=target
        )


@record
class _Body:
    """The graph body being drawn: where its boxes go and what its inputs are."""

    members: dict[str, Any]
    module: nn.Module
    prefix: str
    level: int
    cluster: Cluster
    sources: list[str] | None  # the boxes feeding its inputs; None: draw them as inputs
    placeholders: int = 0  # how many of its inputs are drawn so far


def _member_spec(members: dict[str, Any], target: str) -> ModuleSpec | None:
    """The spec of `target` ("conv", or "h.3" inside a container member)."""
    head, *rest = target.split(".")
    spec = members.get(head)
    for part in rest:
        if not isinstance(spec, ContainerSpec):
            return None
        spec = dict(spec.children).get(part)
    return spec if isinstance(spec, LeafSpec | ContainerSpec | GraphSpec) else None


def _node_args(node: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []

    def note(arg: fx.Node) -> fx.Node:
        found.append(arg)
        return arg

    fx.node.map_arg((node.args, node.kwargs), note)
    return found


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, list | tuple):
        return any(_has_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    return False


def _node_values(graph: fx.Graph, module: nn.Module, args: tuple[Any, ...]) -> dict[fx.Node, Any]:
    """Every node's value when `module`'s graph runs on its (meta) inputs."""
    values: dict[fx.Node, Any] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            result = super().run_node(n)
            values[n] = result
            return result

    with torch.no_grad():
        Recorder(module, garbage_collect_values=False, graph=graph).run(*args)
    return values


_FUNCTION_NAMES = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "truediv": "/",
    "matmul": "@",
    "floordiv": "//",
    "getitem": "[ ]",
}


def _function_name(node: fx.Node) -> str:
    if node.op == "call_method":
        return f".{node.target}()"
    name = getattr(node.target, "__name__", str(node.target))
    return _FUNCTION_NAMES.get(name, name)


def draw(resolved: Resolved, *, depth: int = 2, symbols: bool = True) -> Picture:
    model = meta_model(resolved)
    return _Drawer(resolved, model, depth, resolved.symbols if symbols else None).draw()


# ============================================================================ text forms

_STYLE = {
    "input": 'shape=box, style="rounded,filled", fillcolor="#d5f0d5", color="#4a9a4a"',
    "output": 'shape=box, style="rounded,filled", fillcolor="#f6dcc4", color="#c07a3a"',
    "module": 'shape=box, style="rounded,filled", fillcolor="#dce8f7", color="#4a72a8"',
    "function": 'shape=box, style="rounded,filled", fillcolor="#f0f0f0", color="#888888", fontsize=10',
    "tensor": 'shape=note, style="filled", fillcolor="#fff7d0", color="#b0a040", fontsize=10',
}


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _cluster_lines(
    picture: Picture,
    node_line: Callable[[Node, str], str],
    opening: Callable[[Cluster, str], list[str]],
    closing: str,
) -> list[str]:
    """The nodes and nested clusters of `picture`, indented, in one output format."""
    lines: list[str] = []

    def walk(cluster: Cluster, indent: str) -> None:
        lines.extend(node_line(picture.nodes[node_id], indent) for node_id in cluster.nodes)
        for inner in cluster.clusters:
            lines.extend(opening(inner, indent))
            walk(inner, indent + "  ")
            lines.append(indent + closing)

    walk(picture.root, "  ")
    return lines


def to_dot(picture: Picture) -> str:
    def node_line(node: Node, indent: str) -> str:
        label = _dot_text(node.title) + (f"\\n{_dot_text(node.detail)}" if node.detail else "")
        return f'{indent}{node.id} [label="{label}", {_STYLE[node.kind]}];'

    def opening(cluster: Cluster, indent: str) -> list[str]:
        return [
            f"{indent}subgraph cluster_{cluster.id.replace('.', '_')} {{",
            f'{indent}  label="{_dot_text(cluster.label)}"; style="rounded,dashed"; color="#8899aa"; fontcolor="#445566";',
        ]

    lines = [
        f'digraph "{_dot_text(picture.name)}" {{',
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.35, labeljust=l];',
        '  node [fontname="Helvetica", fontsize=11, margin="0.12,0.04", height=0.3];',
        '  edge [color="#555555", arrowsize=0.6];',
        *_cluster_lines(picture, node_line, opening, "}"),
        *(f"  {a} -> {b};" for a, b in picture.edges),
        "}",
    ]
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("[", "#91;").replace("]", "#93;")


_MERMAID_SHAPES = {"input": ('(["', '"])'), "output": ('(["', '"])'), "tensor": ('[/"', '"/]')}


def to_mermaid(picture: Picture) -> str:
    def node_line(node: Node, indent: str) -> str:
        label = _mermaid_text(node.title) + (
            f"<br/>{_mermaid_text(node.detail)}" if node.detail else ""
        )
        left, right = _MERMAID_SHAPES.get(node.kind, ('["', '"]'))
        return f"{indent}{node.id}{left}{label}{right}"

    def opening(cluster: Cluster, indent: str) -> list[str]:
        return [
            f'{indent}subgraph {cluster.id.replace(".", "_")}["{_mermaid_text(cluster.label)}"]'
        ]

    lines = [
        "flowchart TD",
        *_cluster_lines(picture, node_line, opening, "end"),
        *(f"  {a} --> {b}" for a, b in picture.edges),
    ]
    return "\n".join(lines) + "\n"


def write(picture: Picture, output: Path) -> str:
    """Write the picture in the format `output`'s suffix names; returns a note for the user.
    SVG, PNG and PDF need Graphviz's `dot`: without it the DOT text is written beside, and
    the note says how to render it (a missing optional program is no error in the spec)."""
    fmt = output.suffix.lstrip(".").lower()
    if fmt in ("dot", "gv"):
        output.write_text(to_dot(picture), encoding="utf-8")
        return f"wrote {output}"
    if fmt in ("mmd", "mermaid", "md"):
        text = to_mermaid(picture)
        output.write_text(f"```mermaid\n{text}```\n" if fmt == "md" else text, encoding="utf-8")
        return f"wrote {output}"
    if fmt not in ("svg", "png", "pdf"):
        raise ArgumentError(
            f"cannot write a picture as '.{fmt}'",
            hint="give -o a name ending in .svg, .png, .pdf, .dot or .mmd",
        )
    dot = shutil.which("dot")
    if dot is None:
        fallback = output.with_suffix(".dot")
        fallback.write_text(to_dot(picture), encoding="utf-8")
        return (
            f"wrote {fallback} (DOT text): Graphviz's 'dot' program is not installed, so {output} was not rendered\n"
            f"  to get {output.name}: install the system package graphviz (apt-get install graphviz, "
            f"brew install graphviz), then run: dot -T{fmt} {fallback} -o {output}"
        )
    result = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(output)],
        input=to_dot(picture),
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise ArgumentError(f"dot failed: {result.stderr.strip()}")
    return f"wrote {output}"
