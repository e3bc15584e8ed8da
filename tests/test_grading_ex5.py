"""Exercise 5 (Grad-CAM) through both paths: in the kernel (advice) and through the verifier (verdict).

* The probe builds its own models (LeNet5, the small CNN) from a seed; the judge builds the
  reference from ``skinlab.models.LeNet``: both are the same network.
* Correct Grad-CAMs written unlike the reference (backward hooks storing the gradient,
  ``retain_grad``, tensor hooks, numpy arithmetic, a single min-max after upsampling) keep 10/10.
* The tolerance decision: a single min-max *after* upsampling (the reference times
  r / (r + 1e-7)) passes; a single min-max *before* upsampling fails and is named; a large eps
  in a single min-max is named too.
* An answer tuned to the visible tests' inputs passes the visible cells in the kernel and loses
  the hidden points through the verifier.
* The same judge gives the same verdict in the kernel and through the verifier.
"""

from __future__ import annotations

import json
import linecache
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from skinlab import grading
from skinlab.grading.ex5_gradcam import judges as judge
from skinlab.grading import verifier
from skinlab.grading.checking import InKernel
from skinlab.grading.ex5_gradcam import probes
from skinlab.grading.probe_base import roundtrip

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import bank  # noqa: E402
import simulated_class as sim  # noqa: E402

AID = "ex5_gradcam"
FULL = sim.expected_points(AID, "solution")  # {grade_id: points}, 10 in all

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()


# ---------------------------------------------------------------------------- answers

HEADER = "import numpy as np\nimport torch\nimport torch.nn.functional as F\n\n\n"

CORRECT = {
    # loss.backward() with a full backward hook storing grad_output; numpy min-max in float64
    "backward_hook": HEADER + '''
def grad_cam(model, image, target_layer, class_idx=None):
    saved = {}
    handles = [
        target_layer.register_forward_hook(lambda m, i, o: saved.__setitem__("acts", o.detach())),
        target_layer.register_full_backward_hook(lambda m, gi, go: saved.__setitem__("grads", go[0].detach())),
    ]
    model.eval()
    try:
        model.zero_grad()
        logits = model(image.unsqueeze(0))
        c = int(torch.argmax(logits, dim=1)) if class_idx is None else class_idx
        logits[0, c].backward()
    finally:
        for h in handles:
            h.remove()
    weights = saved["grads"].mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * saved["acts"]).sum(dim=1, keepdim=True))
    cam = cam - cam.min()
    cam = cam / (cam.max() + 1e-7)
    height, width = image.shape[-2:]
    cam = F.interpolate(cam, size=(height, width), mode="bilinear", align_corners=False)
    cam = cam[0, 0].numpy().astype(np.float64)
    cam = cam - cam.min()
    return cam / (cam.max() + 1e-7)
''',
    # retain_grad on the captured activations
    "retain_grad": HEADER + '''
def grad_cam(model, image, target_layer, class_idx=None):
    store = []
    handle = target_layer.register_forward_hook(lambda module, inputs, output: store.append(output))
    model.eval()
    try:
        x = image[None].clone()
        logits = model(x)
    finally:
        handle.remove()
    acts = store[0]
    acts.retain_grad()
    target = logits.argmax(1).item() if class_idx is None else class_idx
    logits[:, target].sum().backward()
    alpha = acts.grad.mean(dim=[2, 3])[0]
    cam = torch.zeros(acts.shape[2:])
    for k, a in enumerate(alpha):
        cam += a * acts[0, k].detach()
    cam = torch.clamp(cam, min=0)
    lo, hi = cam.min(), cam.max()
    cam = (cam - lo) / (hi - lo + 1e-7)
    cam = F.interpolate(cam[None, None], size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    lo, hi = cam.min(), cam.max()
    return ((cam - lo) / (hi - lo + 1e-7)).numpy()
''',
    # a tensor hook registered inside the forward hook; the class from numpy
    "tensor_hook": HEADER + '''
def grad_cam(model, image, target_layer, class_idx=None):
    grads, acts = [], []

    def keep(module, inputs, output):
        acts.append(output)
        output.register_hook(grads.append)

    handle = target_layer.register_forward_hook(keep)
    try:
        model.eval()
        out = model(image.unsqueeze(0))
    finally:
        handle.remove()
    if class_idx is None:
        class_idx = int(np.argmax(out.detach().numpy()[0]))
    out[0][class_idx].backward()
    g = grads[0][0].numpy()
    a = acts[0][0].detach().numpy()
    cam = np.maximum((g.mean(axis=(1, 2))[:, None, None] * a).sum(axis=0), 0)
    cam = (cam - cam.min()) / (1e-7 + (cam - cam.min()).max())
    t = F.interpolate(torch.from_numpy(cam)[None, None].float(), size=image.shape[-2:], mode="bilinear")
    cam = t[0, 0].numpy()
    return (cam - cam.min()) / (1e-7 + (cam - cam.min()).max())
''',
    # the decision: min-max normalised once, after upsampling (the reference times r / (r + 1e-7))
    "single_minmax_after": HEADER + '''
def grad_cam(model, image, target_layer, class_idx=None):
    stored = {}
    handle = target_layer.register_forward_hook(lambda m, i, o: stored.update(a=o))
    model.eval()
    try:
        logits = model(image.unsqueeze(0))
    finally:
        handle.remove()
    if class_idx is None:
        class_idx = int(logits[0].argmax())
    (g,) = torch.autograd.grad(logits[0, class_idx], stored["a"])
    with torch.no_grad():
        cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * stored["a"]).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)
        cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    return cam[0, 0].numpy()
''',
}


