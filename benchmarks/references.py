"""Hand-written references in plain PyTorch, written the way a person writes them.

Each mirrors a spec exactly (module tree, `state_dict` keys, forward), so that the built
model can load the reference's weights with `strict=True` and the two are timed on the
same work. ResNet-18/-50 use torchvision's own models as the reference.
"""

from __future__ import annotations

from torch import nn

# --------------------------------------------------------------------------- MLP, U-Net, GPT
# Shared with the parity tests (examples/mnist_mlp.net, unet.net, gpt.net).
from tests.references import GPT as GPT
from tests.references import MnistMLP as MnistMLP
from tests.references import UNet as UNet

# --------------------------------------------------------------------------- ResNets
# examples/resnet18.net, resnet50.net and deeplabv3.net mirror torchvision's models.


def resnet18() -> nn.Module:
    import torchvision

    return torchvision.models.resnet18()


def resnet50() -> nn.Module:
    import torchvision

    return torchvision.models.resnet50()


def deeplabv3_resnet50() -> nn.Module:
    """examples/deeplabv3.net mirrors it."""
    import torchvision

    return torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, aux_loss=True
    )


# --------------------------------------------------------------------------- generated stacks


def stack_spec(layers: int, width: int = 16) -> str:
    """A `.net` Sequential of `layers` layers, alternating Linear and ReLU."""
    lines = ["net Stack = Sequential:", f"    input x: [N, {width}]"]
    for i in range(layers):
        lines.append(f"    Linear({width}, {width})" if i % 2 == 0 else "    ReLU()")
    return "\n".join(lines) + "\n"
