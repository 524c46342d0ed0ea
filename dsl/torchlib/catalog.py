"""Torch's pure tensor API, by the names users write, derived from torch's own namespaces.

A graph body may call every documented function of `torch`, `torch.nn.functional`,
`torch.linalg`, `torch.fft` and `torch.special`, and every public `Tensor` method, except what
the deny-list below refuses: in-place variants, I/O, random-number state, global settings,
and escapes from the graph (`.numpy()`, `.item()`). Nothing here lists ops one by one: a torch
release that adds an op adds it here.

Bare names (`sin`) look in `torch.nn.functional`, then `torch`; qualified names
(`torch.cat`, `F.relu`, `torch.nn.functional.gelu`, `torch.linalg.norm`) name their namespace.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from dsl.records import record

# Each namespace and the Python module its own Python-level functions are defined in; other
# Python functions found there are imports (`F.handle_torch_function`) or torch internals.
_NAMESPACES: dict[str, tuple[types.ModuleType, str]] = {
    "torch.nn.functional": (F, "torch.nn.functional"),
    "torch": (torch, "torch.functional"),
    "torch.linalg": (torch.linalg, "torch.linalg"),
    "torch.fft": (torch.fft, "torch.fft"),
    "torch.special": (torch.special, "torch.special"),
}
# The spellings users write for a namespace, beside its full name.
_ALIASES = {"F": "torch.nn.functional", "nn.functional": "torch.nn.functional"}
# Where a bare name is looked up, in order: the functional form of a layer first (`dropout`
# is F.dropout, with its `training` flag, not torch's undocumented `dropout(input, p, train)`).
_BARE = ("torch.nn.functional", "torch")

# ------------------------------------------------------------------------------ the deny-list
# Each refused name or pattern, and why: the reason is the hint a spec that names it gets.
_IN_PLACE = "in-place ops change a value other nodes may still read; call the out-of-place form"
_RNG = "the random state belongs to the caller: build with seed=... (dsl.build_model(seed=...))"
_IO = "a forward computes on its inputs; files and foreign arrays are read outside the model"
_GLOBAL = "global settings belong to the program running the model, not to its forward"
_ESCAPE = "it leaves the graph (the value stops being a traced tensor); keep computing on tensors"
_BACKEND = "a backend's own kernel, outside torch's documented API; call the documented op"
_INTERNAL = "part of TorchScript's or torch's dispatch machinery, not a tensor op"
_DEVICE = "a model's device is chosen by the caller (model.to(...)); use .to(x.device) for a tensor"

_REFUSED: dict[str, str] = {
    **dict.fromkeys(
        ("manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state", "fork_rng"), _RNG
    ),
    **dict.fromkeys(("save", "load", "from_file", "from_numpy", "frombuffer", "from_dlpack"), _IO),
    **dict.fromkeys(
        (
            "use_deterministic_algorithms", "are_deterministic_algorithms_enabled", "compile",
            "init_num_threads",
            "set_grad_enabled", "no_grad", "enable_grad", "inference_mode", "vmap", "cond",
            "while_loop", "autocast_increment_nesting", "autocast_decrement_nesting",
            "clear_autocast_cache", "typename",
        ),
        _GLOBAL,
    ),
    **dict.fromkeys(
        (
            "numpy", "item", "tolist", "data_ptr", "storage", "untyped_storage", "storage_type",
            "backward", "register_hook", "register_post_accumulate_grad_hook", "retain_grad",
            "record_stream", "is_pinned", "pin_memory", "is_shared", "module_load", "as_subclass",
            "new", "dim_order", "data", "to_dlpack", "allclose", "equal", "is_nonzero",
        ),
        _ESCAPE,
    ),
    **dict.fromkeys(
        (
            "fork", "wait", "import_ir_module", "import_ir_module_from_buffer", "parse_ir",
            "parse_schema", "parse_type_comment", "merge_type_from_type_comment",
            "unify_type_list", "assert_int_or_pair", "handle_torch_function",
            "has_torch_function", "has_torch_function_unary", "has_torch_function_variadic",
        ),
        _INTERNAL,
    ),
    **dict.fromkeys(("cuda", "cpu", "xpu", "ipu", "mps", "hpu", "mtia"), _DEVICE),
}  # fmt: skip
# Whole families: setters and getters of global state, and backend-specific kernels that are
# not part of torch's documented API.
_REFUSED_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r".*[^_]_$"), _IN_PLACE),
    (re.compile(r"(set|get)_.*|is_.*_enabled|.*_available"), _GLOBAL),
    (re.compile(r".*data_ptr"), _ESCAPE),
    (re.compile(r"(cudnn|miopen|mkldnn|fbgemm|quantized|q)_.*"), _BACKEND),
)
# Keywords that write into a tensor the spec names, and what to write instead.
_REFUSED_KEYWORDS: dict[str, Callable[[Any], bool]] = {
    "out": lambda value: value is not None,
    "inplace": bool,
}


def refusal(name: str) -> str | None:
    """Why a graph body may not call `name` (bare, qualified or a method), if it may not."""
    leaf = name.rpartition(".")[2]
    if leaf in _REFUSED:
        return _REFUSED[leaf]
    return next((why for pattern, why in _REFUSED_PATTERNS if pattern.fullmatch(leaf)), None)


def refused_keyword(kwargs: dict[str, Any]) -> tuple[str, str] | None:
    """The first keyword argument that would write in place (`out=y`, `inplace=true`), and
    the hint for it."""
    for key, writes in _REFUSED_KEYWORDS.items():
        if key in kwargs and writes(kwargs[key]):
            return key, f"leave '{key}' out and use the value the call returns"
    return None


# ------------------------------------------------------------------------------ the allow-list


def _is_op(obj: Any, home: str) -> bool:
    """A documented builtin op, or a Python function the namespace itself defines."""
    if isinstance(obj, types.BuiltinFunctionType):
        return bool((obj.__doc__ or "").strip())
    return inspect.isfunction(obj) and obj.__module__ == home


@functools.cache
def _names(module: Any) -> frozenset[str]:
    return frozenset(dir(module))


@functools.lru_cache(maxsize=8192)
def _namespace_op(namespace: str, name: str) -> Callable[..., Any] | None:
    """The op `name` of `namespace`, if it is one: looked up alone, so that a spec that
    calls a few ops never lists the thousands a namespace has (a few ms of every start)."""
    module, home = _NAMESPACES[namespace]
    if name.startswith("_") or name not in _names(module) or refusal(name) is not None:
        return None
    obj: Any = getattr(module, name, None)
    return obj if _is_op(obj, home) else None


@functools.cache
def _namespace_ops(namespace: str) -> dict[str, Callable[..., Any]]:
    ops = (
        (name, _namespace_op(namespace, name)) for name in sorted(_names(_NAMESPACES[namespace][0]))
    )
    return {name: op for name, op in ops if op is not None}


def function(name: str) -> Callable[..., Any] | None:
    """The torch function `name` names (`sin`, `torch.cat`, `F.relu`, `torch.linalg.norm`).
    A bare name that only a `Tensor` method has is that method, called on its first
    argument (`masked_fill(x, mask, 0)` is `x.masked_fill(mask, 0)`)."""
    namespace, _, leaf = name.rpartition(".")
    if namespace:
        namespace = _ALIASES.get(namespace, namespace)
        return _namespace_op(namespace, leaf) if namespace in _NAMESPACES else None
    found = next((op for ns in _BARE if (op := _namespace_op(ns, name)) is not None), None)
    if found is None and is_tensor_method(name):
        found = getattr(torch.Tensor, name)
    return found


def listed_function(name: str) -> Callable[..., Any] | None:
    """`function(name)` for a name as `op_names()` lists it (bare for `torch`, `F` and
    `Tensor` methods; qualified by its namespace for the others), else None."""
    namespace = name.rpartition(".")[0]
    if namespace in _BARE or (namespace and namespace not in _NAMESPACES):
        return None
    return function(name)


def is_namespace_prefix(dotted: str) -> bool:
    """Whether `dotted` starts with a namespace this catalog resolves (`torch.`, `F.`)."""
    head = dotted.rpartition(".")[0]
    return _ALIASES.get(head, head) in _NAMESPACES


@functools.lru_cache(maxsize=8192)
def is_tensor_method(name: str) -> bool:
    """Whether a graph body may call `name` as a `Tensor` method (`x.sin()`, `x.view(B, -1)`)."""
    if name.startswith("_") or name not in _names(torch.Tensor):
        return False
    method = getattr(torch.Tensor, name, None)
    return callable(method) and not inspect.isclass(method) and refusal(name) is None


@functools.cache
def tensor_methods() -> frozenset[str]:
    """Every `Tensor` method a graph body may call."""
    return frozenset(name for name in _names(torch.Tensor) if is_tensor_method(name))


@functools.cache
def op_names() -> tuple[str, ...]:
    """Every function name a graph body may call, sorted: bare names for `torch`,
    `torch.nn.functional` and `Tensor` methods, qualified ones for the other namespaces."""
    bare = {name for ns in _BARE for name in _namespace_ops(ns)} | tensor_methods()
    qualified = {
        f"{ns}.{name}" for ns in _NAMESPACES if ns not in _BARE for name in _namespace_ops(ns)
    }
    return tuple(sorted(bare | qualified))


# ------------------------------------------------------------------------------ signatures


def is_factory(fn: Any) -> bool:
    """Whether `fn` makes a tensor from sizes or data (`arange`, `zeros`, `tensor`): it has
    a `device` parameter and no input tensor to follow (`zeros_like(input)` follows its own)."""
    plain = isinstance(fn, types.BuiltinFunctionType | types.FunctionType)
    if not plain or isinstance(getattr(fn, "__self__", None), torch.Tensor) or not hashable(fn):
        return False  # a method follows its tensor; `parameters` caches only functions
    params = parameters(fn)
    return params is not None and "device" in params.names and params.names[0] != "input"


def on_meta(fn: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` for following shapes on meta: a factory makes a meta tensor, beside the
    meta inputs (the device a spec gives changes no shape)."""
    if not is_factory(fn):
        return kwargs
    return {**kwargs, "device": "meta"}