def _autograd_answer(middle: str, *, normalise_before=True, normalise_after=True, eps="1e-7",
                     interpolate="mode='bilinear', align_corners=False", score="logits[0, c]",
                     hooks="finally") -> str:
    """A Grad-CAM with one thing changed (for the mistakes)."""
    remove = "    finally:\n        h.remove()\n" if hooks == "finally" else "    finally:\n        pass\n"
    return HEADER + f'''
def grad_cam(model, image, target_layer, class_idx=None):
    acts = {{}}
    h = target_layer.register_forward_hook(lambda m, i, o: acts.update(a=o))
    model.eval()
    try:
        logits = model(image[None])
{remove}    c = int(logits.argmax()) if class_idx is None else class_idx
    (g,) = torch.autograd.grad({score}, acts["a"])
    with torch.no_grad():
        cam = (g.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True)
{middle}        if {normalise_before}:
            cam = (cam - cam.min()) / (cam.max() - cam.min() + {eps})
        cam = F.interpolate(cam, size=image.shape[-2:], {interpolate})
        if {normalise_after}:
            cam = (cam - cam.min()) / (cam.max() - cam.min() + {eps})
    return cam[0, 0].numpy()
'''


RELU = "        cam = torch.relu(cam)\n"

MISTAKES = {
    "no_relu": (sim.MISTAKES[AID]["grad_cam"], "apply ReLU to the weighted sum"),
    "align_corners": (_autograd_answer(RELU, interpolate="mode='bilinear', align_corners=True"), "align_corners=False"),
    "softmax": (_autograd_answer(RELU, score="torch.softmax(logits, 1)[0, c]"), "raw logit"),
    "single_minmax_before": (_autograd_answer(RELU, normalise_after=False),
                             "you min-max normalised once, before upsampling"),
    "large_eps_once": (_autograd_answer(RELU, normalise_before=False, eps="1e-5"), "the shape is right, the scale is not"),
    "no_relu_once_after": (_autograd_answer("", normalise_before=False), "apply ReLU to the weighted sum"),
    "hooks_left": (_autograd_answer(RELU, hooks="left"), "call .remove()"),
    "not_upsampled": (HEADER + '''
def grad_cam(model, image, target_layer, class_idx=None):
    acts = {}
    h = target_layer.register_forward_hook(lambda m, i, o: acts.update(a=o))
    logits = model(image[None]); h.remove(); c = int(logits.argmax()) if class_idx is None else class_idx
    g, = torch.autograd.grad(logits[0, c], acts["a"])
    cam = torch.relu((g.mean((2, 3), keepdim=True) * acts["a"]).sum(1)[0]).detach()
    return ((cam - cam.min()) / (cam.max() - cam.min() + 1e-7)).numpy()
''', "heat map should have the image's shape"),
    "returns_tensor": (HEADER + '''
def grad_cam(model, image, target_layer, class_idx=None):
    return torch.zeros(image.shape[-2:])
''', "got a tensor"),
    "class_zero_default": (_autograd_answer(RELU).replace("c = int(logits.argmax()) if class_idx is None else class_idx",
                                                          "c = class_idx or 0"), "should explain the predicted class"),
}


