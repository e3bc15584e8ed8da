"""ResNet-18 transfer learning (chapter 11): torchvision's network and ImageNet weights.

The weights come from torchvision's cache, with one short download attempt when they are not
there; never silently from the internet otherwise.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from skinlab.models import weights
from skinlab.models.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec

RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


def resnet18_weights_path() -> Path:
    """Where torchvision caches the ResNet-18 ImageNet weights (follows TORCH_HOME / hub dir)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_URL.rsplit("/", 1)[-1]


def _cached_weights() -> Path:
    path = resnet18_weights_path()
    if not path.is_file() and not weights.download_weights(RESNET18_URL, path):
        raise weights.WeightsUnavailableError(
            f"ResNet-18 ImageNet weights not found at {path} and could not be "
            f"downloaded. Download {RESNET18_URL} on a machine with internet and "
            f"copy it to exactly {path} (the cache follows TORCH_HOME), "
            "or pass allow_random_init=True to train from random weights"
        )
    return path


def _build(num_classes: int, pretrained: bool, allow_random_init: bool) -> nn.Module:
    import torchvision  # ~1 s to import: only when a ResNet is built

    model = torchvision.models.resnet18(weights=None)
    if pretrained:
        weights.load_pretrained(model, "resnet18", _cached_weights, allow_random_init)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def resnet18_transfer(
    num_classes: int = 7,
    pretrained: bool = True,
    allow_random_init: bool = False,
    freeze_backbone: bool = False,
):
    """torchvision ResNet-18 (ImageNet1K_V1 weights from the cache) with a new ``fc`` head.

    Looks for the weights file in torchvision's cache first, then tries one short download.
    Feed it images normalised with ``input_stats("resnet18")`` (ImageNet statistics).
    """
    return SPEC.build(num_classes, pretrained, allow_random_init, freeze_backbone)


SPEC = ModelSpec(
    name="resnet18",
    model_class="torchvision.models.ResNet",
    builder=_build,
    input_size=224,
    stats=(IMAGENET_MEAN, IMAGENET_STD),
    target_layer="layer4.1",  # the last BasicBlock, ending in ReLU
    head="fc",
    # Measured (docs/PERFORMANCE.md, 2 CPU cores): no gain from channels-last on CPU.
)
