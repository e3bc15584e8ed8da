"""LeNet-5 from scratch (chapter 6; the reference of exercise 3)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from skinlab.models.spec import ModelSpec, check_num_classes


class LeNet(nn.Module):
    """LeNet-5 for 3x32x32 images: ``features`` (two conv/ReLU/pool) then ``classifier`` (3 FC).

    61,751 parameters for 7 classes. Grad-CAM target: ``features.relu2`` (16x10x10).
    """

    input_size = 32  # the only size it accepts: two 5x5 convs and two 2x2 pools leave 16x5x5

    def __init__(self, num_classes: int = 7):
        super().__init__()
        check_num_classes(num_classes)
        # inplace=False everywhere: Grad-CAM hooks keep the activation tensors.
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 6, kernel_size=5),
                relu1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(6, 16, kernel_size=5),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(16 * 5 * 5, 120),
                relu3=nn.ReLU(),
                fc2=nn.Linear(120, 84),
                relu4=nn.ReLU(),
                fc3=nn.Linear(84, num_classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.input_size
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"LeNet expects a batch of shape (B, 3, {size}, {size}), got {tuple(x.shape)}"
            )
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(
                f"LeNet expects {size}x{size} images, got {x.shape[-2]}x{x.shape[-1]}: "
                f"resize to {size} (e.g. eval_transform({size}, ...)) before calling it"
            )
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


def _build(num_classes: int, pretrained: bool, allow_random_init: bool) -> LeNet:
    return LeNet(num_classes)  # no pretrained weights: trained from scratch


SPEC = ModelSpec(
    name="lenet",
    model_class=LeNet,
    builder=_build,
    input_size=LeNet.input_size,
    stats=None,  # measured on the training split
    target_layer="features.relu2",
    head="classifier.fc3",
)