# ---------------------------------------------------------------------------- helpers


def run_cell(source: str, namespace: dict, name: str):
    filename = f"<cell {name} {id(namespace)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def answer(source: str):
    ns = {"__name__": "__main__"}
    run_cell(source, ns, "grad_cam")
    return ns["grad_cam"]


def source_nb():
    return json.loads((ROOT / "solutions" / AID / f"{AID}.ipynb").read_text())


def submission(source: str) -> dict:
    nb = nbformat.read(str(ROOT / "exercises" / AID / f"{AID}.ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = source
    return json.loads(nbformat.writes(nb))


def verified(source_notebook: dict, submitted: dict, seed: int = 0) -> dict:
    verdicts = verifier.verify(AID, source_notebook, submitted, seed=seed, sandboxed=False, time_limit=2.0)
    return {v.grade_id: (v.points, v.message) for v in verdicts}


def in_kernel_message(fn, check: str, **params) -> str:
    try:
        getattr(grading, check)(fn, **params)
    except AssertionError as exc:
        return str(exc)
    return ""


# ---------------------------------------------------------------------------- the models


@pytest.mark.parametrize("seed", [0, 3, 12345])
def test_the_probes_lenet_is_skinlab_lenet(seed):
    from skinlab.models import LeNet

    torch.manual_seed(seed)
    reference = LeNet(7).eval()
    mine = probes.lenet(seed)
    theirs, ours = reference.state_dict(), mine.state_dict()
    assert list(theirs) == list(ours)
    for key in theirs:
        assert torch.equal(theirs[key], ours[key]), key
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(reference(x), mine(x))
    assert [type(m).__name__ for m in reference.modules()][1:] == [type(m).__name__ for m in mine.modules()][1:]


@pytest.mark.parametrize("kind,size", [("lenet", None), ("tiny", None), ("tiny", [7, 19])])
def test_judge_and_probe_build_the_same_case(kind, size):
    model_j, image_j, layer_j, what_j = judge._cam_case(kind, 5, size)
    model_p, image_p, layer_p, what_p = probes.cam_inputs(kind, 5, size)
    assert torch.equal(image_j, image_p) and what_j == what_p
    assert tuple(image_p.shape[-2:]) == ((32, 32) if kind == "lenet" else tuple(size or (12, 16)))
    assert torch.equal(model_j(image_j[None]), model_p(image_p[None]))
    assert type(layer_j) is type(layer_p) is torch.nn.Conv2d
    if kind == "lenet":
        from skinlab.models import LeNet

        assert isinstance(model_j, LeNet) and not isinstance(model_p, LeNet)


def test_the_trusted_side_keeps_the_variants_and_the_probes_import_no_skinlab():
    text = (ROOT / "skinlab" / "grading" / "ex5_gradcam" / "probes.py").read_text()
    assert "_cam_variant" not in text and not hasattr(probes, "_cam_variant")
    assert "import skinlab" not in text and "from skinlab" not in text
    assert callable(judge._cam_variant) and callable(judge._cam_case)  # tests reach these


def test_fresh_draws_vary_and_stay_in_range():
    rng = np.random.default_rng(0)
    draws = [judge._fresh_matches(rng) for _ in range(300)]
    assert {d["kind"] for d in draws} == {"lenet", "tiny"}
    assert len({d["seed"] for d in draws}) == len(draws)
    for d in draws:
        assert roundtrip(d) == d  # plain JSON
        if d["kind"] == "tiny":
            height, width = d["size"]
            assert height != width and 5 <= height <= 24 and 5 <= width <= 24
            assert d["class_idx"] is None or 0 <= d["class_idx"] < probes.TINY_CLASSES
        else:
            assert "size" not in d and (d["class_idx"] is None or 0 <= d["class_idx"] < probes.LENET_CLASSES)
    assert {d["class_idx"] for d in draws} == {None, *range(probes.LENET_CLASSES)}
    assert len({tuple(d["size"]) for d in draws if d["kind"] == "tiny"}) > 50
    case = [judge._fresh_case(rng) for _ in range(50)]
    assert all("class_idx" not in d for d in case) and {d["kind"] for d in case} == {"lenet", "tiny"}


# ---------------------------------------------------------------------------- correct answers: full marks


@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_answers_unlike_the_reference_keep_full_marks(name):
    fn = answer(CORRECT[name])
    rng = np.random.default_rng(7)
    for params in [{}, {"kind": "tiny"}] + [judge._fresh_matches(rng) for _ in range(6)]:
        assert in_kernel_message(fn, "check_cam_matches", **params) == "", params
        case = {k: v for k, v in params.items() if k != "class_idx"}
        for check in ("check_cam_output", "check_cam_argmax", "check_cam_hooks_removed"):
            assert in_kernel_message(fn, check, **case) == "", (check, params)
    got = verified(source_nb(), submission(CORRECT[name]), seed=3)
    assert {gid: pts for gid, (pts, _) in got.items()} == FULL, got


# ---------------------------------------------------------------------------- the tolerance decision


def test_a_single_minmax_after_upsampling_is_the_reference_times_a_factor_and_passes():
    fn = answer(CORRECT["single_minmax_after"])
    model, image, layer, _ = judge._cam_case("lenet", 0)
    want = judge._reference(model, image, layer, 1)
    got = fn(model, image.clone(), layer, 1).astype(np.float64)
    diff = np.abs(got - want).max()
    assert diff > judge._TOL  # it would fail a plain 1e-5 comparison (this is the case)
    r = judge._cam_variant(model, image, layer, 1, normalise="none", raw_range=True)
    s, residual = judge._proportion(got, want)
    assert s == pytest.approx(r / (r + 1e-7), abs=1e-6) and residual < 1e-6
    assert judge._accepted(got, want, judge._single_minmax_floor(model, image, layer, 1))
    assert got.max() < 1 - 1e-4  # and its maximum is below the old output check's bar
    assert in_kernel_message(fn, "check_cam_output") == ""
    assert in_kernel_message(fn, "check_cam_matches") == ""


def test_the_acceptance_is_exact_about_scale_and_shape():
    model, image, layer, _ = judge._cam_case("tiny", 2, [9, 14])
    want = judge._reference(model, image, layer, 0)
    floor = judge._single_minmax_floor(model, image, layer, 0)
    assert 0 < floor < 1
    assert judge._accepted(want * floor, want, floor)
    assert judge._accepted(want * (1 + floor) / 2, want, floor)
    assert not judge._accepted(want * (floor - 1e-3), want, floor)  # more than a 2e-7 guard explains
    bent = want.copy()
    bent[0, 0] += 2e-5
    assert not judge._accepted(bent, want, floor)
    assert judge._accepted(want + 9e-6, want, floor)  # the plain 1e-5 tolerance
    zero = np.zeros_like(want)
    assert judge._accepted(zero, zero, 1.0) and not judge._accepted(zero + 1e-3, zero, 1.0)


def test_a_single_minmax_before_upsampling_fails_with_a_precise_message():
    fn = answer(MISTAKES["single_minmax_before"][0])
    for params in ({}, {"kind": "tiny"}, {"kind": "tiny", "seed": 3, "size": [11, 6], "class_idx": 2}):
        message = in_kernel_message(fn, "check_cam_matches", **params)
        assert "you min-max normalised once, before upsampling" in message, params
        assert "pytorch-grad-cam min-max normalises before and after upsampling" in message
        assert "max difference" in message


def test_a_large_eps_in_a_single_minmax_is_named():
    fn = answer(MISTAKES["large_eps_once"][0])
    message = in_kernel_message(fn, "check_cam_matches")
    assert "Your map is Grad-CAM's times 0.9" in message and "the scale is not" in message
    # the eps of the double min-max acts on a range of ~1: even 1e-5 there is fine
    assert in_kernel_message(answer(_autograd_answer(RELU, eps="1e-5")), "check_cam_matches") == ""


def test_an_all_zero_map_fails_the_output_check_only_where_grad_cam_is_not_empty():
    fn = answer(HEADER + "def grad_cam(model, image, target_layer, class_idx=None):\n"
                "    return np.zeros(tuple(image.shape[-2:]), dtype=np.float32)\n")
    assert "is all zeros, but Grad-CAM's is not" in in_kernel_message(fn, "check_cam_output")
    rng = np.random.default_rng(0)
    for _ in range(200):  # a case where Grad-CAM's map for class 1 is empty
        params = judge._fresh_case(rng)
        model, image, layer, _ = judge._cam_case(params["kind"], params["seed"], params.get("size"))
        if judge._reference(model, image, layer, 1).max() == 0:
            break
    else:
        pytest.skip("no empty map drawn")
    assert in_kernel_message(fn, "check_cam_output", **params) == ""


@pytest.mark.parametrize("name", [n for n in MISTAKES if n not in ("hooks_left", "returns_tensor", "not_upsampled")])
def test_mistakes_on_fresh_inputs_fail_and_are_named(name):
    source, phrase = MISTAKES[name]
    fn = answer(source)
    check = "check_cam_argmax" if name == "class_zero_default" else "check_cam_matches"
    rng = np.random.default_rng(11)
    named = failed = 0
    for _ in range(8):
        params = judge._fresh_matches(rng)
        if check == "check_cam_argmax":
            params.pop("class_idx")
        message = in_kernel_message(fn, check, **params)
        failed += bool(message)
        named += phrase in message
    assert failed >= 5 and named == failed


# ---------------------------------------------------------------------------- what rests on the worker's word

CONSTANT_MAPS = {
    "ones": "np.ones(tuple(image.shape[-2:]))",
    "zeros": "np.zeros(tuple(image.shape[-2:]))",
    "a fixed ramp": "np.linspace(0, 1, image.shape[-2] * image.shape[-1]).reshape(tuple(image.shape[-2:]))",
}


@pytest.mark.parametrize("name", sorted(CONSTANT_MAPS))
def test_a_map_that_ignores_the_class_earns_no_argmax_point(name):
    """Attack: the argmax point compared two maps the worker sent with each other only, so a map
    that ignores the class (same for None and for the predicted class) earned it. Defence: the
    judge also asks for the class whose reference map (its own) is farthest from the predicted
    class's, and the answer's two maps must differ where the references do."""
    fn = answer(HEADER + f"def grad_cam(model, image, target_layer, class_idx=None):\n    return {CONSTANT_MAPS[name]}\n")
    rng = np.random.default_rng(5)
    for params in [{}, {"kind": "tiny"}] + [judge._fresh_case(rng) for _ in range(4)]:
        message = in_kernel_message(fn, "check_cam_argmax", **params)
        assert "are the same, but Grad-CAM's differ" in message, (params, message)


def test_the_argmax_check_builds_its_own_reference_for_the_other_class():
    rng = np.random.default_rng(9)
    for params in [{}, {"kind": "tiny"}] + [judge._fresh_case(rng) for _ in range(20)]:
        model, image, layer, _ = judge._cam_case(params.get("kind", "lenet"), params.get("seed", 0), params.get("size"))
        top = judge._predicted(model, image)
        other, distance = judge._farthest_class(model, image, layer, top)
        assert other != top and distance > judge._CLASSES_APART, params
    # the simulated mistake (no ReLU) still explains the class asked for: it keeps the point
    fn = answer(sim.MISTAKES[AID]["grad_cam"])
    for params in [{}, {"kind": "tiny", "seed": 7}] + [judge._fresh_case(rng) for _ in range(6)]:
        assert in_kernel_message(fn, "check_cam_argmax", **params) == "", params


# ---------------------------------------------------------------------------- what the probe reports


def test_the_probe_reports_hooks_grads_and_modes():
    observe = InKernel({"grad_cam": answer(CORRECT["backward_hook"])})
    seen = observe("ex5_gradcam.cam", kind="lenet", seed=0, classes=[0, None], size=None)
    assert seen["hooks_before"] == seen["hooks_after"]
    assert len(seen["hooks_before"]) == len(list(probes.lenet(0).modules())) + 1  # + the global hooks
    assert seen["param_grads"] is True and seen["modes_changed"] == []
    assert [m["shape"] for m in seen["maps"]] == [[32, 32], [32, 32]]
    assert all(isinstance(m["values"], np.ndarray) and m["values"].dtype == np.float64 for m in seen["maps"])

    solution = answer(sim.solution_answers(AID)["grad_cam"])
    seen = InKernel({"grad_cam": solution})("ex5_gradcam.cam", kind="tiny", seed=1, classes=[2], size=[6, 9])
    assert seen["param_grads"] is False and seen["maps"][0]["shape"] == [6, 9]


def test_a_left_gradient_or_training_mode_is_reported_but_not_judged():
    # .grad: a correct answer that calls backward() fills it; training mode: not asked of the model
    source = CORRECT["backward_hook"].replace("    weights = saved", "    model.train()\n    weights = saved")
    fn = answer(source)
    seen = InKernel({"grad_cam": fn})("ex5_gradcam.cam", kind="tiny", seed=0, classes=[1], size=None)
    assert seen["param_grads"] is True and seen["modes_changed"]
    assert in_kernel_message(fn, "check_cam_hooks_removed", kind="tiny") == ""


def test_a_global_hook_left_behind_fails():
    fn = answer(HEADER + '''
from torch.nn.modules.module import register_module_forward_hook

def grad_cam(model, image, target_layer, class_idx=None):
    acts = {}
    register_module_forward_hook(lambda m, i, o: acts.update(a=o) if m is target_layer else None)
    model.eval(); logits = model(image[None]); c = int(logits.argmax()) if class_idx is None else class_idx
    g, = torch.autograd.grad(logits[0, c], acts["a"])
    cam = torch.relu((g.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True)).detach()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return ((cam - cam.min()) / (cam.max() - cam.min() + 1e-7))[0, 0].numpy()
''')
    from torch.nn.modules import module as torch_module

    before = dict(torch_module._global_forward_hooks)
    try:
        assert "call .remove()" in in_kernel_message(fn, "check_cam_hooks_removed")
    finally:
        for key in set(torch_module._global_forward_hooks) - set(before):
            del torch_module._global_forward_hooks[key]


# ---------------------------------------------------------------------------- tuned to the visible tests


def _tuned_answer() -> str:
    """Returns the reference maps of the visible tests' inputs (recognised by the image's sum),
    and a plausible map (all ones) for any other input."""
    table = {}
    for kind, classes in (("lenet", (0, 1, None)), ("tiny", (1,))):
        model, image, layer, _ = judge._cam_case(kind, 0)
        for c in classes:
            target = judge._predicted(model, image) if c is None else c
            key = (tuple(image.shape), c, round(float(image.sum()), 3))
            table[key] = judge._reference(model, image, layer, target).tolist()
    return HEADER + f'''
TABLE = {table!r}


def grad_cam(model, image, target_layer, class_idx=None):
    key = (tuple(image.shape), class_idx, round(float(image.sum()), 3))
    if key in TABLE:
        return np.array(TABLE[key], dtype=np.float32)
    return np.ones(tuple(image.shape[-2:]), dtype=np.float32)
'''


def test_an_answer_tuned_to_the_visible_inputs_loses_the_hidden_points():
    source = _tuned_answer()
    fn = answer(source)
    visible = [("check_cam_output", {}), ("check_cam_matches", {}), ("check_cam_argmax", {}),
               ("check_cam_matches", {"kind": "tiny"}), ("check_cam_hooks_removed", {})]
    for check, params in visible:
        assert in_kernel_message(fn, check, **params) == "", (check, params)
    got = verified(source_nb(), submission(source), seed=5)
    points = {gid: pts for gid, (pts, _) in got.items()}
    assert points["test_cam_lenet"] == points["test_cam_small_cnn"] == 0, got
    assert got["test_cam_lenet"][1].startswith("(hidden test)")
    # its all-ones map for the hidden argmax input is the same for every class: no argmax point
    assert points["test_cam_argmax"] == 0 and "are the same, but Grad-CAM's differ" in got["test_cam_argmax"][1]
    assert sum(points.values()) <= 3


# ---------------------------------------------------------------------------- same verdict, both paths

CALLS = [
    ("check_cam_output", {"kind": "tiny", "seed": 4, "size": [10, 7]}),
    ("check_cam_matches", {"kind": "lenet", "seed": 6, "class_idx": 0}),
    ("check_cam_matches", {"kind": "tiny", "seed": 2, "size": [9, 14], "class_idx": None}),
    ("check_cam_argmax", {"kind": "tiny", "seed": 7, "size": [13, 8]}),
    ("check_cam_hooks_removed", {"kind": "lenet", "seed": 1}),
]


def _call_source(check: str, params: dict) -> str:
    args = "".join(f", {k}={v!r}" for k, v in params.items())
    return f"from skinlab.grading import {check}\n\n{check}(grad_cam{args})"


def _custom_notebook(answer_source: str) -> dict:
    """A source notebook of one answer cell and one test cell per call of CALLS."""
    cells = [nbformat.v4.new_code_cell(answer_source)]
    cells[0].metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False, "grade_id": "grad_cam"}
    for i, (check, params) in enumerate(CALLS):
        cell = nbformat.v4.new_code_cell(_call_source(check, params))
        cell.metadata["nbgrader"] = {"solution": False, "grade": True, "locked": True,
                                     "grade_id": f"t{i}", "points": 1}
        cells.append(cell)
    return json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=cells)))


