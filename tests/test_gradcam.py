"""Tests for skinlab.gradcam: pytorch-grad-cam as the oracle, plus hygiene and mask scoring."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from skinlab.data import load_mask
from skinlab.gradcam import (
    ActivationsAndGradients,
    cam_mask_score,
    grad_cam,
)
from skinlab.heatmap import overlay

torch.set_num_threads(1)


class InlineLeNet(nn.Module):
    """LeNet-5 per the course spec; used when skinlab.models.LeNet is unavailable."""

    def __init__(self, num_classes: int = 7, inplace: bool = False):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 6, 5),
                relu1=nn.ReLU(inplace=inplace),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(6, 16, 5),
                relu2=nn.ReLU(inplace=inplace),
                pool2=nn.MaxPool2d(2),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(400, 120),
                relu3=nn.ReLU(),
                fc2=nn.Linear(120, 84),
                relu4=nn.ReLU(),
                fc3=nn.Linear(84, num_classes),
            )
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


try:  # the package's LeNet when it exists, else the inline copy
    from skinlab.models import LeNet as PackageLeNet
    from skinlab.models import default_target_layer
except ImportError:  # pragma: no cover - depends on the state of skinlab.models
    PackageLeNet, default_target_layer = None, None


def make_lenet(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    if PackageLeNet is not None:
        model = PackageLeNet(num_classes=7)
        return model, default_target_layer(model)
    model = InlineLeNet()
    return model, model.features.relu2


def make_resnet18(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None, num_classes=7)


def image(seed: int, height: int, width: int) -> torch.Tensor:
    return torch.randn(3, height, width, generator=torch.Generator().manual_seed(seed))


def all_hooks_empty(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        and not m._backward_pre_hooks
        for m in model.modules()
    )


@pytest.fixture(scope="module")
def oracle():
    """pytorch-grad-cam's GradCAM as a function (model, layer, x, class_idx) -> (H, W)."""
    pgc = pytest.importorskip("pytorch_grad_cam", reason="grad-cam (the oracle) not installed")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def run(model, layer, x, class_idx):
        targets = None if class_idx is None else [ClassifierOutputTarget(class_idx)]
        with pgc.GradCAM(model, target_layers=[layer]) as cam:
            return cam(input_tensor=x[None], targets=targets)[0]

    return run


# --------------------------------------------------------------------------- oracle comparisons


@pytest.mark.parametrize("class_idx", [None, 2, 6])
def test_matches_pytorch_grad_cam_on_lenet(oracle, class_idx):
    model, layer = make_lenet()
    x = image(1, 32, 32)
    ours = grad_cam(model, x, layer, class_idx)
    ref = oracle(model, layer, x, class_idx)
    assert ours.shape == ref.shape == (32, 32)
    assert ours.max() > 0.99  # a real map, not all zeros: the comparison means something
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(64, 64), (96, 80)])
@pytest.mark.parametrize("class_idx", [None, 4])
def test_matches_pytorch_grad_cam_on_resnet18(oracle, size, class_idx):
    model = make_resnet18()
    x = image(2, *size)
    ours = grad_cam(model, x, model.layer4[-1], class_idx)
    ref = oracle(model, model.layer4[-1], x, class_idx)
    assert ours.shape == ref.shape == size
    assert ours.max() > 0.99
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def test_none_means_predicted_class():
    model = make_resnet18()
    x = image(3, 64, 64)
    with torch.no_grad():
        predicted = int(model.eval()(x[None]).argmax())
    # A class other than the predicted one gives a different map, so the check can fail.
    other = (predicted + 1) % 7
    cam_none = grad_cam(model, x, model.layer4[-1])
    assert np.array_equal(cam_none, grad_cam(model, x, model.layer4[-1], predicted))
    assert not np.allclose(cam_none, grad_cam(model, x, model.layer4[-1], other))


def test_hand_computed_cam_with_inplace_relu_after_target():
    """conv2 feeds an in-place ReLU: the map must use conv2's own output and gradient."""
    torch.manual_seed(5)
    model = InlineLeNet(inplace=True).eval()
    x = image(5, 32, 32)
    ours = grad_cam(model, x, model.features.conv2, class_idx=1)

    # Independent computation: split the network at conv2 by hand.
    f = model.features
    acts = f.conv2(f.pool1(f.relu1(f.conv1(x[None])))).detach().requires_grad_(True)
    logits = model.classifier(torch.flatten(f.pool2(torch.relu(acts)), 1))
    (grads,) = torch.autograd.grad(logits[0, 1], acts)
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True)).detach()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    cam = nn.functional.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    np.testing.assert_allclose(ours, cam[0, 0].numpy(), atol=1e-6)


