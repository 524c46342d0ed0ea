"""The torch.nn internals fenced in dsl/torchlib/nn_private.py still behave as netdsl assumes.

If one of these fails after a torch upgrade, fix nn_private.py (and only it).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dsl.torchlib import nn_private


def test_base_classes_cover_the_layers() -> None:
    assert all(
        issubclass(cls, nn_private.BatchNorm)
        for cls in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
    )
    assert all(
        issubclass(cls, nn_private.InstanceNorm)
        for cls in (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
    )
    assert not issubclass(nn.InstanceNorm2d, nn_private.BatchNorm)
    assert all(
        issubclass(cls, nn_private.ConvNd)
        for cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
    )


def test_norm_input_checks() -> None:
    nn_private.check_input_dim(nn.BatchNorm2d(3), torch.empty(2, 3, 4, 4))
    with pytest.raises(ValueError, match="4D input"):
        nn_private.check_input_dim(nn.BatchNorm2d(3), torch.empty(2, 3))
    with pytest.raises(ValueError):
        nn_private.check_input_dim(nn.InstanceNorm2d(3), torch.empty(3, 4))
    assert nn_private.no_batch_dim(nn.InstanceNorm1d(3)) == 2
    assert nn_private.no_batch_dim(nn.InstanceNorm2d(3)) == 3
    assert nn_private.no_batch_dim(nn.InstanceNorm3d(3)) == 4


def test_registration_hooks_are_seen() -> None:
    hooks = nn_private.MODULE_REGISTRATION_HOOKS
    assert isinstance(hooks, dict)
    assert not hooks
    seen = []
    handle = nn.modules.module.register_module_module_registration_hook(
        lambda module, name, child: seen.append(name)
    )
    try:
        assert hooks  # the dict the compiler checks is the one torch fills
        nn.Sequential().add_module("a", nn.ReLU())
    finally:
        handle.remove()
    assert seen == ["a"] and not hooks


def test_child_and_tensor_registration() -> None:
    module = nn.Linear(2, 3)
    module.register_buffer("scale", torch.ones(1), persistent=False)
    module.register_parameter("extra", None)
    assert nn_private.owns_tensor(module, "weight")
    assert nn_private.owns_tensor(module, "scale")
    assert nn_private.owns_tensor(module, "extra")  # a None parameter still takes the name
    assert not nn_private.owns_tensor(module, "relu")
    child = nn.ReLU()
    nn_private.set_child(module, "relu", child)
    assert module.get_submodule("relu") is child
    assert [name for name, _ in module.named_children()] == ["relu"]
    assert module.relu is child


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Conv2d(3, 8, 3, stride=2),
        lambda: nn.BatchNorm2d(8),
        lambda: nn.Linear(4, 5, bias=False),
        lambda: nn.LayerNorm(6),
    ],
)
def test_a_leaf_copy_is_a_new_instance_sharing_only_tensors(make: object) -> None:
    with torch.device("meta"):
        original = make()  # type: ignore[operator]
    copy = nn_private.leaf_copy(original)
    assert copy is not None and type(copy) is type(original) and copy is not original
    assert repr(copy) == repr(original)
    assert list(copy.state_dict()) == list(original.state_dict())
    if isinstance(original, nn.Conv2d):
        x = torch.empty(2, 3, 9, 9, device="meta")
        assert copy(x).shape == original(x).shape == (2, 8, 4, 4)
    # what surgery and shape-following do to the copy leaves the original as it was
    copy.training = False
    copy.marked = True
    handle = copy.register_forward_pre_hook(lambda *_: None)
    for p in copy.parameters():
        p.requires_grad_(False)
    assert original.training and not hasattr(original, "marked")
    assert not original._forward_pre_hooks and len(copy._forward_pre_hooks) == 1
    assert all(p.requires_grad for p in original.parameters())
    handle.remove()


def test_a_module_with_children_is_not_leaf_copied() -> None:
    assert nn_private.leaf_copy(nn.Sequential(nn.ReLU())) is None