@pytest.mark.parametrize("name", list(MISTAKES))
def test_the_same_verdict_in_the_kernel_and_through_the_verifier(name):
    source, phrase = MISTAKES[name]
    fn = answer(source)
    kernel = {}
    for i, (check, params) in enumerate(CALLS):
        grading.reset()
        kernel[f"t{i}"] = in_kernel_message(fn, check, **params)
    nb = _custom_notebook(source)
    remote = {gid: message for gid, (_, message) in verified(nb, nb).items()}
    assert remote == kernel
    assert any(phrase in m for m in kernel.values()), kernel


# ---------------------------------------------------------------------------- the worker is never told the predicted class


@pytest.mark.slow  # four notebooks through the verifier
def test_a_forged_default_map_earns_nothing_the_answer_does_not():
    """Red team, round 2: class_idx=None explained class 0, and the worker's reply copied the map
    of the class the request named next (the predicted one) into the default map: 10/10. The
    default map is now asked alone, then the map of every class."""
    answers = bank.answers(AID)
    for seed in (3, 11):
        honest = verified(source_nb(), submission(answers.FORGED_ARGMAX_HONEST), seed=seed)
        forged = verified(source_nb(), submission(answers.FORGED_ARGMAX), seed=seed)
        assert forged == honest, forged
        assert forged["test_cam_argmax"][0] == 0, forged  # the predicted class is not 0 at these seeds
