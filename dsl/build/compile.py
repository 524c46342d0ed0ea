"""Resolved module tree -> a real `nn.Module`.

Containers become the real torch classes; each graph body becomes a class of its own,
named after the net or block, whose `forward` is Python source generated from the body's
`torch.fx` graph (values are dropped after their last use, as fx's code generator does).
Members are constructed in declaration order, so the random stream is consumed in the same
order as by a hand-written `__init__`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import importlib
import linecache
import types
import weakref
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from dsl.build import branch_code, hand_written, inplace, seeding
from dsl.elaborate.values import frozen_key, shared_meta_module
from dsl.errors import ArgumentError, did_you_mean
from dsl.pauses import gc_paused
from dsl.plan import (
    AliasSpec,
    ContainerSpec,
    DerivedSpec,
    FreezeOp,
    GraphSpec,
    LeafSpec,
    ModuleSpec,
    PartSpec,
    ReplaceOp,
    Resolved,
    SourceSpec,
    TensorSpec,
    has_init_rules,
)
from dsl.torchlib import init, nn_private, shapes
from dsl.torchlib.registry import REGISTRY


class GeneratedModule(nn.Module):
    """Base of every class netdsl generates; behaves as any hand-written module."""

    dsl_source: str = ""
    dsl_globals: dict[str, str] = {}
    dsl_base: str = ""  # the torch container it subclasses, if any (`_BASES`)

    def __init__(self) -> None:
        super().__init__()

    def __reduce_ex__(self, protocol: Any) -> tuple:
        # The class exists only in this process, so a pickle says how to make it again.
        cls = type(self)
        state = self.__dict__
        return (_restore, (cls.__name__, cls.dsl_source, cls.dsl_globals, state, cls.dsl_base))


class GeneratedSequential(GeneratedModule, nn.Sequential):
    """Base of a `block X = Sequential:` with a `forward:` of its own."""

    dsl_base = "Sequential"


class GeneratedModuleList(GeneratedModule, nn.ModuleList):
    """Base of a `block X = ModuleList:` with a `forward:` of its own."""

    dsl_base = "ModuleList"


class GeneratedModuleDict(GeneratedModule, nn.ModuleDict):
    """Base of a `block X = ModuleDict:` with a `forward:` of its own."""

    dsl_base = "ModuleDict"


_BASES: dict[str, type[GeneratedModule]] = {
    cls.dsl_base: cls
    for cls in (GeneratedModule, GeneratedSequential, GeneratedModuleList, GeneratedModuleDict)
}
_CLASSES: dict[tuple[str, str, str], type[GeneratedModule]] = {}
_BY_STRUCTURE: dict[tuple, type[GeneratedModule]] = {}


def generated_class(
    name: str, graph: fx.Graph, adds_in_place: tuple[str, ...] = (), base: str = ""
) -> type[GeneratedModule]:
    """The class for a graph body; bodies that generate the same code share one class.
    `adds_in_place` names the adds it makes in place (dsl.build.inplace); `base` names the
    torch container a container block's forward subclasses.

    fx's code generation is most of compile's own time, so a graph whose nodes are the same
    as an earlier one's (a block built again) reuses that class without generating again."""
    structure = (name, adds_in_place, base, *branch_code.structure(graph))
    cls = _BY_STRUCTURE.get(structure)
    if cls is None:
        code = hand_written.python_code(inplace.with_inplace_adds(graph, adds_in_place))
        namespace = dict(code.globals)
        src = code.src + branch_code.methods_source(graph, namespace, hand_written.python_code)
        key = (name, src, base)
        if key not in _CLASSES:
            imports = {k: _import_path(v) for k, v in namespace.items()}
            _CLASSES[key] = _make_class(name, src, namespace, imports, base)
        cls = _BY_STRUCTURE[structure] = _CLASSES[key]
    return cls


