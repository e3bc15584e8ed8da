"""Grad-CAM: where in the image does the network look for a class?

Grad-CAM (Selvaraju et al., 2017) weights each channel ``A_k`` of a convolutional layer by the
spatial mean of the gradient of a class logit with respect to it, sums, keeps the positive part
and upsamples to the image::

    cam = minmax(resize(minmax(ReLU(sum_k mean_xy(dLogit/dA_k) * A_k))))

:func:`grad_cam` reproduces ``pytorch_grad_cam.GradCAM`` (grad-cam 1.5.7) to ~1e-6 without
depending on it, and leaves the model exactly as it found it: hooks removed, train/eval modes
restored, parameters' ``.grad`` and ``requires_grad`` untouched. :func:`cam_mask_score` measures
how much of the CAM falls on the lesion, using HAM10000's segmentation masks (read with
:func:`skinlab.data.load_mask`). Colouring a map over its image is :mod:`skinlab.heatmap` (as
pytorch-grad-cam keeps ``utils/image.py`` apart from the CAM methods).
"""

from __future__ import annotations

import operator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

__all__ = [
    "ActivationsAndGradients",
    "grad_cam",
    "cam_mask_score",
]

# pytorch-grad-cam's scale_cam_image: (x - min) / (1e-7 + max(x - min)).
_EPS = 1e-7


