"""The bank of answers of ex5_gradcam: what the simulated class, the adversarial class and the
tests hand in, written once (docs/GRADING.md). Instructor-only: nbgrader releases no ``*.py``.
"""


# No ReLU on the weighted sum of activation maps.
MISTAKE = {"grad_cam": '''
import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    acts = {}
    h = target_layer.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    model.eval()
    try:
        logits = model(image[None])
    finally:
        h.remove()
    c = int(logits.argmax()) if class_idx is None else class_idx
    g, = torch.autograd.grad(logits[0, c], acts["a"])
    cam = (g.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True).detach()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    cam = F.interpolate(cam, size=image.shape[1:], mode="bilinear", align_corners=False)
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    return cam[0, 0].numpy()
'''}

TAMPERED_CELL = "test_cam_lenet"

USES_REFERENCE = {"grad_cam": '''
import numpy as np


def grad_cam(model, image, target_layer, class_idx=None):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model, target_layers=[target_layer]) as cam:
        targets = None if class_idx is None else [ClassifierOutputTarget(class_idx)]
        return cam(input_tensor=image[None], targets=targets)[0]
'''}

INFINITE_LOOP = {"grad_cam": '''
import torch


def grad_cam(model, image, target_layer, class_idx=None):
    acts = {}
    h = target_layer.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    logits = model(image[None])
    h.remove()
    while acts["a"].grad is None:  # waits for a .grad that a non-leaf tensor never gets
        logits.max().backward(retain_graph=True)
    return acts["a"].grad
'''}

# An error at the top of the cell: grad_cam is never defined.
RAISES = {"grad_cam": '''
import numpy as np
import torch
from torch.nn.functional import upsample_bilinear2d


def grad_cam(model, image, target_layer, class_idx=None):
    return np.zeros(image.shape[1:])
'''}

MISTAKE_FAILS = {"test_cam_lenet", "test_cam_small_cnn"}


# ---------------------------------------------------------------------------- the adversarial class

# Correct answers written unlike the reference: full marks.
UNLIKE_REFERENCE = {
    'honest_autograd_gradcam': {'grad_cam': '''
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    saved = []
    handle = target_layer.register_forward_hook(lambda module, inputs, output: saved.append(output))
    try:
        scores = model(image.unsqueeze(0))
    finally:
        handle.remove()
    target = scores.argmax(dim=1).item() if class_idx is None else class_idx
    activations = saved[0]
    (gradients,) = torch.autograd.grad(scores[0, target], activations)
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    heat = torch.relu((weights * activations).sum(dim=1, keepdim=True)).detach()
    heat = heat - heat.min()
    heat = heat / (heat.max() + 1e-7)
    heat = F.interpolate(heat, size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)
    heat = heat - heat.min()
    heat = heat / (heat.max() + 1e-7)
    return heat[0, 0].cpu().numpy()
'''},
}
