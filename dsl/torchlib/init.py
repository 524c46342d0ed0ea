"""Initialisation: initialisers, init rules, recipes, and the order they are applied in.

Defaults are each module's own `reset_parameters` (what a hand-made model gets). Rules in
an `init:` block override it:

    init:
        resnet(zero_init_residual=true)                 # a recipe: a list of rules
        Conv2d.weight: kaiming_normal(mode="fan_out")    # by layer type (isinstance)
        "layer*.*.bn2.weight": zeros()                  # by qualified name (fnmatch)

Order, fixed and documented: after every module is constructed (in declaration order),
each parameter gets the last rule that matches it, the rules of an inner block winning
over the net's; parameters are then initialised in `named_parameters()` order — the order
torchvision's `for m in self.modules(): ...` loops draw random numbers in, so a recipe
gives torchvision's weights bit for bit. A rule that matches nothing is an error.
"""

from __future__ import annotations

import fnmatch
import hashlib
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn import init as nn_init

from dsl.errors import InitError, did_you_mean
from dsl.records import record, replace
from dsl.source import Span

INITIALISERS: dict[str, Callable[..., torch.Tensor]] = {
    "uniform": nn_init.uniform_,
    "normal": nn_init.normal_,
    "trunc_normal": nn_init.trunc_normal_,
    "constant": nn_init.constant_,
    "zeros": nn_init.zeros_,
    "ones": nn_init.ones_,
    "eye": nn_init.eye_,
    "dirac": nn_init.dirac_,
    "orthogonal": nn_init.orthogonal_,
    "xavier_uniform": nn_init.xavier_uniform_,
    "xavier_normal": nn_init.xavier_normal_,
    "kaiming_uniform": nn_init.kaiming_uniform_,
    "kaiming_normal": nn_init.kaiming_normal_,
    "sparse": nn_init.sparse_,
}

NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
RESIDUAL_LAST_NORM = "<last norm of each residual block>"


@record(frozen=True)
class InitCall:
    """An initialiser with its arguments, e.g. kaiming_normal(mode="fan_out")."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    span: Span

    def apply(self, tensor: torch.Tensor) -> None:
        with torch.no_grad():
            self.apply_without_grad(tensor)

    def apply_without_grad(self, tensor: torch.Tensor) -> None:
        """`apply` where gradients are already off: `initialise` turns them off once."""
        if tensor.is_meta:  # no values to set, and torch's meta kernels for them are slow
            self.check(tuple(tensor.shape), tensor.dtype)
            return
        with self._refusals(tuple(tensor.shape), tensor.dtype):
            INITIALISERS[self.name](tensor, *self.args, **self.kwargs)

    def check(self, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        """Refuse, as `apply` would, without allocating: run the initialiser on a small CPU
        tensor of that dtype and rank (the shape itself where small), the RNG untouched."""
        numel = 1
        for size in shape:
            numel *= size
        trial = shape if numel <= _TRIAL_NUMEL else tuple(min(size, 16) for size in shape)
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad(), self._refusals(shape, dtype):
                trial_tensor = torch.empty(
                    trial, dtype=dtype, device="cpu"
                )  # not meta: a build on meta is running
                INITIALISERS[self.name](trial_tensor, *self.args, **self.kwargs)

    @contextmanager
    def _refusals(self, shape: tuple[int, ...], dtype: torch.dtype) -> Iterator[None]:
        try:
            with warnings.catch_warnings():
                for message in _WRONG_VALUES_WARNINGS:
                    warnings.filterwarnings("error", message=message, category=UserWarning)
                yield
        except (
            ValueError,
            RuntimeError,
            TypeError,
            NotImplementedError,
            ZeroDivisionError,
            OverflowError,
            UserWarning,
        ) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InitError(
                f"{self.name}() cannot initialise a {str(dtype).removeprefix('torch.')} tensor "
                f"of shape {list(shape)}: {first}",
                self.span,
                hint=_HINTS.get(self.name, _HINT),
            ) from None


# Warnings by which torch says an initialiser's values may be wrong: refused, never a
# silently wrong initialisation. trunc_normal_ warns before it samples, and its sampler can
# then take minutes (a=1, b=2 with std=0.01).
_WRONG_VALUES_WARNINGS = ("mean is more than 2 std from",)
_HINT = (
    "check the initialiser's arguments, and that it suits the tensor's rank and dtype "
    "(random initialisers need a floating-point dtype)"
)
_HINTS = {
    "trunc_normal": "a and b are bounds on the values, not counts of std: for two std "
    "either side of the mean write a=mean-2*std, b=mean+2*std",
}


_TRIAL_NUMEL = 1 << 16  # a trial initialisation of a tensor up to this size uses its shape


@record(frozen=True)
class Rule:
    target: str  # "Conv2d.weight", a name pattern, or RESIDUAL_LAST_NORM + ".weight"
    init: InitCall
    span: Span
    recipe: str | None = None  # the recipe that wrote it: such rules may match nothing
    scope: str | None = None  # `"backbone.*": resnet()`: tensors whose names match only


def _recipe_rules(name: str, span: Span, rules: list[tuple[str, str, tuple, dict]]) -> list[Rule]:
    return [
        Rule(target, InitCall(init, args, kwargs, span), span, name)
        for target, init, args, kwargs in rules
    ]


def resnet(span: Span, zero_init_residual: bool = False) -> list[Rule]:
    """torchvision's ResNet: conv fan_out/relu, norm layers 1/0 (optionally zero last BN)."""
    rules = [
        ("Conv2d.weight", "kaiming_normal", (), {"mode": "fan_out", "nonlinearity": "relu"}),
        ("BatchNorm2d.weight", "constant", (1,), {}),
        ("BatchNorm2d.bias", "constant", (0,), {}),
        ("GroupNorm.weight", "constant", (1,), {}),
        ("GroupNorm.bias", "constant", (0,), {}),
    ]
    out = _recipe_rules("resnet", span, rules)
    return out + zero_init_residual_rules(span) if zero_init_residual else out


