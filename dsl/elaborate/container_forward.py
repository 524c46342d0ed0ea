"""A container block with a forward of its own (`block DenseBlock(...) = ModuleDict:` whose
children are followed by `forward:`): the children are the container's, as without a
forward, and the forward is a graph body that reads them through `self`, as a hand-written
subclass of torch's container does. The result is a `ContainerSpec` with a graph."""

from __future__ import annotations

from typing import Any

from dsl import ir
from dsl.elaborate.bodies import container_handle
from dsl.elaborate.children import Children
from dsl.elaborate.evaluate import Frame
from dsl.elaborate.graph import GraphBuilder
from dsl.elaborate.graph_body import GraphBody
from dsl.elaborate.handles import finish
from dsl.elaborate.values import Handle, meta_arg
from dsl.errors import StructureError
from dsl.plan import ContainerSpec
from dsl.source import Span


def split_forward(container: ir.Container) -> tuple[ir.Container, ir.Forward | None]:
    """The container's children, and its `forward:` (last in its body), if it has one."""
    body = container.body
    forwards = [i for i, stmt in enumerate(body) if isinstance(stmt, ir.Forward)]
    if not forwards:
        return container, None
    if len(forwards) > 1:
        raise StructureError(
            f"a {container.kind} block has one 'forward:'",
            body[forwards[1]].span,
            hint="write all of its forward in the first one",
        )
    index = forwards[0]
    if index != len(body) - 1:
        raise StructureError(
            "'forward:' comes last in a container block, after its children",
            body[index + 1].span,
            hint="move this statement above 'forward:'",
        )
    children = [stmt for stmt in body[:index] if not isinstance(stmt, ir.Input)]
    if len(children) != index:
        first = next(stmt for stmt in body if isinstance(stmt, ir.Input))
        raise StructureError(
            "a container with a forward of its own declares its inputs in 'forward:'",
            first.span,
            hint="move this 'input' into 'forward:'",
        )
    forward = body[index]
    assert isinstance(forward, ir.Forward)
    return container.replace(body=children), forward


class ContainerForward(GraphBody):
    """A container's forward: it applies the container's children and computes values; it
    adds no module or tensor of its own (torch's containers hold their children only)."""

    def other(self, stmt: Any) -> None:
        refused = _REFUSED.get(type(stmt))
        if refused is not None:
            raise StructureError(
                f"{refused} cannot sit in a container's forward",
                stmt.span,
                hint="a container holds its children only: declare them above 'forward:'",
            )
        super().other(stmt)

    def _bind_module(self, name: str, handle: Handle, span: Span) -> Handle:
        """`layer = self[0]` names a child for the statements after it; a new module is refused."""
        if handle.name is None:
            raise StructureError(
                f"'{name}' would be a new module of {self.builder.class_name}; "
                "a container's modules are its children",
                span,
                hint="declare it above 'forward:' with the other children",
            )
        return handle


_REFUSED: dict[type, str] = {
    ir.ParamDecl: "a param",
    ir.BufferDecl: "a buffer",
    ir.InitBlock: "init rules",
}


def elaborate(
    frame: Frame,
    name: str,
    container: ir.Container,
    forward: ir.Forward,
    inputs: list[Any] | None,
    sources: list[Span | None],
    span: Span,
) -> tuple[ContainerSpec, Any, list[tuple[str, Any]]]:
    """The container's spec, its output meta, and its inputs (name and meta) for `inputs`
    (None for a net: its forward declares their shapes)."""
    handle = container_handle(container, frame)
    for key, child in handle.children:
        child.attach(key)  # the forward reads them as attributes of the container itself
    handle.name = "self"  # how the forward names the container (`self has no child 'x'`)
    builder = GraphBuilder(name, forward.span)
    scope = {**frame.scope, "self": Children(handle)}
    body = ContainerForward(builder, Frame(frame.elab, frame.unit, builder, scope))
    body.run_body(name, forward.forward, forward.span, inputs, sources, span)
    graph = builder.finish(frame.context)
    if graph.members:
        member = graph.members[0][0]
        raise StructureError(
            f"'{member}' would be a new member of {name}; a container's modules are its children",
            builder.member_spans[member],
            hint="declare it above 'forward:' with the other children",
        )
    spec = finish(handle, frame.context)
    assert isinstance(spec, ContainerSpec)
    spec.forward, spec.class_name = graph.graph, name
    return spec, meta_arg(builder.returned), [(n, v.meta) for n, v in body.inputs]
