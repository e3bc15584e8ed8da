"""Exercise 5 checks: ``grad_cam`` (chapter 10, ``skinlab.gradcam``).

Probes (what runs the student's code): ``probes.py`` beside this file. The judges below build their
own copy of each model (LeNet from ``skinlab.models``, the small CNN from the probes module, the
same seed), compute the expected heat map with ``skinlab.gradcam.grad_cam`` and compare it with
the map the probe reports.

Tolerance (decided on purpose, see :func:`_accepted`): a map passes when it is within 1e-5 of
the reference everywhere, or when it is the reference times a uniform factor that a single
min-max *after* upsampling explains. pytorch-grad-cam min-max normalises twice, before and after
upsampling. Min-max is invariant to the first scaling and bilinear upsampling commutes with it,
so normalising only after upsampling is the same recipe except for the 1e-7 guard (eps) in the
denominator: it then divides the *raw* range r of the map (median 5e-4 here: logit gradients
are small; as low as 2e-6) instead of a range of ~1, and the result is the reference times
r / (r + 1e-7). Over 1,500 hidden-test draws (``_fresh_matches``) that factor makes the maps
differ by 1.8e-4 (median), 2.6e-3 (99th percentile), 0.042 (maximum): no fixed tolerance both
accepts it and catches the classic mistakes, so the proportionality is tested exactly instead
(factor ≥ r / (r + 2e-7), residual ≤ 1e-5). Normalising only *before* upsampling is a different
map (upsampling lowers the peak below 1 and lifts the floor: differences of 0.13 median, up to
0.61) and fails with a message that says so; it passes only where upsampling keeps both the
peak and the floor (3.5% of those draws: a peak on the image border, a zero floor), since there
its map is the reference's up to the guard.
"""

from __future__ import annotations

import numpy as np

from ..checking import check

PROBES = "ex5_gradcam"
_TOL = 1e-5  # max abs difference from the reference heat map
# The largest guard (eps) in a single min-max after upsampling that is still accepted: the task
# says 1e-7 (any smaller one, or none, gives a factor closer to 1); 2e-7 leaves room for float32
# rounding. A larger guard (1e-6) is refused: against a raw range of 1e-4 it shrinks the map by 1%.
_SINGLE_MINMAX_GUARD = 2e-7
_VARIANT_MATCH = 1e-4  # how close a map must be to a mistake variant to name that mistake


def _probes():
    from . import probes as ex5_gradcam

    return ex5_gradcam


def _tiny_cnn(seed: int):
    """conv(3→4, 3x3, pad 1) → ReLU → conv(4→5, 3x3) → ReLU → global average → linear(5→3)."""
    return _probes().tiny_cnn(seed)


def _cam_case(kind: str, seed: int, size=None):
    """(model, image (3, H, W), target layer, description): the judge's own copy of a case,
    LeNet from ``skinlab.models`` (the probe builds the same weights from the same seed)."""
    model = None
    if kind == "lenet":
        import torch

        from skinlab.models import LeNet

        torch.manual_seed(seed)
        model = LeNet(_probes().LENET_CLASSES).eval()
    return _probes().cam_inputs(kind, seed, size, model=model)


# ------------------------------------------------------------------ fresh inputs (hidden tests)


def _fresh_case(rng: np.random.Generator) -> dict:
    """A seed and a model; for the small CNN a non-square image from 5x5 to 24x24 (H != W)."""
    kind = "lenet" if rng.random() < 0.5 else "tiny"
    params = {"kind": kind, "seed": int(rng.integers(0, 2**31 - 1))}
    if kind == "tiny":
        height, width = (int(v) for v in rng.choice(np.arange(5, 25), 2, replace=False))
        params["size"] = [height, width]
    return params


def _fresh_matches(rng: np.random.Generator) -> dict:
    params = _fresh_case(rng)
    classes = _probes().LENET_CLASSES if params["kind"] == "lenet" else _probes().TINY_CLASSES
    draw = int(rng.integers(-1, classes))
    params["class_idx"] = None if draw < 0 else draw  # None: the predicted class
    return params


# ------------------------------------------------------------------ the reference, and mistakes