# --------------------------------------------------------------------------- output contract


def test_output_shape_dtype_range_for_batched_and_unbatched_input():
    model = make_resnet18()
    x = image(4, 48, 72)
    cam = grad_cam(model, x, model.layer4[-1], 0)
    assert cam.shape == (48, 72) and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() <= 1
    assert cam.min() == pytest.approx(0, abs=1e-6) and cam.max() == pytest.approx(1, abs=1e-5)
    np.testing.assert_array_equal(cam, grad_cam(model, x[None], model.layer4[-1], 0))


# --------------------------------------------------------------------------- hygiene


def test_hooks_removed_after_call():
    model = make_resnet18()
    grad_cam(model, image(0, 64, 64), model.layer4[-1], 1)
    assert all_hooks_empty(model)


class Boom(RuntimeError):
    pass


class FailsAfterTarget(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        self.conv(x)
        raise Boom("forward failed")


def test_hooks_removed_and_mode_restored_when_forward_raises():
    model = FailsAfterTarget().train()
    with pytest.raises(Boom):
        grad_cam(model, image(0, 8, 8), model.conv)
    assert all_hooks_empty(model)
    assert model.training and model.conv.training


def test_context_manager_removes_hook_on_exception():
    model, layer = make_lenet()
    with pytest.raises(Boom):
        with ActivationsAndGradients(model, layer) as hooks:
            assert len(layer._forward_hooks) == 1
            hooks(image(0, 32, 32)[None])
            raise Boom("inside the with block")
    assert all_hooks_empty(model)


def test_context_manager_captures_activations_and_gradients():
    model, layer = make_lenet()
    with ActivationsAndGradients(model, layer) as hooks:
        logits = hooks(image(0, 32, 32)[None])
        grads = hooks.compute_gradients(logits[0, 3])
    assert hooks.activations.shape == grads.shape == (1, 16, 10, 10)
    assert all(p.grad is None for p in model.parameters())


def test_modes_restored_exactly_and_computed_in_eval_mode():
    model = make_resnet18().train()
    model.layer1.eval()  # mixed modes (e.g. a frozen block) must come back as they were
    modes = {name: m.training for name, m in model.named_modules()}
    running_mean = model.bn1.running_mean.clone()
    x = image(6, 64, 64)
    first = grad_cam(model, x, model.layer4[-1], 2)
    assert {name: m.training for name, m in model.named_modules()} == modes
    # Train-mode BatchNorm would update running stats and depend on the batch of one.
    assert torch.equal(model.bn1.running_mean, running_mean)
    eval_cam = grad_cam(model.eval(), x, model.layer4[-1], 2)
    np.testing.assert_array_equal(first, eval_cam)


def test_dropout_is_off_during_computation():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 3),
    ).train()
    x = image(7, 16, 16)
    cams = [grad_cam(model, x, model[1], 0) for _ in range(3)]
    assert all(np.array_equal(cams[0], c) for c in cams[1:])
    assert model.training and model[2].training


def test_parameter_grads_and_requires_grad_untouched():
    model = make_resnet18().train()
    params = list(model.parameters())
    # An accumulated gradient on half the parameters, None on the rest, one frozen parameter.
    for i, p in enumerate(params):
        if i % 2 == 0:
            p.grad = torch.full_like(p, float(i))
    params[1].requires_grad_(False)
    before = [(p.grad, None if p.grad is None else p.grad.clone(), p.requires_grad) for p in params]
    grad_cam(model, image(8, 64, 64), model.layer4[-1], 3)
    for p, (grad_obj, grad_val, req) in zip(params, before):
        assert p.requires_grad == req
        if grad_obj is None:
            assert p.grad is None
        else:
            assert p.grad is grad_obj and torch.equal(p.grad, grad_val)


