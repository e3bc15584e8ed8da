"""Exercise 5 checks: ``grad_cam`` (chapter 10, ``skinlab.gradcam``)."""

from __future__ import annotations

import numpy as np

from .guard import _construct, call, own_work

def _tiny_cnn(seed: int):
    """conv(3→4, 3x3, pad 1) → ReLU → conv(4→5, 3x3) → ReLU → global average → linear(5→3)."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3),
    ).eval()


def _cam_case(kind: str, seed: int):
    """(model, image (3, H, W), target layer, description)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    if kind == "lenet":
        from skinlab.models import LeNet

        torch.manual_seed(seed)
        model = LeNet(7).eval()
        return model, torch.randn(3, 32, 32, generator=g), model.features.conv2, "LeNet, target layer features.conv2, a 3x32x32 image"
    model = _tiny_cnn(seed)
    return model, torch.randn(3, 12, 16, generator=g), model[2], "a small CNN, target layer its 2nd conv, a 3x12x16 image"


def _hook_counts(model):
    return [
        (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
         len(getattr(m, "_backward_pre_hooks", {})))
        for m in model.modules()
    ]


def _cam_variant(model, image, layer, class_idx, relu=True, align_corners=False, softmax=False):
    """Grad-CAM by hand, with optional classic mistakes (to name the student's)."""
    import torch
    import torch.nn.functional as F

    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        logits = model(image.unsqueeze(0))
    finally:
        handle.remove()
    scores = torch.softmax(logits, 1) if softmax else logits
    (grad,) = torch.autograd.grad(scores[0, class_idx], store["a"])
    with torch.no_grad():
        cam = (grad.mean((2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True)
        if relu:
            cam = cam.clamp_min(0)
        cam = (cam - cam.min()) / (1e-7 + (cam - cam.min()).max())
        cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=align_corners)
        cam = (cam - cam.min()) / (1e-7 + (cam - cam.min()).max())
    return cam[0, 0].numpy()


def _run_cam(fn, model, image, layer, class_idx, what):
    import torch

    if class_idx is None:
        result = call("grad_cam", fn, model, image.clone(), layer, _on=what)
    else:
        result = call("grad_cam", fn, model, image.clone(), layer, class_idx, _on=f"{what}, class_idx={class_idx}")
    if isinstance(result, torch.Tensor):
        raise AssertionError("grad_cam should return a numpy array (use .detach().cpu().numpy()); got a tensor")
    if not isinstance(result, np.ndarray):
        raise AssertionError(f"grad_cam should return a numpy array (H, W); got {type(result).__name__}")
    want = tuple(image.shape[-2:])
    if result.shape != want:
        raise AssertionError(
            f"for {what} the heat map should have the image's shape (H, W) = {want}; yours is "
            f"{result.shape}: upsample the CAM to the input's height and width (in that order)"
        )
    if not np.isfinite(result).all():
        raise AssertionError(f"the heat map for {what} contains NaN or infinite values: add a small eps (1e-7) when dividing")
    if result.min() < -1e-6:
        raise AssertionError(
            f"the heat map has negative values (minimum {result.min():.3g}): apply ReLU to the "
            "weighted sum of activation maps before normalising, then min-max scale to [0, 1]"
        )
    if result.max() > 1 + 1e-5:
        raise AssertionError(f"the heat map should lie in [0, 1]; its maximum is {result.max():.4g}: min-max normalise it")
    return result


def check_cam_output(grad_cam, kind: str = "lenet", seed: int = 0):
    """A numpy array with the image's (H, W), values in [0, 1], maximum 1."""
    own_work("grad_cam", grad_cam)
    model, image, layer, what = _cam_case(kind, seed)
    cam = _run_cam(grad_cam, model, image, layer, 1, what)
    if cam.max() < 1 - 1e-4 and cam.max() > 0:
        raise AssertionError(f"the heat map's maximum is {cam.max():.4g}: min-max normalise so that it reaches 1")


def check_cam_matches(grad_cam, kind: str = "lenet", seed: int = 0, class_idx: int | None = 1):
    """Equal to the reference Grad-CAM (as pytorch-grad-cam computes it) to 1e-5."""
    from skinlab.gradcam import grad_cam as reference_grad_cam

    own_work("grad_cam", grad_cam)
    model, image, layer, what = _cam_case(kind, seed)
    target = class_idx
    if target is None:
        import torch

        with torch.no_grad():
            target = int(model(image.unsqueeze(0)).argmax())
    want = reference_grad_cam(model, image.clone(), layer, target)
    got = _run_cam(grad_cam, model, image, layer, class_idx, what)
    diff = float(np.abs(got - want).max())
    if diff <= 1e-5:
        return
    hint = ""
    for variant, message in (
        (dict(relu=False), "apply ReLU to the weighted sum of activation maps before normalising: "
         "only positive evidence for the class belongs in the map"),
        (dict(align_corners=True), "upsample with F.interpolate(..., mode='bilinear', align_corners=False)"),
        (dict(softmax=True), "take the gradient of the raw logit of the class, not of its softmax probability"),
    ):
        if np.abs(got - _cam_variant(model, image, layer, target, **variant)).max() < 1e-4:
            hint = " Fix: " + message + "."
            break
    raise AssertionError(
        f"for {what} and class {target} your heat map differs from Grad-CAM's by up to {diff:.3g} "
        "(at most 1e-5 allowed). Recipe: weights = spatial mean of d logit / d activations per "
        "channel; cam = ReLU(sum of weights x activations); min-max; bilinear upsample "
        "(align_corners=False); min-max again." + hint
    )


def check_cam_argmax(grad_cam, kind: str = "lenet", seed: int = 0):
    """class_idx=None explains the predicted class (the argmax of the logits)."""
    import torch

    own_work("grad_cam", grad_cam)
    model, image, layer, what = _cam_case(kind, seed)
    with torch.no_grad():
        logits = model(image.unsqueeze(0))[0]
    top = int(logits.argmax())
    default = _run_cam(grad_cam, model, image, layer, None, what)
    explicit = _run_cam(grad_cam, model, image, layer, top, what)
    if np.abs(default - explicit).max() > 1e-5:
        raise AssertionError(
            f"with class_idx=None the heat map should explain the predicted class {top} (the "
            "argmax of the logits), i.e. equal grad_cam(..., class_idx={top}); yours differs"
        )


def check_cam_hooks_removed(grad_cam, kind: str = "lenet", seed: int = 0):
    """No hook stays registered on any module after grad_cam returns."""
    own_work("grad_cam", grad_cam)
    model, image, layer, what = _cam_case(kind, seed)
    before = _hook_counts(model)
    _run_cam(grad_cam, model, image, layer, 0, what)
    _run_cam(grad_cam, model, image, layer, 1, what)
    if _hook_counts(model) != before:
        raise AssertionError(
            "hooks are still registered on the model after grad_cam returned: keep the handles "
            "returned by register_forward_hook / register_full_backward_hook and call "
            ".remove() on each (in a finally: block), else every later forward pass runs them again"
        )