def _cam_variant(model, image, layer, class_idx, relu=True, align_corners=False, softmax=False,
                 normalise="both", raw_range=False):
    """Grad-CAM by hand, with optional classic mistakes (to name the student's).

    ``normalise``: "both" (before and after upsampling, as pytorch-grad-cam), "after" or
    "before" (once). ``raw_range``: return the range of the upsampled map before any min-max
    instead (what the 1e-7 guard of a single min-max after upsampling is compared with)."""
    import torch
    import torch.nn.functional as F

    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        with torch.enable_grad():
            logits = model(image.unsqueeze(0))
    finally:
        handle.remove()
    scores = torch.softmax(logits, 1) if softmax else logits
    (grad,) = torch.autograd.grad(scores[0, class_idx], store["a"])

    def minmax(cam):
        return (cam - cam.min()) / (1e-7 + (cam - cam.min()).max())

    with torch.no_grad():
        cam = (grad.mean((2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True)
        if relu:
            cam = cam.clamp_min(0)
        if normalise in ("both", "before"):
            cam = minmax(cam)
        cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=align_corners)
        if raw_range:
            return float(cam.max() - cam.min())
        if normalise in ("both", "after"):
            cam = minmax(cam)
    return cam[0, 0].numpy()


def _reference(model, image, layer, class_idx):
    from skinlab.gradcam import grad_cam as reference_grad_cam

    return reference_grad_cam(model, image.clone(), layer, class_idx).astype(np.float64)


def _single_minmax_floor(model, image, layer, class_idx) -> float:
    """The smallest factor a single min-max after upsampling (guard ≤ _SINGLE_MINMAX_GUARD) puts
    on the reference: r / (r + guard), r the raw upsampled map's range."""
    r = _cam_variant(model, image, layer, class_idx, normalise="none", raw_range=True)
    return r / (r + _SINGLE_MINMAX_GUARD) if r > 0 else 1.0


def _proportion(got: np.ndarray, want: np.ndarray) -> tuple[float, float] | None:
    """(s, max |got - s want|) for the least-squares factor s, None for an all-zero reference."""
    norm = float((want * want).sum())
    if norm == 0:
        return None
    s = float((got * want).sum()) / norm
    return s, float(np.abs(got - s * want).max())


def _accepted(got: np.ndarray, want: np.ndarray, floor: float) -> bool:
    """Decision (issue "normalises once instead of twice"): within _TOL of the reference, or the
    reference times a factor s in [floor, 1] to _TOL — the map a single min-max after upsampling
    gives (its 1e-7 guard divides the raw range r: s = r / (r + 1e-7)); ``floor`` allows a guard
    up to _SINGLE_MINMAX_GUARD. Every other recipe (no ReLU, align_corners=True, softmax, a single
    min-max before upsampling) changes the map's shape, not only its scale, and still fails."""
    if float(np.abs(got - want).max()) <= _TOL:
        return True
    fit = _proportion(got, want)
    return fit is not None and floor - 1e-9 <= fit[0] <= 1 + _TOL and fit[1] <= _TOL


# ------------------------------------------------------------------ what came back


def _as_map(seen, what: str, want_shape: tuple[int, int]) -> np.ndarray:
    """The returned heat map as a float64 array, or the AssertionError that says what is wrong."""
    if seen["tensor"]:
        raise AssertionError("grad_cam should return a numpy array (use .detach().cpu().numpy()); got a tensor")
    if not seen["ndarray"]:
        raise AssertionError(f"grad_cam should return a numpy array (H, W); got {seen['type']}")
    values = seen["values"]
    shape = tuple(values.shape) if isinstance(values, np.ndarray) else tuple(seen["shape"] or ())
    if shape != want_shape:
        raise AssertionError(
            f"for {what} the heat map should have the image's shape (H, W) = {want_shape}; yours is "
            f"{shape}: upsample the CAM to the input's height and width (in that order)"
        )
    if not isinstance(values, np.ndarray):
        raise AssertionError(f"grad_cam should return a numeric numpy array; yours has dtype {seen['dtype']}")
    result = values.astype(np.float64)
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


def _observe_maps(observe, kind, seed, size, classes, want_shape, what):
    seen = observe(f"{PROBES}.cam", kind=kind, seed=int(seed), size=size, classes=list(classes))
    maps = [_as_map(m, what, want_shape) for m in seen["maps"]]
    if len(maps) != len(classes):
        raise AssertionError("the grading process sent an unexpected reply")
    return seen, maps


def _size(size):
    return None if size is None else [int(v) for v in size]


def _predicted(model, image) -> int:
    import torch

    with torch.no_grad():
        return int(model(image.unsqueeze(0))[0].argmax())


# ------------------------------------------------------------------ the checks


@check("grad_cam", fresh=_fresh_case)
def check_cam_output(observe, kind: str = "lenet", seed: int = 0, size=None):
    """A numpy array with the image's (H, W), values in [0, 1], maximum 1.

    "Maximum 1" allows a single min-max after upsampling, whose 1e-7 guard against the raw range
    r leaves the maximum at r / (r + 1e-7) (see the module docstring): the bar is
    min(1 - 1e-4, r / (r + 2e-7)). An all-zero map passes only where Grad-CAM's map is all zero.
    """
    size = _size(size)
    model, image, layer, what = _cam_case(kind, seed, size)
    want = _reference(model, image, layer, 1)
    (_, [cam]) = _observe_maps(observe, kind, seed, size, [1], tuple(image.shape[-2:]), what)
    if want.max() == 0:
        return
    floor = min(1 - 1e-4, _single_minmax_floor(model, image, layer, 1))
    if cam.max() == 0:
        raise AssertionError(
            f"your heat map for {what} and class 1 is all zeros, but Grad-CAM's is not: the class "
            "has positive evidence somewhere; min-max normalise so that the map reaches 1"
        )
    if cam.max() < floor:
        raise AssertionError(f"the heat map's maximum is {cam.max():.4g}: min-max normalise so that it reaches 1")


@check("grad_cam", fresh=_fresh_matches)
def check_cam_matches(observe, kind: str = "lenet", seed: int = 0, class_idx: int | None = 1, size=None):
    """Equal to the reference Grad-CAM (as pytorch-grad-cam computes it) to 1e-5.

    Also accepted (decided on purpose): the reference times a uniform factor in
    [r / (r + 2e-7), 1], r the raw upsampled map's range, to 1e-5 — what min-max normalising
    once, after upsampling, with the 1e-7 guard gives (pytorch-grad-cam also normalises before
    upsampling; the two differ only by where the guard acts: by 1.8e-4 typically, up to 0.042
    over 1,500 hidden-test draws). Normalising once *before* upsampling fails, with a message
    naming it (it changes the map's shape, not only its scale).
    """
    size = _size(size)
    model, image, layer, what = _cam_case(kind, seed, size)
    target = _predicted(model, image) if class_idx is None else int(class_idx)
    want = _reference(model, image, layer, target)
    (_, [got]) = _observe_maps(observe, kind, seed, size, [None if class_idx is None else int(class_idx)],
                               want.shape, what)
    floor = _single_minmax_floor(model, image, layer, target)
    if _accepted(got, want, floor):
        return
    diff = float(np.abs(got - want).max())
    hint = ""
    for variant, message in (
        (dict(relu=False), "apply ReLU to the weighted sum of activation maps before normalising: "
         "only positive evidence for the class belongs in the map"),
        (dict(align_corners=True), "upsample with F.interpolate(..., mode='bilinear', align_corners=False)"),
        (dict(softmax=True), "take the gradient of the raw logit of the class, not of its softmax probability"),
        (dict(normalise="before"), f"you min-max normalised once, before upsampling; pytorch-grad-cam "
         f"min-max normalises before and after upsampling (bilinear upsampling moves the peak "
         f"below 1 and the floor above 0): max difference {diff:.3g}"),
    ):
        # each mistake with the reference's double min-max, or with a single one after upsampling
        normalisations = ("before",) if "normalise" in variant else ("both", "after")
        if any(np.abs(got - _cam_variant(model, image, layer, target, **{"normalise": n, **variant})).max()
               < _VARIANT_MATCH for n in normalisations):
            hint = " Fix: " + message + "."
            break
    else:
        fit = _proportion(got, want)
        if fit is not None and fit[1] <= _TOL:
            raw = _cam_variant(model, image, layer, target, normalise="none", raw_range=True)
            hint = (f" Your map is Grad-CAM's times {fit[0]:.4g}: the shape is right, the scale is not. "
                    f"If you min-max normalised once, after upsampling, its eps is too large for "
                    f"the map's raw range ({raw:.3g}): use 1e-7, or min-max before upsampling too, "
                    "as pytorch-grad-cam does (then the eps is negligible).")
    raise AssertionError(
        f"for {what} and class {target} your heat map differs from Grad-CAM's by up to {diff:.3g} "
        "(at most 1e-5 allowed). Recipe: weights = spatial mean of d logit / d activations per "
        "channel; cam = ReLU(sum of weights x activations); min-max; bilinear upsample "
        "(align_corners=False); min-max again." + hint
    )


_CLASSES_APART = 0.1  # Grad-CAM's maps of two classes this far apart: the answer's must differ too


def _farthest_class(model, image, layer, top: int) -> tuple[int, float] | None:
    """(the class whose reference map is farthest from the predicted class's, that distance)."""
    import torch

    with torch.no_grad():
        num_classes = int(model(image.unsqueeze(0)).shape[1])
    want = _reference(model, image, layer, top)
    far = [(float(np.abs(_reference(model, image, layer, c) - want).max()), c)
           for c in range(num_classes) if c != top]
    if not far:
        return None
    distance, other = max(far)
    return other, distance


@check("grad_cam", fresh=_fresh_case)
def check_cam_argmax(observe, kind: str = "lenet", seed: int = 0, size=None):
    """class_idx=None explains the predicted class (the argmax of the logits).

    The default map must equal the answer's own map of the predicted class, and the answer's maps
    must tell classes apart where Grad-CAM's do (the verifier's reference maps of the predicted
    class and of the class farthest from it differ by more than 0.1): a map that ignores the class
    (all ones, all zeros) would otherwise pass by comparing with itself."""
    size = _size(size)
    model, image, layer, what = _cam_case(kind, seed, size)
    top = _predicted(model, image)
    far = _farthest_class(model, image, layer, top)
    other = far[0] if far is not None and far[1] > _CLASSES_APART else None
    shape = tuple(image.shape[-2:])
    # Two requests, so the worker is never told which class is the predicted one: the default map
    # alone, then the map of every class (a forged default must find the argmax itself).
    (_, (default,)) = _observe_maps(observe, kind, seed, size, [None], shape, what)
    classes = _probes().LENET_CLASSES if kind == "lenet" else _probes().TINY_CLASSES
    (_, maps) = _observe_maps(observe, kind, seed, size, list(range(classes)), shape, what)
    explicit = maps[top]
    if np.abs(default - explicit).max() > _TOL:
        raise AssertionError(
            f"with class_idx=None the heat map should explain the predicted class {top} (the "
            f"argmax of the logits), i.e. equal grad_cam(..., class_idx={top}); yours differs"
        )
    if other is not None and np.abs(explicit - maps[other]).max() <= _TOL:
        raise AssertionError(
            f"for {what} your heat maps of class {top} and class {other} are the same, but Grad-CAM's "
            f"differ by up to {far[1]:.2g}: the map must explain the class asked for (the gradient of "
            "that class's logit), so class_idx=None cannot be told from any other class"
        )


@check("grad_cam", fresh=_fresh_case, self_report="the hook counts on the model before and after your function ran")
def check_cam_hooks_removed(observe, kind: str = "lenet", seed: int = 0, size=None):
    """No hook stays registered on any module (nor globally) after grad_cam returns.

    The hook counts are the worker's word (``self_report``): the verifier cannot see the worker's
    model, so this 1 point rests on that report (the maps it judges only for shape and range).

    The probe also reports whether parameters got a ``.grad`` and whether modules' training
    flags changed; neither is judged: ``loss.backward()`` with hooks that store the gradient is a
    correct Grad-CAM (it fills ``.grad``), and the probe's models are in eval mode already."""
    size = _size(size)
    _, image, _, what = _cam_case(kind, seed, size)
    seen, _ = _observe_maps(observe, kind, seed, size, [0, 1], tuple(image.shape[-2:]), what)
    if seen["hooks_after"] != seen["hooks_before"]:
        raise AssertionError(
            "hooks are still registered on the model after grad_cam returned: keep the handles "
            "returned by register_forward_hook / register_full_backward_hook and call "
            ".remove() on each (in a finally: block), else every later forward pass runs them again"
        )