def _import_path(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    if isinstance(obj, float):  # fx's `inf` and `nan`
        return f"math:{obj!r}"
    if obj is type(None):
        return "types:NoneType"
    module = getattr(obj, "__module__", None) or "builtins"
    return f"{module}:{obj.__qualname__}"


def _resolve_import(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split(".") if qualname else []:
        obj = getattr(obj, part)
    return obj


def _make_class(
    name: str, src: str, namespace: dict[str, Any], imports: dict[str, str], base: str
) -> type[GeneratedModule]:
    digest = hashlib.sha1(f"{name}\n{src}".encode()).hexdigest()[:12]
    filename = f"<netdsl {name} {digest}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(keepends=True), filename)
    exec(compile(src, filename, "exec"), namespace)  # our own generated code, never spec text
    methods = {
        key: value
        for key, value in namespace.items()
        if key == "forward" or key.startswith(branch_code.METHOD_PREFIX)
    }
    for key, method in methods.items():
        method.__qualname__ = f"{name}.{key}"
    attrs = {
        **methods,
        "dsl_source": src,
        "dsl_globals": imports,
        "__module__": "dsl.generated",
    }
    return type(name, (_BASES[base],), attrs)


def _restore(
    name: str, src: str, imports: dict[str, str], state: dict[str, Any], base: str = ""
) -> GeneratedModule:
    cls = _CLASSES.get((name, src, base))
    if cls is None:
        namespace = {key: _resolve_import(path) for key, path in imports.items()}
        cls = _CLASSES[(name, src, base)] = _make_class(name, src, namespace, imports, base)
    module = cls.__new__(cls)
    module.__dict__.update(state)
    return module


class _Builder:
    """Constructs a resolved tree in declaration order and collects its init rules."""

    def __init__(
        self,
        stream: init.PerModuleStream | None,
        adds_in_place: bool = True,
        for_shapes: bool = False,
    ) -> None:
        self.stream = stream
        # A meta copy to follow shapes through (build_on_meta): its leaves are copies of the
        # meta instances elaboration shares, and init rules, which change no shape, do not run.
        self.for_shapes = for_shapes
        self.winners: dict[str, init.Rule] = {}  # which init rule set each parameter
        self.sources: dict[str, nn.Module] = {}  # parts(...) models, built but not registered
        # by spec and whether adds may be in place: identical blocks share one class
        self.classes: dict[tuple[int, bool], type[GeneratedModule]] = {}
        # Off inside a derived net's base that has members replaced, and on meta, where
        # torch checks an in-place add in Python with sympy (1-2 s and 150 MB the first time).
        self.adds_in_place = adds_in_place

    def build(self, spec: ModuleSpec, path: str = "") -> nn.Module:
        if isinstance(spec, LeafSpec):
            if self.for_shapes:
                return _meta_leaf(spec)
            with self._draws(path):
                return spec.layer.construct(spec.kwargs)
        if isinstance(spec, ContainerSpec):
            return self._container(spec, path)
        if isinstance(spec, DerivedSpec):
            return self._derived(spec, path)
        if isinstance(spec, PartSpec):
            return self.sources[spec.key].get_submodule(spec.path)
        return self._graph(spec, path)

    def _derived(self, spec: DerivedSpec, path: str) -> nn.Module:
        saved = self.adds_in_place
        self.adds_in_place = saved and not any(isinstance(op, ReplaceOp) for op in spec.ops)
        try:
            model = self.build(spec.base, path)
        finally:
            self.adds_in_place = saved
        for op in spec.ops:
            if isinstance(op, ReplaceOp):
                parent, _, leaf = op.path.rpartition(".")
                setattr(
                    model.get_submodule(parent), leaf, self.build(op.spec, _join(path, op.path))
                )
            elif isinstance(op, FreezeOp):
                for name, param in model.named_parameters():
                    if fnmatch.fnmatchcase(name, op.pattern):
                        param.requires_grad_(op.trainable)
            else:
                for name, module in model.named_modules():
                    if name and fnmatch.fnmatchcase(name, op.pattern):
                        for key, value in op.attrs.items():
                            setattr(module, key, value)
        self._initialise(model, spec.init_rules, path)
        return model

    def _initialise(self, module: nn.Module, rules: list[init.Rule], path: str) -> None:
        """A module's init rules run when it has been built, before its parent goes on."""
        if rules and not self.for_shapes:
            self.winners.update(init.initialise(module, rules, _layer_type, self.stream, path))

    def _draws(self, path: str) -> Any:
        return self.stream(path) if self.stream is not None else contextlib.nullcontext()

    def _container(self, spec: ContainerSpec, path: str) -> nn.Module:
        """The torch container, or a subclass of it with the block's own forward; its
        children are added under their keys, as `append` and `update` add them."""
        children = [(name, self.build(child, _join(path, name))) for name, child in spec.children]
        if spec.forward is None:
            container = _CONTAINERS[spec.kind]()
        else:
            container = generated_class(spec.class_name, spec.forward, (), spec.kind)()
        for name, child in children:
            _add_child(container, name, child)
        self._initialise(container, spec.init_rules, path)
        return container

    def _graph(self, spec: GraphSpec, path: str) -> nn.Module:
        key = (id(spec), self.adds_in_place)
        cls = self.classes.get(key)
        if cls is None:
            members = dict(spec.members) if self.adds_in_place else {}
            adds = inplace.inplace_adds(spec.graph, members)
            cls = self.classes[key] = generated_class(spec.class_name, spec.graph, adds)
        module = cls()
        for name, member in spec.members:
            if isinstance(member, TensorSpec):
                with self._draws(_join(path, name)):
                    _add_tensor(module, name, member)
            elif isinstance(member, AliasSpec):
                _add_child(module, name, module.get_submodule(member.target))
            elif isinstance(member, SourceSpec):
                self.sources[member.key] = self.build(member.spec, _join(path, name))
            else:
                _add_child(module, name, self.build(member, _join(path, name)))
        self._initialise(module, spec.init_rules, path)
        return module


_CONTAINERS: dict[str, type[nn.Module]] = {
    "Sequential": nn.Sequential,
    "ModuleList": nn.ModuleList,
    "ModuleDict": nn.ModuleDict,
}
_REGISTRATION_HOOKS = nn_private.MODULE_REGISTRATION_HOOKS


def _add_child(module: nn.Module, name: str, child: nn.Module) -> None:
    """`module.add_module(name, child)`. Its check that no attribute has the name is a
    `hasattr` that raises and catches an AttributeError for every new child (3 µs, most
    of the call); a name that can clash, or fail torch's other checks, still goes
    through torch."""
    clash = (
        not isinstance(child, nn.Module) or not name or "." in name or hasattr(type(module), name)
        or name in module.__dict__ or nn_private.owns_tensor(module, name)
    )  # fmt: skip
    if clash or _REGISTRATION_HOOKS is None or _REGISTRATION_HOOKS:
        module.add_module(name, child)
    else:
        nn_private.set_child(module, name, child)


def build_on_meta(spec: ModuleSpec) -> nn.Module:
    """A meta-device copy of a resolved module, for following shapes through it."""
    with shapes.on_meta():
        return _Builder(None, adds_in_place=False, for_shapes=True).build(spec)


def _meta_leaf(spec: LeafSpec) -> nn.Module:
    """A leaf of a meta copy: a copy of the meta instance elaboration shares (a layer's
    constructor is most of a meta build's time), or a new one where that has submodules."""
    shared, _ = shared_meta_module(spec.layer, frozen_key(spec.kwargs), spec.kwargs, spec.span)
    copy = nn_private.leaf_copy(shared)
    return copy if copy is not None else spec.layer.construct(spec.kwargs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _add_tensor(module: nn.Module, name: str, spec: TensorSpec) -> None:
    tensor = torch.empty(spec.shape, dtype=spec.dtype)
    if spec.init is not None:
        spec.init.apply(tensor)
    else:
        tensor.zero_()
    if spec.kind == "param":
        module.register_parameter(name, nn.Parameter(tensor, requires_grad=spec.requires_grad))
    else:
        module.register_buffer(name, tensor, persistent=spec.persistent)


def _layer_type(name: str) -> type | None:
    layer = REGISTRY.layer(name)
    return layer.factory if layer is not None and isinstance(layer.factory, type) else None


# What each built model was built from, kept beside the model (not on it) for
# `materialize` and `dsl summary --init`.
BUILT: weakref.WeakKeyDictionary[nn.Module, tuple[Resolved, dict[str, init.Rule]]] = (
    weakref.WeakKeyDictionary()
)


@gc_paused()
def compile_resolved(
    resolved: Resolved,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    seed: int | None = None,
    init_stream: str = "global",
) -> nn.Module:
    """Construct the model; `init_stream="per-module"` seeds each module from `seed` and
    its qualified name instead of drawing from torch's global stream in order."""
    if init_stream not in ("global", "per-module"):
        raise ArgumentError(f"init_stream is 'global' or 'per-module', not {init_stream!r}")
    stream = None
    if init_stream == "per-module":
        if seed is None:
            raise ArgumentError("init_stream='per-module' needs a seed")
        stream = init.PerModuleStream(seed)
    on_meta = torch.device(device or torch.get_default_device()).type == "meta"
    builder = _Builder(stream, adds_in_place=not on_meta)
    with seeding.seeded(seed, device, reseed=stream is None), _on_device(device):
        model = builder.build(resolved.root)
    if dtype is not None:
        model = model.to(dtype)
    BUILT[model] = (resolved, builder.winners)
    return model


def _on_device(device: str | torch.device | None) -> contextlib.AbstractContextManager[Any]:
    if device is None:
        return contextlib.nullcontext()
    if torch.device(device).type == "meta":
        return shapes.on_meta()  # meta tensors hold no values: skip torch's init kernels
    return torch.device(device)


def check_init_rules(resolved: Resolved) -> None:
    """Init rules match against the built module tree: where a spec has any, build it on the
    meta device (nothing is allocated) so that a rule matching nothing is found by validate."""
    if has_init_rules(resolved.root):
        compile_resolved(resolved, device="meta")


def materialize(
    model: nn.Module,
    device: str | torch.device,
    *,
    seed: int | None = None,
    init_stream: str = "global",
) -> nn.Module:
    """Give a model built on the meta device real weights on `device`: the same weights a
    build there with the same seed gives, bit for bit. Returns the model itself."""
    if model not in BUILT:
        raise ArgumentError("materialize() takes a model made by dsl.build_model")
    resolved, _ = BUILT[model]
    real = compile_resolved(resolved, device=device, seed=seed, init_stream=init_stream)
    model.to_empty(device=device)
    model.load_state_dict(real.state_dict(keep_vars=True), assign=True, strict=True)
    _copy_plain_buffers(real, model)
    BUILT[model] = BUILT[real]
    return model


def _copy_plain_buffers(source: nn.Module, target: nn.Module) -> None:
    """Non-persistent buffers are not in a state_dict; carry them over by name."""
    for (name, buffer), (_, mine) in zip(source.named_buffers(), target.named_buffers()):
        if mine.shape == buffer.shape:
            owner, _, leaf = name.rpartition(".")
            target.get_submodule(owner).register_buffer(
                leaf,
                buffer,
                persistent=leaf in target.get_submodule(owner).state_dict(keep_vars=True),
            )


def feature_extractor(model: nn.Module, outputs: list[str]) -> nn.Module:
    """A model returning the named intermediate values (torchvision's fx feature extraction)."""
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    _, available = get_graph_node_names(model)
    modules = {a.rsplit(".", i)[0] for a in available for i in range(1, a.count(".") + 1)}
    for name in outputs:
        if name not in available and name not in modules:
            raise ArgumentError(
                f"the model has no value named '{name}' to return",
                hint=did_you_mean(name, available) or f"values: {', '.join(available[:12])}...",
            )
    return create_feature_extractor(model, return_nodes=list(outputs))
