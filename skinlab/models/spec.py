"""What the rest of skinlab needs to know about one model, written once: :class:`ModelSpec`.

Each architecture module (``lenet``, ``resnet``, ``efficientnet``) defines the spec of its models
next to the code the spec points into; :mod:`skinlab.models.registry` lists them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Optional, Union

from torch import nn

from skinlab.models.freezing import freeze_all_but

# Statistics of ImageNet ([0, 1] RGB) that torchvision's pretrained weights expect. Also the
# presets' default normalisation for natural images (skinlab.presets reads them from here).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Stats = Optional[tuple[tuple[float, ...], tuple[float, ...]]]


@dataclass(frozen=True)
class ModelSpec:
    """One model of the course.

    - ``name``: the value of ``skinlab train --model``.
    - ``model_class``: the class ``builder`` returns, or its dotted name (imported only when
      needed, e.g. ``"torchvision.models.ResNet"``); it tells which spec a model belongs to.
    - ``builder(num_classes, pretrained, allow_random_init)``: the model, with a
      ``num_classes`` head, returning logits.
    - ``input_size``: side in pixels the model was designed or pretrained for.
    - ``stats``: ``(mean, std)`` to normalise [0, 1] images; None = measure them on the training
      split (``skinlab.presets.measure_mean_std``).
    - ``target_layer``: dotted path of the module whose output is the last convolutional feature
      map after its activation (the usual Grad-CAM target).
    - ``head``: dotted path of the final ``nn.Linear`` (the part replaced for a new task).
    - ``cpu_channels_last``: train channels-last on CPU too (measured faster; always on CUDA).
    """

    name: str
    model_class: Union[type, str]
    builder: Callable[[int, bool, bool], nn.Module]
    input_size: int
    stats: Stats
    target_layer: str
    head: str
    cpu_channels_last: bool = False

    def build(self, num_classes: int = 7, pretrained: bool = True, allow_random_init: bool = False,
              freeze_backbone: bool = False) -> nn.Module:
        """The model; with ``freeze_backbone`` only its head trains (see ``freeze_backbone``)."""
        check_num_classes(num_classes)
        model = self.builder(num_classes, pretrained, allow_random_init)
        if freeze_backbone:
            freeze_all_but(model, self.head_of(model))
        return model

    def owns(self, model: nn.Module) -> bool:
        """Whether ``model`` is an instance of this spec's class."""
        cls = self.model_class
        if isinstance(cls, str):
            module, _, name = cls.rpartition(".")
            cls = getattr(importlib.import_module(module), name)
        return isinstance(model, cls)

    def head_of(self, model: nn.Module) -> nn.Linear:
        return model.get_submodule(self.head)

    def target_layer_of(self, model: nn.Module) -> nn.Module:
        return model.get_submodule(self.target_layer)


def check_num_classes(num_classes) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