def vgg(span: Span) -> list[Rule]:
    """torchvision's VGG: conv fan_out/relu with zero bias, BN 1/0, Linear normal(0, 0.01)/0."""
    return _recipe_rules(
        "vgg",
        span,
        [
            ("Conv2d.weight", "kaiming_normal", (), {"mode": "fan_out", "nonlinearity": "relu"}),
            ("Conv2d.bias", "constant", (0,), {}),
            ("BatchNorm2d.weight", "constant", (1,), {}),
            ("BatchNorm2d.bias", "constant", (0,), {}),
            ("Linear.weight", "normal", (0, 0.01), {}),
            ("Linear.bias", "constant", (0,), {}),
        ],
    )


def densenet(span: Span) -> list[Rule]:
    """torchvision's DenseNet: conv kaiming_normal (fan_in, leaky_relu's defaults), BN 1/0,
    Linear bias 0 (its weight keeps torch's own init)."""
    return _recipe_rules(
        "densenet",
        span,
        [
            ("Conv2d.weight", "kaiming_normal", (), {}),
            ("BatchNorm2d.weight", "constant", (1,), {}),
            ("BatchNorm2d.bias", "constant", (0,), {}),
            ("Linear.bias", "constant", (0,), {}),
        ],
    )


def transformer(span: Span, std: float = 0.02) -> list[Rule]:
    """GPT/ViT style: Linear and Embedding trunc_normal(std=0.02), zero bias, LayerNorm 1/0."""
    return _recipe_rules(
        "transformer",
        span,
        [
            ("Linear.weight", "trunc_normal", (), {"std": std}),
            ("Linear.bias", "zeros", (), {}),
            ("Embedding.weight", "trunc_normal", (), {"std": std}),
            ("LayerNorm.weight", "ones", (), {}),
            ("LayerNorm.bias", "zeros", (), {}),
        ],
    )


