# %% [markdown]
# # Exercise 5: Grad-CAM
#
# *This exercise goes with chapter 10 of the skinlab book, [Where does the network look? Grad-CAM](../../book/10_gradcam.md) (`book/10_gradcam.md` in the repository; built, `_build/html/book/10_gradcam.html`). Read it first: it explains what you build here.*
#
# Where in the image does the network look when it predicts a class? Grad-CAM (Selvaraju et al.,
# 2017) answers with a heat map built from one convolutional layer, the *target layer*, whose
# output is $K$ feature maps $A_k$ of size $h \times w$:
#
# 1. Forward the image and keep $A$; take the **raw logit** $y_c$ of the class $c$ (the predicted
#    class if none is given).
# 2. Backward: $\partial y_c / \partial A_k$. Each channel's weight is the spatial mean of its
#    gradient, $\alpha_k = \operatorname{mean}_{x,y} \partial y_c / \partial A_k(x, y)$.
# 3. $\text{cam} = \operatorname{ReLU}\left(\sum_k \alpha_k A_k\right)$: only positive evidence
#    for the class.
# 4. Min-max scale to [0, 1] ($(x - \min) / (\max - \min + 10^{-7})$), upsample to the image size
#    with bilinear interpolation (`align_corners=False`), min-max scale again.
#
# This is exactly what the `pytorch-grad-cam` library computes. The figure shows step 4 on a
# made-up 5x5 map: the coarse map and its bilinear upsampling to 32x32.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

coarse = torch.zeros(1, 1, 5, 5)
coarse[0, 0, 1, 1], coarse[0, 0, 3, 2], coarse[0, 0, 2, 4] = 1.0, 0.6, 0.3
fine = F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(coarse[0, 0], cmap="jet", vmin=0, vmax=1)
axes[0].set_title("CAM at the layer (5x5)")
axes[1].imshow(fine[0, 0], cmap="jet", vmin=0, vmax=1)
axes[1].set_title("upsampled to the image (32x32)")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Your task
#
# Write `grad_cam(model, image, target_layer, class_idx=None)`:
#
# * `model`: a classifier returning logits `(1, num_classes)`; `image`: one image tensor
#   `(3, H, W)` (add the batch dimension yourself); `target_layer`: a module of `model`;
#   `class_idx`: the class to explain, `None` for the predicted class (argmax of the logits).
# * Return a numpy array `(H, W)` with values in [0, 1], computed as above.
# * Capture the target layer's output with `target_layer.register_forward_hook(...)` and remove
#   every hook you register before returning (keep the handle, call `handle.remove()`, ideally in
#   a `finally:` block). `torch.autograd.grad(score, activations)` gives the gradient.
# * Put the model in eval mode (`model.eval()`).
#
# Do **not** import `skinlab` or `pytorch_grad_cam` in your answer (an answer that uses them
# scores 0).

# %% answer grade_id=grad_cam
import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model, image, target_layer, class_idx=None):
    """Grad-CAM heat map (H, W) in [0, 1] of class_idx (None: the predicted class) for one image."""
    ### BEGIN SOLUTION
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
        class_idx = int(logits[0].argmax())
    activations = stored["a"]
    (gradients,) = torch.autograd.grad(logits[0, class_idx], activations)
    with torch.no_grad():
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * activations).sum(dim=1, keepdim=True))
        cam = minmax(cam)
        cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)
        cam = minmax(cam)
    return cam[0, 0].numpy()
    ### END SOLUTION

# %% [markdown]
# Try it on a small random CNN (not graded):

# %%
import os

if "NBGRADER_EXECUTION" not in os.environ:  # skipped while grading
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2))
    heat = grad_cam(cnn, torch.randn(3, 24, 24), cnn[0])
    plt.imshow(heat, cmap="jet")
    plt.colorbar()
    plt.show()

# %% [markdown]
# ## Tests
#
# Each test cell is worth the points shown; hidden tests run more inputs when you are graded.
# They use `LeNet` (target layer: its second convolution) and a small CNN with non-square inputs.

# %% test grade_id=test_cam_output points=2
# 2 points: a numpy array with the image's height and width, values in [0, 1].
from skinlab.grading import check_cam_output

check_cam_output(grad_cam)
### BEGIN HIDDEN TESTS
check_cam_output(grad_cam, kind="tiny", seed=4)
### END HIDDEN TESTS

# %% test grade_id=test_cam_lenet points=3
# 3 points: equal to Grad-CAM (as pytorch-grad-cam computes it) on LeNet, to 1e-5.
from skinlab.grading import check_cam_matches

check_cam_matches(grad_cam)
### BEGIN HIDDEN TESTS
check_cam_matches(grad_cam, seed=5, class_idx=6)
check_cam_matches(grad_cam, seed=6, class_idx=0)
### END HIDDEN TESTS

# %% test grade_id=test_cam_argmax points=1
# 1 point: class_idx=None explains the predicted class.
from skinlab.grading import check_cam_argmax

check_cam_argmax(grad_cam)
### BEGIN HIDDEN TESTS
check_cam_argmax(grad_cam, kind="tiny", seed=7)
### END HIDDEN TESTS

# %% test grade_id=test_cam_small_cnn points=3
# 3 points: equal to Grad-CAM on a small CNN with a non-square 12x16 image.
from skinlab.grading import check_cam_matches

check_cam_matches(grad_cam, kind="tiny")
### BEGIN HIDDEN TESTS
check_cam_matches(grad_cam, kind="tiny", seed=8, class_idx=2)
check_cam_matches(grad_cam, kind="tiny", seed=9, class_idx=None)
### END HIDDEN TESTS

# %% test grade_id=test_cam_hooks_removed points=1
# 1 point: no hook is left on the model afterwards.
from skinlab.grading import check_cam_hooks_removed

check_cam_hooks_removed(grad_cam)
