"""One `block` per module class: the instances of a class are compared, and the literals
that differ between them become the block's parameters (named after the class's
constructor argument that holds the value, else after the keyword they fill). Instances
whose structure differs (an optional `downsample`) make variants: `BasicBlock_2`."""

from __future__ import annotations

import inspect
from typing import Any

from dsl import ir
from dsl.importer.irwalk import literals, names_in, replace_at, skeleton, substitute
from dsl.importer.leaves import same_value
from dsl.importer.loops import fold_loops
from dsl.importer.tree import Instance
from dsl.records import field, record
from dsl.syntax.printer import KEYWORDS
from dsl.torchlib.registry import INPUT_SIZE_PARAMS, REGISTRY


@record
class BlockMaker:
    resolved: dict[str, ir.ExprNode] = field(default_factory=dict)  # placeholder -> call
    defs: list[ir.BlockDef] = field(default_factory=list)
    params: dict[str, list[str]] = field(default_factory=dict)  # block -> its parameters

    def make(self, instances: dict[type, list[Instance]]) -> None:
        """Every class's blocks, each class after the classes its instances hold."""
        pending = dict(instances)
        while pending:
            ready = [cls for cls, group in pending.items() if self._holds_known(group)]
            cls = ready[0] if ready else next(iter(pending))
            self._class(cls, pending.pop(cls))

    def _holds_known(self, group: list[Instance]) -> bool:
        """Whether every instance these hold already has its block call."""
        held = {n for i in group for n in names_in(i.body) if n.startswith("§")}
        return held <= set(self.resolved)

    def _class(self, cls: type, group: list[Instance]) -> None:
        variants: list[tuple[Any, list[tuple[Instance, Any]]]] = []
        for instance in group:
            body = self.resolve(instance.body)
            shape = skeleton(body)
            same = next((v for v in variants if v[0] == shape), None)
            if same is None:
                variants.append((shape, [(instance, body)]))
            else:
                same[1].append((instance, body))
        for k, (_, members) in enumerate(variants):
            self._block(
                self._name(cls.__name__ if k == 0 else f"{cls.__name__}_{k + 1}"), cls, members
            )

    def resolve(self, body: Any) -> Any:
        """`body` with its instances' placeholders replaced and its repeats folded."""
        return fold_loops(substitute(body, self.resolved))

    def _name(self, wanted: str) -> str:
        taken = {d.block for d in self.defs} | set(REGISTRY.layers)
        name, n = wanted, 2
        while name in taken:
            name, n = f"{wanted}_{n}", n + 1
        return name

    def slots(self, call: ir.Call) -> list[str]:
        """The parameter each positional argument of `call` fills, where known."""
        if not isinstance(call.func, ir.Name):
            return []
        if call.func.id in self.params:
            return self.params[call.func.id]
        layer = REGISTRY.layers.get(call.func.id)
        if layer is None:
            return []
        empty = inspect.Parameter.empty
        return [p.name for p in layer.positional_params
                if p.default is empty and p.name not in INPUT_SIZE_PARAMS]  # fmt: skip

    def _block(self, name: str, cls: type, members: list[tuple[Instance, Any]]) -> None:
        found = [literals(body, self.slots) for _, body in members]
        groups: dict[tuple[Any, ...], list[int]] = {}
        for position in range(len(found[0])):
            vector = tuple((type(f[position][0].value), f[position][0].value) for f in found)
            if len(set(vector)) > 1:
                groups.setdefault(vector, []).append(position)
        first = members[0][1]
        taken = names_in(first) | KEYWORDS | {"training"} | set(members[0][0].inputs)
        names: list[str] = []
        replacements: dict[int, ir.ExprNode] = {}
        for vector, positions in groups.items():
            hint = found[0][positions[0]][1]
            param = _param_name(cls, [i for i, _ in members], [v for _, v in vector], hint, taken)
            taken.add(param)
            names.append(param)
            replacements.update({p: ir.Name(id=param) for p in positions})
        body = replace_at(first, replacements)
        if not isinstance(body, ir.Container):
            body = [*(ir.Input(input=x) for x in members[0][0].inputs), *body]
        self.params[name] = names
        self.defs.append(
            ir.BlockDef(block=name, params=[ir.DefParam(name=n) for n in names], body=body)
        )
        for k, (instance, _) in enumerate(members):
            values: list[ir.ExprNode] = [ir.Const(value=vector[k][1]) for vector in groups]
            self.resolved[instance.placeholder] = _call(name, names, values)


def _call(block: str, names: list[str], values: list[ir.ExprNode]) -> ir.Call:
    """`Block(a)`, `Block(a, b)`, or `Block(a, b=..., c=...)` beyond two parameters."""
    if len(values) <= 2:
        return ir.Call(func=ir.Name(id=block), args=values)
    return ir.Call(
        func=ir.Name(id=block),
        args=values[:1],
        kwargs=dict(zip(names[1:], values[1:], strict=True)),
    )


def _param_name(
    cls: type, instances: list[Instance], values: list[Any], hint: str, taken: set[str]
) -> str:
    """The constructor argument whose attribute holds these values, else the hint."""
    try:
        candidates = [p for p in inspect.signature(cls).parameters if p != "self"]
    except (TypeError, ValueError):
        candidates = []
    missing = object()
    wanted = next(
        (p for p in candidates
         if all(same_value(getattr(i.module, p, missing), v) for i, v in zip(instances, values, strict=True))),
        hint if ir.IDENTIFIER.fullmatch(hint) else "value",
    )  # fmt: skip
    name, n = wanted, 2
    while name in taken:
        name, n = f"{wanted}_{n}", n + 1
    return name