def zero_init_residual_rules(span: Span) -> list[Rule]:
    """Zero the weight of the last norm layer registered directly in each block whose
    forward adds a residual (BasicBlock's bn2, Bottleneck's bn3)."""
    return _recipe_rules(
        "zero_init_residual", span, [(f"{RESIDUAL_LAST_NORM}.weight", "constant", (0,), {})]
    )


RECIPES: dict[str, Callable[..., list[Rule]]] = {
    "resnet": resnet,
    "vgg": vgg,
    "densenet": densenet,
    "transformer": transformer,
    "zero_init_residual": zero_init_residual_rules,
}


def check_initialiser(name: str, span: Span) -> None:
    if name not in INITIALISERS:
        raise InitError(
            f"unknown initialiser '{name}'",
            span,
            hint=did_you_mean(name, INITIALISERS) or f"initialisers: {', '.join(INITIALISERS)}",
        )


def rule_from(target: str | None, name: str, args: tuple, kwargs: dict, span: Span) -> list[Rule]:
    """One `init:` line, its call already evaluated: a recipe, or `target: initialiser(...)`."""
    if target is not None and name in RECIPES:  # a recipe on a sub-tree
        if target.partition(".")[0][:1].isupper():
            raise InitError(
                f"'{name}' is a recipe: it applies to the whole tree or to a sub-tree by name",
                span,
                hint=f"write '{name}()' alone on its line, or '\"backbone.*\": {name}()'",
            )
        rules = rule_from(None, name, args, kwargs, span)
        return [replace(rule, scope=target) for rule in rules]
    if target is None:
        if name not in RECIPES:
            hint = (
                f"'{name}' is an initialiser: write 'Conv2d.weight: {name}(...)'"
                if name in INITIALISERS
                else did_you_mean(name, RECIPES) or f"recipes: {', '.join(RECIPES)}"
            )
            raise InitError(f"unknown init recipe '{name}'", span, hint=hint)
        try:
            return RECIPES[name](span, *args, **kwargs)
        except TypeError as exc:
            raise InitError(f"{name}(): {exc}", span) from None
    check_initialiser(name, span)
    return [Rule(target, InitCall(name, args, kwargs, span), span)]


# ----------------------------------------------------------------------------- matching


def _matches(
    scope: nn.Module,
    modules: list[tuple[str, nn.Module]],
    rule: Rule,
    layer_types: Callable[[str], type | None],
) -> Iterator[str]:
    """Qualified names (relative to `scope`, whose named modules are `modules`) of the
    tensors a rule targets."""
    owner, _, tensor = rule.target.rpartition(".")
    if owner == RESIDUAL_LAST_NORM:
        for path, module in modules:
            if _adds_residual(module):
                norms = [
                    n for n, child in module.named_children() if isinstance(child, NORM_LAYERS)
                ]
                if norms and getattr(module.get_submodule(norms[-1]), tensor, None) is not None:
                    yield _join(path, f"{norms[-1]}.{tensor}")
        return
    if owner[:1].isupper() and "." not in owner and "*" not in owner:
        kind = layer_types(owner)
        literal = not any(c in tensor for c in "*?[")
        for path, module in modules:
            if isinstance(module, kind) if kind is not None else type(module).__name__ == owner:
                for name, _ in module.named_parameters(recurse=False, remove_duplicate=False):
                    if name == tensor if literal else fnmatch.fnmatchcase(name, tensor):
                        yield _join(path, name)
        return
    for name, _ in scope.named_parameters():
        if fnmatch.fnmatchcase(name, rule.target):
            yield name


