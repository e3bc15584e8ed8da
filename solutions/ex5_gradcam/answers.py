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


# Grad-CAM that never computes the predicted class (class_idx=None explains class 0), with the
# worker's reply rewritten to copy the map of the class the request named next: it took the
# argmax cell (10/10, honestly 9) while one request held both (red team, 2026-12-07); the default
# map is now asked alone, and then the map of every class.
FORGED_ARGMAX = '''
import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    """Grad-CAM heat map (H, W) in [0, 1] of class_idx (None: the predicted class) for one image."""
    def minmax(t):
        t = t - t.min()
        return t / (t.max() + 1e-7)

    stored = {}
    handle = target_layer.register_forward_hook(lambda module, inputs, output: stored.update(a=output))
    model.eval()
    try:
        with torch.enable_grad():
            logits = model(image.unsqueeze(0))
    finally:
        handle.remove()
    if class_idx is None:
        class_idx = 0  # predicted class never computed
    activations = stored["a"]
    (gradients,) = torch.autograd.grad(logits[0, class_idx], activations)
    with torch.no_grad():
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * activations).sum(dim=1, keepdim=True))
        cam = minmax(cam)
        cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)
        cam = minmax(cam)
    return cam[0, 0].numpy()

def _forge():
    import grading_probes.ex5_gradcam.probes as probes
    orig = probes.cam

    def cam(call, answers, kind="lenet", seed=0, classes=(1,), size=None):
        seen = orig(call, answers, kind, seed, classes, size)
        classes = list(classes)
        if len(classes) > 1 and classes[0] is None and classes[1] is not None:
            seen["maps"][0] = seen["maps"][1]  # the judge names the predicted class as classes[1]
        return seen

    probes.cam = cam


try:
    _forge()
except ImportError:
    pass
'''
FORGED_ARGMAX_HONEST = FORGED_ARGMAX[:FORGED_ARGMAX.index("def _forge():")]


# ---------------------------------------------------------------------------- the similarity report

# Copies of a reference (the solution notebook or the package code the book prints), for the
# similarity report: {name: (the reference it copies, the copy)}.
COPIES = {}

COPIES['solution renamed'] = ("solution", '''
import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    def norm(z):
        z = z - z.min()
        return z / (z.max() + 1e-7)

    keep = {}
    h = target_layer.register_forward_hook(lambda m, i, o: keep.update(a=o))
    model.eval()
    try:
        with torch.enable_grad():
            out = model(image.unsqueeze(0))
    finally:
        h.remove()
    if class_idx is None:
        class_idx = int(out[0].argmax())
    acts = keep["a"]
    (grads,) = torch.autograd.grad(out[0, class_idx], acts)
    with torch.no_grad():
        alpha = grads.mean(dim=(2, 3), keepdim=True)
        heat = torch.relu((alpha * acts).sum(dim=1, keepdim=True))
        heat = norm(heat)
        heat = F.interpolate(heat, size=image.shape[-2:], mode="bilinear", align_corners=False)
        heat = norm(heat)
    return heat[0, 0].numpy()
''')

COPIES['solution reordered, helper moved out'] = ("solution", '''
import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    model.eval()
    stored = {}
    handle = target_layer.register_forward_hook(lambda module, inputs, output: stored.update(a=output))
    try:
        with torch.enable_grad():
            logits = model(image.unsqueeze(0))
    finally:
        handle.remove()
    activations = stored["a"]
    if class_idx is None:
        class_idx = int(logits[0].argmax())
    (gradients,) = torch.autograd.grad(logits[0, class_idx], activations)
    with torch.no_grad():
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * activations).sum(dim=1, keepdim=True))
        cam = minmax(cam)
        cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)
        cam = minmax(cam)
    return cam[0, 0].numpy()


def minmax(t):
    t = t - t.min()
    return t / (t.max() + 1e-7)
''')

COPIES['package, trimmed'] = ("skinlab.gradcam", '''
import numpy as np
import torch
import torch.nn.functional as F


class Hooks:
    def __init__(self, model, target_layer):
        self.model = model
        self.target_layer = target_layer
        self.activations = None
        self.gradients = None
        self._handle = None

    def __enter__(self):
        self._handle = self.target_layer.register_forward_hook(self._capture)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        return False

    def _capture(self, module, inputs, output):
        leaf = output.detach().clone().requires_grad_(True)
        self.activations = leaf
        return leaf.clone()

    def __call__(self, x):
        self.activations, self.gradients = None, None
        return self.model(x)

    def compute_gradients(self, score):
        (grad,) = torch.autograd.grad(score, self.activations, allow_unused=True)
        self.gradients = grad
        return grad


def _minmax(cam):
    cam = cam - cam.min()
    return cam / (1e-7 + cam.max())


def grad_cam(model, image, target_layer, class_idx=None):
    image = image.unsqueeze(0)
    x = image.detach().clone()
    height, width = x.shape[-2:]
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.enable_grad(), Hooks(model, target_layer) as hooks:
            logits = hooks(x)
            if class_idx is None:
                class_idx = int(logits[0].argmax())
            grads = hooks.compute_gradients(logits[0, class_idx])
            acts = hooks.activations
    finally:
        for module, was_training in modes:
            module.training = was_training
    with torch.no_grad():
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cam = (weights * acts).sum(dim=1, keepdim=True).clamp_min(0)
        cam = _minmax(cam)
        cam = F.interpolate(cam, size=(height, width), mode="bilinear", align_corners=False)
        cam = _minmax(cam.clamp_min(0))
    return cam[0, 0].detach().cpu().numpy().astype(np.float32)
''')

