"""The models of the course by name, and what skinlab asks of a model, answered from its spec.

Adding a model: one module defining the network and its :class:`~skinlab.models.spec.ModelSpec`,
and one entry in :data:`SPECS`.
"""

from __future__ import annotations

import torch
from torch import nn

from skinlab.models import efficientnet, lenet, resnet
from skinlab.models.freezing import freeze_all_but
from skinlab.models.spec import ModelSpec

SPECS = (
    lenet.SPEC,
    resnet.SPEC,
    efficientnet.LITE0,
    efficientnet.LITE1,
    efficientnet.LITE2,
)
MODEL_SPECS = {spec.name: spec for spec in SPECS}
MODEL_NAMES = tuple(MODEL_SPECS)
CPU_CHANNELS_LAST = frozenset(spec.name for spec in SPECS if spec.cpu_channels_last)


def model_spec(name: str) -> ModelSpec:
    """The spec of model ``name`` (one of :data:`MODEL_NAMES`)."""
    try:
        return MODEL_SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown model name {name!r}; valid names: {', '.join(MODEL_NAMES)}"
        ) from None


def build_model(
    name: str,
    num_classes: int = 7,
    pretrained: bool = True,
    allow_random_init: bool = False,
    freeze_backbone: bool = False,
) -> nn.Module:
    """Build one of :data:`MODEL_NAMES`. LeNet has no pretrained weights (``pretrained`` ignored)."""
    return model_spec(name).build(num_classes, pretrained, allow_random_init, freeze_backbone)


def input_stats(name: str):
    """``(mean, std)`` to normalise [0, 1] images for ``name``; None for LeNet (measure them
    on the training split, e.g. with ``skinlab.presets.measure_mean_std``)."""
    return model_spec(name).stats


def default_input_size(name: str) -> int:
    """Side in pixels the model was designed/pretrained for (LeNet only accepts this size)."""
    return model_spec(name).input_size


def prefers_channels_last(name: str, device) -> bool:
    """Whether model ``name`` (and its input batches) should be channels-last on ``device``:
    always on CUDA (with AMP), on CPU where it was measured faster."""
    return torch.device(device).type == "cuda" or model_spec(name).cpu_channels_last


def spec_of(model: nn.Module) -> ModelSpec:
    """The spec of the architecture ``model`` is an instance of."""
    for spec in SPECS:
        if spec.owns(model):
            return spec
    raise TypeError(
        f"{type(model).__name__} is not a model built by skinlab.models ({', '.join(MODEL_NAMES)})"
    )


def default_target_layer(model: nn.Module) -> nn.Module:
    """Module whose output is the last convolutional feature map (after its activation):
    the usual Grad-CAM target. LeNet: ``features.relu2``; ResNet-18: ``layer4[-1]``
    (the last block, ending in ReLU); EfficientNet-Lite: ``_act_head``."""
    return spec_of(model).target_layer_of(model)


def head_module(model: nn.Module) -> nn.Linear:
    """The final classification layer (the part replaced for a new task)."""
    return spec_of(model).head_of(model)


def head_parameters(model: nn.Module) -> list:
    """Parameters of :func:`head_module` (e.g. for a larger learning rate on the head)."""
    return list(head_module(model).parameters())


def freeze_backbone(model: nn.Module) -> nn.Module:
    """Make only the head trainable (``requires_grad=False`` elsewhere), in place.

    BatchNorm layers of the backbone stay in eval mode even under ``model.train()``: they use
    and keep their pretrained running statistics. :func:`unfreeze_all` undoes both.
    Grad-CAM needs gradients at the target layer, which a fully frozen backbone does not
    produce: call :func:`unfreeze_all` first (or give the input ``requires_grad=True``).
    """
    return freeze_all_but(model, head_module(model))