def _adds_residual(module: nn.Module) -> bool:
    source = getattr(type(module), "dsl_source", "")
    return " + " in source or "torch.add(" in source or ".add_(" in source  # in place


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def initialise(
    scope: nn.Module,
    rules: list[Rule],
    layer_types: Callable[[str], type | None],
    stream: Callable[[str], Any] | None = None,
    prefix: str = "",
) -> dict[str, Rule]:
    """Apply the init rules of one module, `scope` (at `prefix` in the model), to the
    tensors under it. The builder calls it when that module has been built: a nested
    block's rules run when the block is built, its parent's after (construction order, as
    an `__init__` that initialises its own submodules draws).

    Returns which rule set each parameter (by qualified name), for `dsl summary --init`.
    """
    winners: dict[str, Rule] = {}
    modules = list(scope.named_modules())
    _check_scopes(scope, rules)
    for rule in rules:
        hits = [
            hit
            for hit in _matches(scope, modules, rule, layer_types)
            if rule.scope is None or fnmatch.fnmatchcase(hit, rule.scope)
        ]
        if not hits and rule.recipe is None:
            raise InitError(
                f"the init rule '{rule.target}' matches no tensor",
                rule.span,
                hint=_no_match_hint(scope, rule, layer_types),
            )
        winners.update(dict.fromkeys(hits, rule))
    if not winners:
        return winners
    # Which tensor gets which rule is worked out first, in one go: between torch's init
    # kernels, which sweep the caches, there is then no more than a loop step.
    parameters = _named_parameters(modules)
    todo = [(name, param, winners[name].init) for name, param in parameters if name in winners]
    with torch.no_grad():
        for name, param, initialiser in todo:
            if stream is None:
                initialiser.apply_without_grad(param)
            else:
                with stream(_join(prefix, name) + "#init"):
                    initialiser.apply_without_grad(param)
    return {_join(prefix, name): rule for name, rule in winners.items()}


def _check_scopes(module: nn.Module, rules: list[Rule]) -> None:
    """A recipe scoped to a sub-tree (`"backbone.*": resnet()`) must name some tensor."""
    scopes = {rule.scope: rule.span for rule in rules if rule.scope is not None}
    names = [name for name, _ in module.named_parameters()] if scopes else []
    for pattern, span in scopes.items():
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            raise InitError(
                f"the init rule '{pattern}' matches no tensor",
                span,
                hint=did_you_mean(pattern, names)
                or f"names start with: {', '.join(dict.fromkeys(n.split('.')[0] for n in names))}",
            )


def _named_parameters(
    modules: Iterable[tuple[str, nn.Module]],
) -> Iterator[tuple[str, nn.Parameter]]:
    """`root.named_parameters()` from `root.named_modules()`, which initialise has most
    often walked already: the tree is walked once, not twice."""
    seen: set[int] = set()
    for path, module in modules:
        for name, param in module.named_parameters(recurse=False, remove_duplicate=False):
            if id(param) not in seen:
                seen.add(id(param))
                yield _join(path, name), param


def _no_match_hint(scope: nn.Module, rule: Rule, layer_types: Callable[[str], type | None]) -> str:
    names = [n for n, _ in scope.named_parameters()]
    owner, _, tensor = rule.target.rpartition(".")
    if owner[:1].isupper():
        kind = layer_types(owner)
        layers = [
            m
            for m in scope.modules()
            if (isinstance(m, kind) if kind is not None else type(m).__name__ == owner)
        ]
        if not layers:
            present = sorted({type(m).__name__ for m in scope.modules()})
            return f"there is no {owner} layer here" + (
                f"; {close}" if (close := did_you_mean(owner, present)) else ""
            )
        if tensor == "bias":
            return f"no {owner} here has a bias (a layer built with bias=false has none)"
        tensors = sorted({n for m in layers for n, _ in m.named_parameters(recurse=False)})
        return f"no {owner} here has a '{tensor}'; " + (
            did_you_mean(tensor, tensors) or f"its tensors: {', '.join(tensors)}"
        )
    return (
        did_you_mean(rule.target, names)
        or f"parameters here: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
    )


# ----------------------------------------------------------------------------- streams


def module_seed(seed: int, name: str) -> int:
    """A seed for one module, from the build seed and its qualified name only."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class PerModuleStream:
    """`init_stream="per-module"`: each module draws from its own generator, so adding or
    removing a layer leaves every other layer's initial weights as they were."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __call__(self, name: str) -> Any:
        return _seeded(module_seed(self.seed, name))


class _seeded:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._fork: Any = None

    def __enter__(self) -> None:
        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        self._fork.__exit__(*exc)
