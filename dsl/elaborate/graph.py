"""`GraphBuilder`: one graph body being written as a `torch.fx` graph, with its members in
declaration order."""

from __future__ import annotations

import functools
import keyword
from typing import Any

import torch
import torch.fx as fx

from dsl import ir
from dsl.elaborate.context import Context
from dsl.elaborate.handles import finish
from dsl.elaborate.values import Dim, Handle, Val
from dsl.errors import DuplicateNameError, Note, StructureError
from dsl.plan import AliasSpec, GraphSpec, ModuleSpec, SourceSpec, TensorSpec
from dsl.source import Span
from dsl.torchlib import fx_private, init

Member = Handle | TensorSpec | AliasSpec | SourceSpec


# The dtype an input is declared with, on its placeholder node.
INPUT_DTYPE = "dsl_input_dtype"


class GraphBuilder:
    """One graph body being elaborated: its fx graph, its members in declaration order."""

    def __init__(self, class_name: str, span: Span) -> None:
        self.class_name = class_name
        self.span = span
        self.graph = fx.Graph()
        self.members: list[tuple[str, Member]] = []
        self.member_spans: dict[str, Span] = {}
        self.returned: Any = None
        self.has_return = False
        self.init_rules: list[init.Rule] = []
        self.constant_nodes: list[fx.Node] = []  # what computed buffers were made from
        self.made_at_build = False  # while a computed buffer's value is elaborated
        self._dims: dict[tuple[int, int], Dim] = {}
        self.branches = [0]  # `if training:` branches so far in the whole body, nested ones too
        self.body_graph = self.graph  # the body's own graph (an arm's builder has its own)

    def arm(self) -> GraphBuilder:
        """A builder for one arm of an `if training:`: a graph of its own, members and init
        rules shared with this body (they exist in both modes)."""
        arm = GraphBuilder(self.class_name, self.span)
        arm.members, arm.member_spans = self.members, self.member_spans
        arm.init_rules, arm.branches = self.init_rules, self.branches
        arm.constant_nodes = self.constant_nodes
        arm.body_graph = self.body_graph
        return arm

    def add_member(self, name: str, member: Member, span: Span) -> None:
        if name in self.member_spans:
            raise DuplicateNameError(
                f"'{name}' is already a member of {self.class_name}",
                span,
                notes=[Note("first defined here", self.member_spans[name])],
                hint=f"give this one another name; to apply the same '{name}' again (shared weights), write '{name}(...)' alone",
            )
        if not ir.IDENTIFIER.fullmatch(name):
            raise StructureError(
                f"'{name}' cannot name a module attribute",
                span,
                hint="forward reads a graph body's members by name; a quoted name such as "
                '"block1-0" names a child of a Sequential or ModuleDict',
            )
        check_member_name(name, torch.nn.Module, span)
        self.member_spans[name] = span
        self.members.append((name, member))
        if isinstance(member, Handle):
            member.attach(name)

    def node(self, op: str, target: Any, args: tuple, kwargs: dict | None = None) -> fx.Node:
        return _new_node(self.graph, op, target, args, kwargs)

    def attribute(self, source: fx.Node, attr: str) -> fx.Node:
        """`source.attr` read in forward (`x.dtype`), one node per source and attribute."""
        name = f"{source.name}_{attr}"
        found = next((n for n in self.graph.nodes if n.name == name), None)
        if found is None:
            found = self.graph.create_node("call_function", getattr, (source, attr), name=name)
        return found

    def floating_input(self) -> fx.Node | None:
        """The first input declared with a floating dtype: what a made tensor follows."""
        return next(
            (
                n
                for n in self.graph.nodes
                if n.op == "placeholder"
                and getattr(n.meta.get(INPUT_DTYPE), "is_floating_point", False)
            ),
            None,
        )

    def dim(self, val: Val, index: int) -> Dim:
        key = (id(val.node), index)
        if key not in self._dims:
            size = int(val.meta.shape[index])
            # Made from the graph, not this builder, which keeps the Dim (no reference cycle).
            self._dims[key] = Dim(
                size,
                functools.partial(_new_node, self.graph, "call_method", "size", (val.node, index)),
            )
        return self._dims[key]

    def finish(self, context: Context) -> GraphSpec:
        if not self.has_return:
            raise StructureError(
                f"{self.class_name} has no return",
                self.span,
                hint="end the body with 'return <value>'",
            )
        self._drop_constants()
        members: list[tuple[str, ModuleSpec | TensorSpec | AliasSpec | SourceSpec]] = []
        for name, member in self.members:
            members.append(
                (name, finish(member, context) if isinstance(member, Handle) else member)
            )
        # The handles' frames refer back to this builder; letting go of them lets reference
        # counting free the elaboration, instead of the cyclic collector (slower, and later).
        self.members = []
        return GraphSpec(self.class_name, members, self.graph, self.span, self.init_rules)

    def _drop_constants(self) -> None:
        """A computed buffer's value is data: the nodes it was computed from leave forward,
        unless forward uses them too."""
        constants = set(self.constant_nodes)
        for node in reversed(list(self.graph.nodes) if constants else []):
            if node in constants and not node.users:
                self.graph.erase_node(node)


def check_member_name(name: str, module_type: type[torch.nn.Module], span: Span) -> None:
    """A member becomes an attribute of the module: it may not hide one torch's has, and
    torch refuses an empty name or one with a '.' (the separator of qualified names)."""
    if not name or "." in name:
        raise StructureError(
            f"'{name}' cannot name a member: torch's names are not empty and have no '.'",
            span,
            hint="a member inside another is named in its own container",
        )
    if keyword.iskeyword(name):  # `self.heads.for(x)` would not compile
        raise StructureError(
            f"'{name}' cannot name a member: it is a Python keyword, and forward reads members by name",
            span,
            hint=f"choose another name, e.g. '{name}_'",
        )
    if name in _attributes_of(module_type):
        raise StructureError(
            f"'{name}' cannot name a member: every torch {module_type.__name__} has an attribute '{name}'",
            span,
            hint=f"choose another name, e.g. '{name}_'",
        )


_ATTRIBUTES: dict[str, frozenset[str]] = {}  # by class name: Module, Sequential, ...


def _attributes_of(module_type: type[torch.nn.Module]) -> frozenset[str]:
    found = _ATTRIBUTES.get(module_type.__name__)
    if found is None:  # an instance's: `training` is set in __init__
        found = _ATTRIBUTES[module_type.__name__] = frozenset(dir(module_type()))
    return found


def _new_node(
    graph: fx.Graph, op: str, target: Any, args: tuple, kwargs: dict | None = None
) -> fx.Node:
    # fx walks a new node's arguments for symbolic ints (a pytree walk per node); ours
    # never hold any, so the node is made bare and its arguments are set after.
    node = graph.create_node(op, target, name=_node_name(graph, target))
    if args:
        node.args = args
    if kwargs:
        node.kwargs = kwargs
    return node


# The name fx gives a node, before it is made unique, depends on the target alone (`conv1`,
# `add`, `flatten`) and costs a regex each time: worked out once per target. Bounded.
_NODE_NAMES: dict[Any, str] = {}
_MAX_NODE_NAMES = 4096


def _node_name(graph: fx.Graph, target: Any) -> str:
    try:
        name = _NODE_NAMES.get(target)
    except TypeError:  # an unhashable callable
        return fx_private.target_name(graph, target)
    if name is None:
        if len(_NODE_NAMES) >= _MAX_NODE_NAMES:
            _NODE_NAMES.clear()
        name = _NODE_NAMES[target] = fx_private.target_name(graph, target)
    return name