def hashable(fn: Any) -> bool:
    try:
        hash(fn)
    except TypeError:
        return False
    return True


@record(frozen=True)
class Params:
    """A function's parameter names, and how many of them a call may pass positionally."""

    names: tuple[str, ...]
    positional: int

    def passed(self, name: str, args: tuple, kwargs: dict[str, Any]) -> bool:
        """Whether a call with these arguments gives parameter `name` a value."""
        if name in kwargs:
            return True
        index = self.names.index(name)
        return index < self.positional and index < len(args)


# `name(params)` opening a line; the parameters may span lines and hold one level of brackets.
_DOC_SIGNATURE = re.compile(
    r"^\s*(?:[\w.]+\.)?(\w+)\(([^()]*(?:\([^()]*\)[^()]*)*)\)", re.MULTILINE
)


@functools.cache
def parameters(fn: Callable[..., Any]) -> Params | None:
    """`fn`'s parameters, from its signature, or for a builtin from the signature line its
    docstring opens with (`dropout(input, p=0.5, training=True) -> Tensor`)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return _doc_parameters(fn)
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = list(sig.parameters.values())
    positional = sum(1 for p in params if p.kind in kinds)
    return Params(tuple(p.name for p in params), positional)


def _doc_parameters(fn: Callable[..., Any]) -> Params | None:
    name = getattr(fn, "__name__", "")  # `linalg_norm` documents itself as `linalg.norm(...)`
    for match in _DOC_SIGNATURE.finditer(getattr(fn, "__doc__", None) or ""):
        if name.endswith(match.group(1)):
            items = [p.strip() for p in _top_level_split(match.group(2)) if p.strip()]
            star = items.index("*") if "*" in items else len(items)
            names = tuple(p.split("=")[0].split(":")[0].strip() for p in items if p != "*")
            return Params(names, star)
    return None


def _top_level_split(text: str) -> list[str]:
    """Split at the commas outside brackets: `size=(3, 3), dim=0` -> two items."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items
