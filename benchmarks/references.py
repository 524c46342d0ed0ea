"""Hand-written references in plain PyTorch, written the way a person writes them.

Each mirrors a spec exactly (module tree, `state_dict` keys, forward), so that the built
model can load the reference's weights with `strict=True` and the two are timed on the
same work. ResNet-18/-50 use torchvision's own models as the reference.
"""

from __future__ import annotations

import torch
from torch import nn

# --------------------------------------------------------------------------- S1: MNIST MLP
# examples/mnist_mlp.net


class MnistMLP(nn.Module):
    def __init__(self, hidden: int = 512, n_classes: int = 10) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.layer3 = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.layer4 = nn.Sequential(nn.Linear(hidden, n_classes), nn.Softmax(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


# --------------------------------------------------------------------------- U-Net, GPT
# Shared with the parity tests (examples/unet.net, examples/gpt.net).

from tests.references import GPT as GPT  # noqa: E402
from tests.references import UNet as UNet  # noqa: E402

# --------------------------------------------------------------------------- ResNets
# benchmarks/specs/resnet18.net and resnet50.net mirror torchvision's models.


def resnet18() -> nn.Module:
    import torchvision

    return torchvision.models.resnet18()


def resnet50() -> nn.Module:
    import torchvision

    return torchvision.models.resnet50()


# --------------------------------------------------------------------------- generated stacks


def stack_spec(layers: int, width: int = 16) -> str:
    """A `.net` Sequential of `layers` layers, alternating Linear and ReLU."""
    lines = ["net Stack = Sequential:", f"    input x: [N, {width}]"]
    for i in range(layers):
        lines.append(f"    Linear({width}, {width})" if i % 2 == 0 else "    ReLU()")
    return "\n".join(lines) + "\n"