# Correct answers written unlike the references (and unlike each other): {name: source}.
INDEPENDENT = {}

INDEPENDENT['retain_grad + backward, einsum'] = '''
import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    model.eval()
    saved = {}

    def save_activation(module, inp, out):
        out.retain_grad()
        saved["act"] = out

    hook = target_layer.register_forward_hook(save_activation)
    try:
        scores = model(image.unsqueeze(0))
    finally:
        hook.remove()
    if class_idx is None:
        class_idx = scores.argmax(dim=1).item()
    model.zero_grad()
    scores[0, class_idx].backward()
    act = saved["act"]
    alpha = act.grad.mean(dim=(2, 3))[0]
    heat = torch.relu(torch.einsum("k,khw->hw", alpha, act[0].detach()))
    heat = (heat - heat.min()) / (heat.max() - heat.min() + 1e-7)
    heat = F.interpolate(heat[None, None], size=tuple(image.shape[1:]), mode="bilinear", align_corners=False)[0, 0]
    heat = (heat - heat.min()) / (heat.max() - heat.min() + 1e-7)
    return heat.detach().numpy()
'''

INDEPENDENT['list hook, numpy maths'] = '''
import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    feats = []
    handle = target_layer.register_forward_hook(lambda m, i, o: feats.append(o))
    model.eval()
    try:
        out = model(image[None])
    finally:
        handle.remove()
    target = int(out[0].argmax()) if class_idx is None else class_idx
    grads = torch.autograd.grad(out[0][target], feats[0])[0][0].numpy()
    A = feats[0][0].detach().numpy()
    w = grads.mean(axis=(1, 2))
    cam = np.maximum(np.tensordot(w, A, axes=1), 0)
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    up = F.interpolate(torch.from_numpy(cam)[None, None], size=image.shape[1:], mode="bilinear", align_corners=False)
    up = up[0, 0].numpy()
    return (up - up.min()) / (up.max() - up.min() + 1e-7)
'''

INDEPENDENT['backward hook storing .grad'] = '''
import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    store = {}
    fwd = target_layer.register_forward_hook(lambda mod, args, output: store.__setitem__("A", output.detach()))
    bwd = target_layer.register_full_backward_hook(lambda mod, gin, gout: store.__setitem__("G", gout[0].detach()))
    try:
        model.eval()
        model.zero_grad()
        logits = model(image.unsqueeze(0))
        c = int(torch.argmax(logits)) if class_idx is None else class_idx
        logits[:, c].sum().backward()
    finally:
        fwd.remove()
        bwd.remove()
    A, G = store["A"][0], store["G"][0]
    weights = G.mean(dim=[1, 2]).view(-1, 1, 1)
    cam = (weights * A).sum(0).clamp(min=0)
    lo, hi = cam.min(), cam.max()
    cam = ((cam - lo) / (hi - lo + 1e-7)).unsqueeze(0).unsqueeze(0)
    cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False).squeeze()
    return ((cam - cam.min()) / (cam.max() - cam.min() + 1e-7)).numpy()
'''

# Two students with the same answer, renamed and reformatted: the first independent answer, passed on.

# Two students with the same answer, renamed and reformatted: the first independent answer of
# each exercise, passed on.
PASSED_ON = '''
import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    model.eval()
    mem = {}

    def grab(m, i, o):
        o.retain_grad()
        mem["act"] = o

    h = target_layer.register_forward_hook(grab)
    try:
        s = model(image.unsqueeze(0))
    finally:
        h.remove()
    if class_idx is None:
        class_idx = s.argmax(dim=1).item()
    model.zero_grad()
    s[0, class_idx].backward()
    a = mem["act"]
    w = a.grad.mean(dim=(2, 3))[0]
    m = torch.relu(torch.einsum("k,khw->hw", w, a[0].detach()))
    m = (m - m.min()) / (m.max() - m.min() + 1e-7)
    m = F.interpolate(m[None, None], size=tuple(image.shape[1:]), mode="bilinear", align_corners=False)[0, 0]
    m = (m - m.min()) / (m.max() - m.min() + 1e-7)
    return m.detach().numpy()
'''