def test_input_tensor_not_modified():
    model, layer = make_lenet()
    x = image(9, 32, 32).requires_grad_(True)
    copy = x.detach().clone()
    grad_cam(model, x, layer, 0)
    assert torch.equal(x.detach(), copy)
    assert x.grad is None and x.requires_grad


def test_frozen_backbone_and_outer_no_grad_give_the_same_map():
    model = make_resnet18()
    x = image(10, 64, 64)
    reference = grad_cam(model, x, model.layer4[-1], 5)
    with torch.no_grad():
        under_no_grad = grad_cam(model, x, model.layer4[-1], 5)
    for p in model.parameters():
        p.requires_grad_(False)
    frozen = grad_cam(model, x, model.layer4[-1], 5)
    assert not any(p.requires_grad for p in model.parameters())
    np.testing.assert_array_equal(under_no_grad, reference)
    np.testing.assert_allclose(frozen, reference, atol=1e-6)
    assert reference.max() > 0.99


# --------------------------------------------------------------------------- bad input


def test_class_idx_out_of_range_names_valid_range():
    model, layer = make_lenet()
    for bad in (7, -1, 100):
        with pytest.raises(ValueError, match=r"valid range 0\.\.6"):
            grad_cam(model, image(0, 32, 32), layer, bad)
    with pytest.raises(ValueError, match="class_idx"):
        grad_cam(model, image(0, 32, 32), layer, True)
    assert all_hooks_empty(model) and model.training  # a fresh model is in train mode


def test_target_layer_not_in_model():
    model, _ = make_lenet()
    stranger = nn.Conv2d(6, 16, 5)
    with pytest.raises(ValueError, match="not a submodule"):
        grad_cam(model, image(0, 32, 32), stranger)
    with pytest.raises(ValueError, match="not a submodule"):
        ActivationsAndGradients(model, stranger)


def test_bad_image_shapes_and_layers():
    model, layer = make_lenet()
    with pytest.raises(ValueError, match="shape"):
        grad_cam(model, torch.zeros(2, 3, 32, 32), layer)
    with pytest.raises(ValueError, match="shape"):
        grad_cam(model, torch.zeros(32, 32), layer)
    with pytest.raises(ValueError, match="float"):
        grad_cam(model, torch.zeros(3, 32, 32, dtype=torch.uint8), layer)
    with pytest.raises(TypeError, match="Tensor"):
        grad_cam(model, np.zeros((3, 32, 32), np.float32), layer)
    fc = model.classifier[0] if isinstance(model.classifier, nn.Sequential) else None
    if fc is not None:
        with pytest.raises(ValueError, match=r"\(N, K, h, w\)"):
            grad_cam(model, image(0, 32, 32), fc)
    assert all_hooks_empty(model)


def test_layer_run_twice_or_never_is_rejected():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.unused = nn.Conv2d(3, 3, 1)
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            return self.head(self.conv(self.conv(x)).mean(dim=(2, 3)))

    model = Twice()
    with pytest.raises(ValueError, match="ran 2 times"):
        grad_cam(model, image(0, 8, 8), model.conv)
    with pytest.raises(ValueError, match="not run"):
        grad_cam(model, image(0, 8, 8), model.unused)
    assert all_hooks_empty(model)


# --------------------------------------------------------------------------- cam_mask_score


def test_cam_mask_score_hand_computed():
    cam = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert cam_mask_score(cam, np.ones((2, 2), bool)) == 1.0
    assert cam_mask_score(cam, np.zeros((2, 2), bool)) == 0.0
    # Left column: (1 + 3) / 10; a uint8 0/255 mask works the same.
    assert cam_mask_score(cam, np.array([[255, 0], [255, 0]], np.uint8)) == pytest.approx(0.4)
    assert cam_mask_score(cam, np.array([[0, 1], [0, 0]], bool)) == pytest.approx(0.2)


def test_uniform_cam_scores_the_lesion_area_fraction():
    mask = np.zeros((30, 40), bool)
    mask[5:20, 10:22] = True  # 180 of 1200 pixels
    assert cam_mask_score(np.full((30, 40), 0.3), mask) == pytest.approx(180 / 1200)


