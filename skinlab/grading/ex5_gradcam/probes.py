"""Exercise 5 probes: ``grad_cam`` on seeded models and images (worker side, no skinlab).

The models are built here from a seed, so the worker (where ``skinlab`` is not importable) and
the judge build the same ones: :class:`LeNet5` has exactly the layer layout of
``skinlab.models.LeNet`` (same modules, created in the same order, so ``torch.manual_seed(s)``
gives both the same weights and a state_dict maps 1:1; a unit test checks their outputs agree),
:func:`tiny_cnn` is the small CNN. The judge builds the reference model from
``skinlab.models.LeNet`` itself and computes the expected heat map there; this module only
reports what the student's ``grad_cam`` returned and what it left behind on the model.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ..probe_base import answer, type_name

NAME = "grad_cam"
LENET_CLASSES = 7
TINY_CLASSES = 3
TINY_SIZE = (12, 16)  # the visible tests' non-square image
MAX_VALUES = 1 << 16  # elements of a returned map sent back (the maps are at most 32x32)


class LeNet5(nn.Module):
    """``skinlab.models.LeNet``'s layout (features.conv1 … classifier.fc3), without its checks."""

    def __init__(self, num_classes: int = LENET_CLASSES):
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, 6, kernel_size=5), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(6, 16, kernel_size=5), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
        ))
        self.classifier = nn.Sequential(OrderedDict(
            fc1=nn.Linear(16 * 5 * 5, 120), relu3=nn.ReLU(), fc2=nn.Linear(120, 84), relu4=nn.ReLU(),
            fc3=nn.Linear(84, num_classes),
        ))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def lenet(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return LeNet5(LENET_CLASSES).eval()


def tiny_cnn(seed: int) -> nn.Module:
    """conv(3→4, 3x3, pad 1) → ReLU → conv(4→5, 3x3) → ReLU → global average → linear(5→3)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, TINY_CLASSES),
    ).eval()


def image_size(kind: str, size=None) -> tuple[int, int]:
    """(H, W) of the case's image: LeNet takes 32x32 only; the small CNN any size ≥ 3x3."""
    if kind == "lenet":
        if size is not None and tuple(size) != (32, 32):
            raise ValueError(f"LeNet takes 32x32 images, not {tuple(size)}")
        return 32, 32
    if kind != "tiny":
        raise ValueError(f"unknown model kind {kind!r} (lenet or tiny)")
    height, width = TINY_SIZE if size is None else (int(size[0]), int(size[1]))
    if min(height, width) < 3:
        raise ValueError(f"the small CNN needs images of at least 3x3, not {height}x{width}")
    return height, width


def describe_case(kind: str, size=None) -> str:
    height, width = image_size(kind, size)
    if kind == "lenet":
        return "LeNet, target layer features.conv2, a 3x32x32 image"
    return f"a small CNN, target layer its 2nd conv, a 3x{height}x{width} image"


def image(kind: str, seed: int, size=None) -> torch.Tensor:
    height, width = image_size(kind, size)
    return torch.randn(3, height, width, generator=torch.Generator().manual_seed(seed))


def cam_inputs(kind: str, seed: int, size=None, model: nn.Module | None = None):
    """(model, image (3, H, W), target layer, description). ``model``: one built elsewhere with
    this layout (the judge passes ``skinlab.models.LeNet``); default: built here."""
    if model is None:
        model = lenet(seed) if kind == "lenet" else tiny_cnn(seed)
    layer = model.features.conv2 if kind == "lenet" else model[2]
    return model, image(kind, seed, size), layer, describe_case(kind, size)


def hook_counts(model) -> list:
    """Hooks per module (forward, forward-pre, backward, backward-pre), then the global ones."""
    from torch.nn.modules import module as torch_module

    counts = [[len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
               len(getattr(m, "_backward_pre_hooks", {}))] for m in model.modules()]
    counts.append([len(getattr(torch_module, name, {})) for name in (
        "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
        "_global_backward_pre_hooks")])
    return counts


def describe(result) -> dict:
    """What the judge needs of a returned heat map: its type, shape, dtype and values."""
    seen = {"type": type_name(result), "tensor": isinstance(result, torch.Tensor),
            "ndarray": isinstance(result, np.ndarray), "shape": None, "dtype": "", "values": None}
    if seen["ndarray"]:
        seen["shape"], seen["dtype"] = [int(n) for n in result.shape], str(result.dtype)
        if result.size <= MAX_VALUES and (result.dtype.kind in "biuf"):
            seen["values"] = np.array(result, dtype=np.float64)
    return seen


def cam(call, answers, kind: str = "lenet", seed: int = 0, classes=(1,), size=None) -> dict:
    """``grad_cam`` on one model, once per entry of ``classes`` (None: no class_idx argument),
    each time on a fresh copy of the image. Reports each map, the hooks on every module before
    the first call and after the last, whether any parameter got a ``.grad`` and which modules'
    ``training`` flags differ afterwards (the model is built in eval mode)."""
    fn = answer(answers, NAME)
    model, img, layer, what = cam_inputs(kind, seed, size)
    hooks_before = hook_counts(model)
    modes_before = [m.training for m in model.modules()]
    maps = []
    for class_idx in classes:
        if class_idx is None:
            result = call(NAME, fn, model, img.clone(), layer, _on=what)
        else:
            result = call(NAME, fn, model, img.clone(), layer, int(class_idx),
                          _on=f"{what}, class_idx={class_idx}")
        maps.append(describe(result))
    modes_after = [m.training for m in model.modules()]
    return {"maps": maps, "hooks_before": hooks_before, "hooks_after": hook_counts(model),
            "param_grads": any(p.grad is not None for p in model.parameters()),
            "modes_changed": [i for i, (a, b) in enumerate(zip(modes_before, modes_after)) if a != b]}