def _check_submodule(model: nn.Module, target_layer: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(target_layer, nn.Module):
        raise ValueError(
            f"target_layer must be a torch.nn.Module, got {type(target_layer).__name__}"
        )
    if not any(module is target_layer for module in model.modules()):
        raise ValueError(
            f"target_layer ({type(target_layer).__name__}) is not a submodule of the model "
            f"({type(model).__name__}); pass a layer of this model, e.g. model.layer4[-1]"
        )


class ActivationsAndGradients:
    """Context manager that captures one layer's output and its gradient.

    Inside ``with ActivationsAndGradients(model, layer) as hooks:``, ``logits = hooks(x)`` runs the
    model and stores the layer's output in ``hooks.activations`` (1, K, h, w);
    ``hooks.compute_gradients(score)`` stores d score / d activations in ``hooks.gradients``.
    The forward hook is removed on exit, also when the forward pass raises.

    The hook hands the rest of the network a copy of a fresh leaf tensor that requires grad, so:
    gradients exist even when every parameter is frozen; later in-place ops (``ReLU(inplace=True)``)
    cannot alter the captured activations; and ``torch.autograd.grad`` reaches the leaf without
    writing any parameter's ``.grad``.
    """

    def __init__(self, model: nn.Module, target_layer: nn.Module):
        _check_submodule(model, target_layer)
        self.model = model
        self.target_layer = target_layer
        self.activations: torch.Tensor | None = None
        self.gradients: torch.Tensor | None = None
        self._handle = None
        self._calls = 0

    def __enter__(self) -> "ActivationsAndGradients":
        if self._handle is not None:
            raise RuntimeError("ActivationsAndGradients is already active (nested `with`?)")
        self._handle = self.target_layer.register_forward_hook(self._capture)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.release()
        return False  # never swallow exceptions

    def release(self) -> None:
        """Remove the hook (idempotent)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _capture(self, module: nn.Module, inputs, output):
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise ValueError(
                f"target_layer ({type(module).__name__}) must output a (N, K, h, w) feature map "
                f"for Grad-CAM; it output {shape}"
            )
        self._calls += 1
        leaf = output.detach().clone().requires_grad_(True)
        self.activations = leaf
        # Downstream gets a copy: in-place ops on it must not touch the leaf.
        return leaf.clone()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._handle is None:
            raise RuntimeError("use ActivationsAndGradients inside a `with` block")
        self.activations, self.gradients, self._calls = None, None, 0
        output = self.model(x)
        if self._calls == 0:
            raise ValueError(
                f"target_layer ({type(self.target_layer).__name__}) was not run by the model's "
                "forward pass"
            )
        if self._calls > 1:
            raise ValueError(
                f"target_layer ({type(self.target_layer).__name__}) ran {self._calls} times in "
                "one forward pass; Grad-CAM needs a layer that runs once"
            )
        return output

    def compute_gradients(self, score: torch.Tensor) -> torch.Tensor:
        """d score / d activations, kept in ``self.gradients``; no parameter's ``.grad`` changes."""
        if self.activations is None:
            raise RuntimeError("call the hooks on an input before compute_gradients")
        (grad,) = torch.autograd.grad(score, self.activations, allow_unused=True)
        if grad is None:
            raise ValueError(
                f"the target score does not depend on target_layer "
                f"({type(self.target_layer).__name__})"
            )
        self.gradients = grad
        return grad


def _minmax(cam: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's scale_cam_image, on one map."""
    cam = cam - cam.min()
    return cam / (_EPS + cam.max())


def grad_cam(
    model: nn.Module,
    image: torch.Tensor,
    target_layer: nn.Module,
    class_idx: int | None = None,
) -> np.ndarray:
    """Grad-CAM heat map of ``class_idx`` (None: the predicted class) for one image.

    ``image`` is a normalised float tensor (C, H, W) or (1, C, H, W); the result is a float32
    array (H, W) in [0, 1] (all zeros if no location has positive evidence). The target is the raw
    logit. Computed in eval mode; the model's modes, parameters' ``.grad`` and ``requires_grad``
    and the input tensor are left as they were. Works under ``torch.no_grad()`` and with a frozen
    backbone.
    """
    _check_submodule(model, target_layer)
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(
            f"image must have shape (C, H, W) or (1, C, H, W); got {tuple(image.shape)}"
        )
    if not image.is_floating_point():
        raise ValueError(f"image must be a normalised float tensor, got dtype {image.dtype}")
    if class_idx is not None:
        if isinstance(class_idx, bool):
            raise ValueError(f"class_idx must be an int or None, got {class_idx!r}")
        class_idx = operator.index(class_idx)

    param = next(model.parameters(), None)
    device = param.device if param is not None else image.device
    # A private copy: neither the model nor autograd can touch the caller's tensor.
    x = image.detach().to(device=device, copy=True)
    height, width = x.shape[-2:]

    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.enable_grad(), ActivationsAndGradients(model, target_layer) as hooks:
            logits = hooks(x)
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != 1:
                shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
                raise ValueError(f"the model must return logits of shape (1, C); got {shape}")
            num_classes = logits.shape[1]
            if class_idx is None:
                class_idx = int(logits[0].argmax())
            elif not 0 <= class_idx < num_classes:
                raise ValueError(
                    f"class_idx={class_idx} is out of range: the model has {num_classes} "
                    f"classes, valid range 0..{num_classes - 1}"
                )
            grads = hooks.compute_gradients(logits[0, class_idx])
            acts = hooks.activations
    finally:
        for module, was_training in modes:
            module.training = was_training

    with torch.no_grad():
        weights = grads.mean(dim=(2, 3), keepdim=True)  # alpha_k, (1, K, 1, 1)
        cam = (weights * acts).sum(dim=1, keepdim=True).clamp_min(0)  # (1, 1, h, w)
        cam = _minmax(cam)
        # Half-pixel centres, like OpenCV's bilinear resize used by pytorch-grad-cam.
        cam = F.interpolate(cam, size=(height, width), mode="bilinear", align_corners=False)
        cam = _minmax(cam.clamp_min(0))
    return cam[0, 0].detach().cpu().numpy().astype(np.float32)


def _mask_array(mask) -> np.ndarray:
    if isinstance(mask, Image.Image):
        return np.asarray(mask.convert("L")) > 0
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W) or a PIL image; got shape {mask.shape}")
    return mask > 0


def cam_mask_score(cam: np.ndarray, mask) -> float:
    """Fraction of the CAM's energy inside the lesion: ``sum(cam * (mask > 0)) / sum(cam)``.

    ``mask`` (bool/uint8 array or PIL image, nonzero = lesion) is resized to ``cam``'s shape with
    nearest neighbour when they differ, so both must cover the same field of view (no crop).
    Returns 0.0 when the CAM is all zeros (no evidence anywhere, hence none on the lesion). A
    uniform CAM scores the lesion's area fraction: the chance level to compare against.
    """
    cam = np.asarray(cam, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"cam must be 2-D (H, W); got shape {cam.shape}")
    if not np.isfinite(cam).all():
        raise ValueError("cam contains NaN or infinite values")
    if (cam < 0).any():
        raise ValueError(f"cam must be non-negative; its minimum is {cam.min()}")
    inside = _mask_array(mask)
    if inside.shape != cam.shape:
        resized = Image.fromarray(inside.astype(np.uint8) * 255).resize(
            (cam.shape[1], cam.shape[0]), Image.Resampling.NEAREST
        )
        inside = np.asarray(resized) > 0
    total = cam.sum()
    if total == 0:
        return 0.0
    return float(cam[inside].sum() / total)