def test_cam_mask_score_resizes_mask_nearest_and_accepts_pil():
    cam = np.array([[1.0, 2.0], [3.0, 4.0]])
    big = np.zeros((6, 8), np.uint8)
    big[:3, :4] = 255  # top-left quadrant of a larger mask -> top-left cam pixel
    assert cam_mask_score(cam, big) == pytest.approx(0.1)
    assert cam_mask_score(cam, Image.fromarray(big)) == pytest.approx(0.1)
    # Smaller mask upsampled onto a 4x4 cam: its right column covers cam columns 2-3.
    cam4 = np.arange(16, dtype=float).reshape(4, 4)
    small = np.array([[0, 1], [0, 1]], bool)
    expected = cam4[:, 2:].sum() / cam4.sum()
    assert cam_mask_score(cam4, small) == pytest.approx(expected)


def test_cam_mask_score_zero_cam_and_bad_input():
    assert cam_mask_score(np.zeros((4, 4)), np.ones((4, 4), bool)) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        cam_mask_score(np.array([[-1.0, 2.0]]), np.ones((1, 2), bool))
    with pytest.raises(ValueError, match="NaN"):
        cam_mask_score(np.array([[np.nan, 2.0]]), np.ones((1, 2), bool))
    with pytest.raises(ValueError, match="2-D"):
        cam_mask_score(np.ones((2, 2)), np.ones((2, 2, 3), bool))
    with pytest.raises(ValueError, match="2-D"):
        cam_mask_score(np.ones((2, 2, 1)), np.ones((2, 2), bool))


def test_load_mask_reads_white_as_lesion(tmp_path):
    pixels = np.zeros((45, 60), np.uint8)
    pixels[10:30, 20:50] = 255
    path = tmp_path / "ISIC_0000000_segmentation.png"
    Image.fromarray(pixels).save(path)
    mask = load_mask(path)
    assert mask.dtype == bool and mask.shape == (45, 60)
    np.testing.assert_array_equal(mask, pixels == 255)
    with pytest.raises(FileNotFoundError, match="ISIC_missing"):
        load_mask(tmp_path / "ISIC_missing_segmentation.png")


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_ham10000_mask_and_cam():
    from skinlab.data import ENV_VAR

    root = os.environ.get(ENV_VAR)
    if not root:
        pytest.skip(f"{ENV_VAR} is not set")
    root = Path(root)
    mask_dir = root / "HAM10000_segmentations_lesion_tschandl"
    mask_path = next(iter(sorted(mask_dir.glob("ISIC_*_segmentation.png"))), None)
    if mask_path is None:
        pytest.skip(f"no segmentation masks in {mask_dir}")
    image_id = mask_path.name.removesuffix("_segmentation.png")
    image_path = next(root.glob(f"HAM10000_images_part_*/{image_id}.jpg"), None)
    if image_path is None:
        pytest.skip(f"{image_id}.jpg not found under {root}")

    mask = load_mask(mask_path)
    assert mask.ndim == 2 and mask.dtype == bool
    assert 0 < mask.mean() < 1  # a lesion and some skin
    with Image.open(image_path) as img:
        rgb_img = img.convert("RGB")
    # The mask covers the image's field of view: same aspect ratio.
    assert mask.shape[1] / mask.shape[0] == pytest.approx(rgb_img.width / rgb_img.height, rel=0.02)

    # A CAM that is the mask itself (downsized the same way) is all on the lesion; its
    # complement is all off it; a smooth (bicubic) copy is mostly on it.
    mask_img = Image.fromarray(mask.astype(np.uint8) * 255)
    small = np.asarray(mask_img.resize((32, 24), Image.Resampling.NEAREST)) / 255.0
    assert cam_mask_score(small, mask) == 1.0
    assert cam_mask_score(1 - small, mask) == 0.0
    smooth = np.clip(np.asarray(mask_img.resize((32, 24), Image.Resampling.BICUBIC)) / 255, 0, 1)
    assert cam_mask_score(smooth, mask) > 0.9

    model, layer = make_lenet()
    rgb = np.asarray(rgb_img.resize((32, 32)), dtype=np.float32) / 255
    x = (torch.from_numpy(rgb).permute(2, 0, 1) - 0.5) / 0.25
    cam = grad_cam(model, x, layer)
    score = cam_mask_score(cam, mask)
    assert 0.0 <= score <= 1.0
    shown = overlay(rgb, cam)
    assert shown.shape == (32, 32, 3) and 0 <= shown.min() and shown.max() <= 1
