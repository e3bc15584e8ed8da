"""The checks behind the graded exercises, run in-process (no nbgrader, no kernel).

Each answer cell is executed like a notebook cell (its source registered in linecache, as IPython
does), then the test cells' code, hidden tests included. tests/test_exercises.py runs the same
submissions through real nbgrader.
"""

from __future__ import annotations

import copy
import linecache
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from skinlab.course.exercises import exercise_ids
from skinlab import grading
from skinlab.grading import feedback
from skinlab.split import DEFAULT_FRACTIONS

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = exercise_ids(ROOT)
sys.path.insert(0, str(ROOT / "solutions"))
import build  # noqa: E402
import simulated_class as sim  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()


def run_cell(source: str, namespace: dict, name: str):
    """exec ``source`` as a notebook cell would run (its own file name in linecache)."""
    filename = f"<cell {name} {id(namespace)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def answers_namespace(aid: str, student: str) -> tuple[dict, Exception | None]:
    ns = {"__name__": "__main__"}
    error = None
    for gid, src in sim.answer_sources(aid, student).items():
        try:
            run_cell(src, ns, gid)
        except Exception as exc:  # an answer cell that raises (as in a notebook, go on)
            error = exc
    return ns, error


def grade_cells(aid: str) -> dict[str, str]:
    """{grade_id: source} of the test cells of the solution notebook (hidden tests included)."""
    nb = nbformat.read(str(ROOT / "solutions" / aid / f"{aid}.ipynb"), as_version=4)
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }


def failing_cells(aid: str, ns: dict) -> dict[str, str]:
    failed = {}
    for gid, src in grade_cells(aid).items():
        try:
            run_cell(src, dict(ns), gid)
        except Exception as exc:
            failed[gid] = f"{type(exc).__name__}: {exc}"
    return failed


# ---------------------------------------------------------------------------- the simulated class

MESSAGES = {  # a phrase the first failure must contain, per (assignment, student)
    ("ex1_split", "mistake"): "Split lesions, not images",
    ("ex2_class_weights", "mistake"): "multiply by the median frequency",
    ("ex3_lenet", "mistake"): "no ReLU after the second convolution",
    ("ex4_training", "mistake"): "gradients were not zeroed",
    ("ex5_gradcam", "mistake"): "apply ReLU to the weighted sum",
}


@pytest.mark.parametrize("aid", sim.ASSIGNMENT_IDS)
# infinite_loop waits out a 10 s time limit per exercise: slow (make test), not the edit loop
@pytest.mark.parametrize("student", ["solution", "mistake", "uses_reference",
                                     pytest.param("infinite_loop", marks=pytest.mark.slow), "raises"])
def test_each_submission_fails_exactly_the_cells_it_deserves(aid, student, monkeypatch):
    monkeypatch.setattr(grading, "TIME_LIMIT_S", 3.0)  # the real limit is 10 s
    ns, _ = answers_namespace(aid, student)
    failed = failing_cells(aid, ns)
    expected = {gid for gid, pts in sim.expected_points(aid, student).items() if pts == 0}
    assert set(failed) == expected, failed
    messages = " | ".join(failed.values())
    if student == "uses_reference":
        assert all("reference implementation in skinlab" in m for m in failed.values()), messages
        assert "scores 0" in messages
    elif student == "infinite_loop":
        assert "infinite loop" in messages
    elif student == "mistake":
        assert MESSAGES[aid, student] in messages


def test_mistake_messages_name_the_problem():
    ns, _ = answers_namespace("ex1_split", "mistake")
    with pytest.raises(AssertionError, match=r"lesion HAM_\d{7} leaks: its \d+ images are split across"):
        grading.check_split_no_leak(ns["split_by_lesion"])
    ns, _ = answers_namespace("ex2_class_weights", "mistake")
    with pytest.raises(AssertionError, match=r"the weight of class 1 is 6, expected 2 \(off by \+4\)"):
        grading.check_weights_values(ns["median_frequency_weights"], [0, 0, 0, 1, 2, 2], 3)


# ---------------------------------------------------------------------------- more mistakes, one check each

VARIANTS = [
    ("split_by_lesion", "check_split_output", sim.with_default_fractions('''
import pandas as pd
def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    return pd.Series(["train"] * len(metadata))
'''), "indexed like metadata"),
    ("split_by_lesion", "check_split_deterministic", sim.with_default_fractions('''
import numpy as np, pandas as pd
def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    metadata["split"] = np.where(np.random.random(len(metadata)) < .5, "train", "test")
    return metadata["split"]
'''), "modified its input"),
    ("split_by_lesion", "check_split_deterministic", sim.with_default_fractions('''
import numpy as np, pandas as pd
def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    r, c = np.random.default_rng(0).random(metadata["lesion_id"].nunique()), np.cumsum(fractions)
    u = dict(zip(metadata["lesion_id"].unique(), np.where(r < c[0], "train", np.where(r < c[1], "val", "test"))))
    return metadata["lesion_id"].map(u)
'''), "use the seed argument"),
    ("split_by_lesion", "check_split_stratified", sim.with_default_fractions('''
import numpy as np, pandas as pd
def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    r, c = np.random.default_rng(seed).random(metadata["lesion_id"].nunique()), np.cumsum(fractions)
    u = dict(zip(metadata["lesion_id"].unique(), np.where(r < c[0], "train", np.where(r < c[1], "val", "test"))))
    return metadata["lesion_id"].map(u)
'''), "Stratify by dx"),
    ("median_frequency_weights", "check_weights_missing_class", '''
import numpy as np, torch
def median_frequency_weights(labels, num_classes):
    f = np.bincount(labels, minlength=num_classes) / len(labels)
    return torch.tensor(np.median(f) / f, dtype=torch.float32)
''', "Raise a ValueError naming the class"),
    ("median_frequency_weights", "check_weights_output", '''
import numpy as np
def median_frequency_weights(labels, num_classes):
    f = np.bincount(np.asarray(labels), minlength=num_classes) / len(labels)
    return np.median(f) / f
''', "should return a torch.Tensor"),
    ("LeNet", "check_lenet_logits", '''
import torch
from torch import nn
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                               nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                               nn.ReLU(), nn.Linear(84, num_classes), nn.Softmax(dim=1))
    def forward(self, x):
        return self.f(x)
''', "ends with softmax"),
    ("LeNet", "check_lenet_layers", '''
import torch
from torch import nn
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 12, 5), nn.ReLU(),
                               nn.MaxPool2d(2), nn.Flatten(), nn.Linear(300, 120), nn.ReLU(), nn.Linear(120, 84),
                               nn.ReLU(), nn.Linear(84, num_classes))
    def forward(self, x):
        return self.f(x)
''', "the 2nd layer should be Conv2d(6→16"),
    ("LeNet", "check_lenet_parameters", '''
import torch
from torch import nn
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                               nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                               nn.ReLU(), nn.Linear(84, 7))
    def forward(self, x):
        return self.f(x)
''', None),  # passes: 61,751 with the default
    ("LeNet", "check_lenet_equivalent", '''
import torch
from torch import nn
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                               nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                               nn.ReLU(), nn.Linear(84, num_classes))
    def forward(self, x):
        return self.f(x)
''', "average pooling"),
    ("train_one_epoch", "check_train_returns", '''
import numpy as np
def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train(); losses, correct, n = [], 0, 0
    for x, y in loader:
        optimizer.zero_grad(); out = model(x); loss = criterion(out, y); loss.backward(); optimizer.step()
        losses.append(loss.item()); correct += (out.argmax(1) == y).sum().item(); n += len(y)
    return float(np.mean(losses)), correct / n
''', "You averaged the batch means"),
    ("train_one_epoch", "check_train_mode", '''
def train_one_epoch(model, loader, criterion, optimizer, device):
    total, correct, n = 0.0, 0, 0
    for x, y in loader:
        optimizer.zero_grad(); out = model(x); loss = criterion(out, y); loss.backward(); optimizer.step()
        total += loss.item() * len(y); correct += (out.argmax(1) == y).sum().item(); n += len(y)
    return total / n, correct / n
''', "call model.train()"),
    ("train_one_epoch", "check_train_matches", '''
def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train(); total, correct, n = 0.0, 0, 0
    for x, y in loader:
        optimizer.zero_grad(); out = model(x); loss = criterion(out, y); loss.backward(); optimizer.step()
        total += loss * len(y); correct += (out.argmax(1) == y).sum().item(); n += len(y)
    return total / n, correct / n
''', "use .item()"),
    ("evaluate", "check_evaluate_mode", '''
import torch
def evaluate(model, loader, criterion, device):
    model.eval(); total, correct, n = 0.0, 0, 0
    for x, y in loader:
        out = model(x); total += criterion(out, y).item() * len(y); correct += (out.argmax(1) == y).sum().item(); n += len(y)
    return total / n, correct / n
''', "torch.no_grad()"),
    ("evaluate", "check_evaluate_changes_nothing", '''
import torch
def evaluate(model, loader, criterion, device):
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            out = model(x); total += criterion(out, y).item() * len(y); correct += (out.argmax(1) == y).sum().item(); n += len(y)
    return total / n, correct / n
''', "BatchNorm running statistics"),
    ("grad_cam", "check_cam_hooks_removed", '''
import torch, torch.nn.functional as F
def grad_cam(model, image, target_layer, class_idx=None):
    acts = {}
    target_layer.register_forward_hook(lambda m, i, o: acts.update(a=o))
    model.eval(); logits = model(image[None]); c = int(logits.argmax()) if class_idx is None else class_idx
    g, = torch.autograd.grad(logits[0, c], acts["a"])
    cam = torch.relu((g.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True)).detach()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    cam = F.interpolate(cam, size=image.shape[1:], mode="bilinear", align_corners=False)
    return ((cam - cam.min()) / (cam.max() - cam.min() + 1e-7))[0, 0].numpy()
''', "call .remove()"),
    ("grad_cam", "check_cam_matches", '''
import torch, torch.nn.functional as F
def grad_cam(model, image, target_layer, class_idx=None):
    acts = {}
    h = target_layer.register_forward_hook(lambda m, i, o: acts.update(a=o))
    model.eval(); logits = model(image[None]); h.remove(); c = int(logits.argmax()) if class_idx is None else class_idx
    g, = torch.autograd.grad(logits[0, c], acts["a"])
    cam = torch.relu((g.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True)).detach()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    cam = F.interpolate(cam, size=image.shape[1:], mode="bilinear", align_corners=True)
    return ((cam - cam.min()) / (cam.max() - cam.min() + 1e-7))[0, 0].numpy()
''', "align_corners=False"),
    ("grad_cam", "check_cam_output", '''
import torch
def grad_cam(model, image, target_layer, class_idx=None):
    acts = {}
    h = target_layer.register_forward_hook(lambda m, i, o: acts.update(a=o))
    logits = model(image[None]); h.remove(); c = int(logits.argmax()) if class_idx is None else class_idx
    g, = torch.autograd.grad(logits[0, c], acts["a"])
    cam = (g.mean((2, 3), keepdim=True) * acts["a"]).sum(1)[0].detach()
    return (cam / cam.abs().max()).numpy()
''', "heat map should have the image's shape"),
]


@pytest.mark.parametrize("name,check,source,phrase", VARIANTS, ids=[f"{v[1]}-{i}" for i, v in enumerate(VARIANTS)])
def test_a_mistake_gets_an_explanation(name, check, source, phrase):
    ns = {"__name__": "__main__"}
    run_cell(source, ns, name)
    if phrase is None:
        getattr(grading, check)(ns[name])
        return
    with pytest.raises(AssertionError) as info:
        getattr(grading, check)(ns[name])
    assert phrase in str(info.value)


# ---------------------------------------------------------------------------- the guard

REFERENCE_ROUTES = [
    "from skinlab.split import split_by_lesion",
    "import skinlab.split\nsplit_by_lesion = skinlab.split.split_by_lesion",
    "import functools, skinlab.split\nsplit_by_lesion = functools.partial(skinlab.split.split_by_lesion)",
    f"import skinlab.split as s\ndef split_by_lesion(m, fractions={DEFAULT_FRACTIONS}, seed=0):\n    return s.split_by_lesion(m, fractions, seed)",
    f"def make():\n    from skinlab.split import split_by_lesion as f\n    return lambda m, fractions={DEFAULT_FRACTIONS}, seed=0: f(m, fractions, seed)\nsplit_by_lesion = make()",
    # Only the runtime guard can see these two: no skinlab in the source.
    f"import importlib\ndef split_by_lesion(m, fractions={DEFAULT_FRACTIONS}, seed=0):\n"
    "    return importlib.import_module('skin' + 'lab.split').split_by_lesion(m, fractions, seed)",
    f"def split_by_lesion(m, fractions={DEFAULT_FRACTIONS}, seed=0):\n"
    "    mod = __import__('skin' + 'lab.split', fromlist=['x'])\n    return mod.split_by_lesion(m, fractions, seed)",
]


@pytest.mark.parametrize("source", REFERENCE_ROUTES)
def test_every_route_to_the_reference_scores_zero(source):
    ns = {"__name__": "__main__"}
    run_cell(source, ns, "answer")
    for check in (grading.check_split_output, grading.check_split_no_leak, grading.check_split_deterministic):
        with pytest.raises(grading.ReferenceUsedError, match="write|Write"):
            check(ns["split_by_lesion"])


def test_runtime_guard_catches_a_reference_call_hidden_from_the_source():
    ns = {"__name__": "__main__"}
    run_cell(REFERENCE_ROUTES[-2], ns, "answer")
    assert grading.guard._static_reference_use("split_by_lesion", ns["split_by_lesion"]) is None
    with pytest.raises(grading.ReferenceUsedError, match=r"calls split\.split_by_lesion"):
        grading.check_split_output(ns["split_by_lesion"])


def test_reference_lenet_inside_an_own_class_is_caught():
    ns = {"__name__": "__main__"}
    run_cell(
        "import importlib\nfrom torch import nn\nclass LeNet(nn.Module):\n    def __init__(self, num_classes=7):\n"
        "        super().__init__()\n        self.net = getattr(importlib.import_module('skin' + 'lab.models'), 'LeNet')(num_classes)\n"
        "    def forward(self, x):\n        return self.net(x)\n", ns, "answer")
    with pytest.raises(grading.ReferenceUsedError):
        grading.check_lenet_parameters(ns["LeNet"])


def test_own_code_that_mentions_skinlab_in_words_is_not_flagged():
    ns = {"__name__": "__main__"}
    source = sim.solution_answers("ex2_class_weights")["median_frequency_weights"].replace(
        '"""Class weights', '"""Like skinlab.balance (the reference), class weights')
    run_cell("# I checked my answer against skinlab's docs\n" + source, ns, "answer")
    grading.check_weights_values(ns["median_frequency_weights"], [0, 1, 1, 2, 2, 2], 3)


def test_reference_verdict_is_shared_by_both_answers_of_the_training_exercise():
    ns, _ = answers_namespace("ex4_training", "uses_reference")
    with pytest.raises(grading.ReferenceUsedError):
        grading.check_train_returns(ns["train_one_epoch"])
    with pytest.raises(grading.ReferenceUsedError):
        grading.check_evaluate_mode(ns["evaluate"])  # evaluate itself is honest


@pytest.mark.slow  # waits out a time limit
def test_time_limit_stops_a_loop_once_then_fails_fast(monkeypatch):
    import time

    monkeypatch.setattr(grading, "TIME_LIMIT_S", 0.3)
    ns = {"__name__": "__main__"}
    run_cell("def median_frequency_weights(labels, num_classes):\n    while True:\n        try:\n"
             "            pass\n        except Exception:\n            pass\n", ns, "answer")
    with pytest.raises(grading.TooSlowError, match="infinite loop"):
        grading.check_weights_output(ns["median_frequency_weights"])
    start = time.perf_counter()
    with pytest.raises(grading.TooSlowError):
        grading.check_weights_values(ns["median_frequency_weights"], [0, 1], 2)
    assert time.perf_counter() - start < 0.25  # no second wait


def test_student_exception_propagates_with_the_input_named():
    ns = {"__name__": "__main__"}
    run_cell("def median_frequency_weights(labels, num_classes):\n    raise KeyError('oops')\n", ns, "answer")
    with pytest.raises(KeyError) as info:
        grading.check_weights_output(ns["median_frequency_weights"])
    assert any("labels given as a list" in n for n in getattr(info.value, "__notes__", []))


# ---------------------------------------------------------------------------- oracles and tolerances


def test_reference_passes_the_split_checks_when_the_guard_is_off(monkeypatch):
    from skinlab.split import split_by_lesion

    monkeypatch.setattr(grading.checking, "own_work", lambda *a: None)
    monkeypatch.setattr(grading.guard, "_reference_paths", lambda name: ())
    for seed in (0, 31, 32):
        grading.check_split_stratified(split_by_lesion, seed=seed)
        grading.check_split_no_leak(split_by_lesion, seed=seed)
    grading.check_split_fractions(split_by_lesion, fractions=(0.5, 0.25, 0.25), seed=22)
    grading.check_split_deterministic(split_by_lesion)


def test_stratification_check_accepts_sklearn_and_rejects_an_unstratified_group_split(monkeypatch):
    import pandas as pd

    monkeypatch.setattr(grading.checking, "own_work", lambda *a: None)  # this file imports skinlab elsewhere
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    # Whatever it is asked, this split holds out 1 fold of 5 for test, then 1 of 5 of the rest for
    # validation: the check is asked about those fractions, not about the defaults.
    sgkf_fractions = (0.8 * 0.8, 0.8 * 0.2, 0.2)

    def sgkf(meta, fractions=DEFAULT_FRACTIONS, seed=0):
        out = pd.Series("train", index=meta.index)
        rest, test = next(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(meta, meta["dx"], meta["lesion_id"]))
        out.iloc[test] = "test"
        sub = meta.iloc[rest]
        _, val = next(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(sub, sub["dx"], sub["lesion_id"]))
        out.iloc[rest[val]] = "val"
        return out

    def unstratified(meta, fractions=DEFAULT_FRACTIONS, seed=0):
        out = pd.Series("train", index=meta.index)
        gss = GroupShuffleSplit(1, test_size=0.36, random_state=seed)
        _, rest = next(gss.split(meta, groups=meta["lesion_id"]))
        out.iloc[rest] = "test"
        return out

    for seed in range(4):
        grading.check_split_stratified(sgkf, seed=seed, fractions=sgkf_fractions)
        with pytest.raises(AssertionError, match="Stratify by dx"):
            grading.check_split_stratified(unstratified, seed=seed)


def test_lenet_parameter_count_matches_pytorch_and_the_reference():
    from skinlab.models import LeNet

    assert grading.lenet_parameter_count() == 61_751 == sum(p.numel() for p in LeNet().parameters())
    assert grading.lenet_parameter_count(3) == sum(p.numel() for p in LeNet(3).parameters())


def test_hand_written_cam_variant_matches_pytorch_grad_cam():
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    for kind in ("lenet", "tiny"):
        model, image, layer, _ = grading.ex5_gradcam.judges._cam_case(kind, 3)
        mine = grading.ex5_gradcam.judges._cam_variant(model, image, layer, 1)
        with GradCAM(model, target_layers=[layer]) as cam:
            theirs = cam(input_tensor=image[None], targets=[ClassifierOutputTarget(1)])[0]
        np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_reference_training_matches_a_hand_written_loop():
    model_a, model_b = grading.ex4_training.judges._tiny_mlp(0), grading.ex4_training.judges._tiny_mlp(0)
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.1, momentum=0.9)
    loss_ref = grading.ex4_training.judges._reference_train(model_a, grading.ex4_training.judges._tiny_loader(0), torch.nn.CrossEntropyLoss(), opt_a)
    model_b.train()
    total, n = 0.0, 0
    for x, y in grading.ex4_training.judges._tiny_loader(0):
        opt_b.zero_grad()
        loss = torch.nn.functional.cross_entropy(model_b(x), y)
        loss.backward()
        opt_b.step()
        total, n = total + loss.item() * len(y), n + len(y)
    assert loss_ref[0] == pytest.approx(total / n, abs=1e-7)
    assert grading.ex4_training.judges._max_param_diff(model_a, model_b) < 1e-7


# ---------------------------------------------------------------------------- feedback and tampering


def test_feedback_preprocessor_removes_hidden_tests_and_their_traceback_lines():
    cell = nbformat.v4.new_code_cell(
        "check(f)\n### BEGIN HIDDEN TESTS\ncheck(f, secret_seed=12345)\n### END HIDDEN TESTS",
        execution_count=7,
    )
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t", "points": 1}
    cell.outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="wrong",
        traceback=["\x1b[31m-----\x1b[39m", "\x1b[36mCell\x1b[39m In[7], line 3\n----> 3 check(f, secret_seed=12345)",
                   "File /x/skinlab/grading.py:10, in check\n   assert secret",
                   "\x1b[36mCell\x1b[39m In[3], line 2, in f\n      2 return my_code()",
                   "AssertionError: wrong"])]
    nb = nbformat.v4.new_notebook(cells=[cell])
    out, _ = feedback.HideHiddenTests()(copy.deepcopy(nb), {})  # as nbconvert calls it
    text = nbformat.writes(out)
    assert "secret_seed" not in text and "secret" not in text
    assert "check(f)" in out.cells[0].source
    assert "my_code()" in text and "AssertionError: wrong" in text


def _release_nb(aid="ex3_lenet"):
    return ROOT / "exercises" / aid / f"{aid}.ipynb"


@pytest.mark.parametrize("student,problem", [("edits_test", "edited"), ("deletes_test", "deleted"), ("mistake", None), ("untouched", None)])
def test_find_tampering(tmp_path, student, problem):
    nb = sim.submission(_release_nb(), "ex3_lenet", student)
    path = tmp_path / "sub.ipynb"
    nbformat.write(nb, str(path))
    found = grading.find_tampering(_release_nb(), path)
    assert found == ([(sim.TAMPERED_CELL["ex3_lenet"], problem)] if problem else [])


def test_find_tampering_sees_changed_points(tmp_path):
    nb = nbformat.read(str(_release_nb()), as_version=4)
    test_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    test_cell.metadata["nbgrader"]["points"] = 100
    nbformat.write(nb, str(tmp_path / "sub.ipynb"))
    assert grading.find_tampering(_release_nb(), tmp_path / "sub.ipynb") == [
        (test_cell.metadata["nbgrader"]["grade_id"], "metadata changed")]


# ---------------------------------------------------------------------------- notebooks and CLI


@pytest.mark.parametrize("aid", sim.ASSIGNMENT_IDS)
def test_solution_notebook_is_built_from_its_source(aid):
    committed = (ROOT / "solutions" / aid / f"{aid}.ipynb").read_text()
    assert committed == build.notebook_text(aid), "run: python solutions/build.py"


@pytest.mark.parametrize("aid", sim.ASSIGNMENT_IDS)
def test_notebook_layout(aid):
    nb = nbformat.read(str(ROOT / "solutions" / aid / f"{aid}.ipynb"), as_version=4)
    metas = [c.metadata.get("nbgrader", {}) for c in nb.cells]
    answers = [m["grade_id"] for m in metas if m.get("solution")]
    tests = {m["grade_id"]: m["points"] for m in metas if m.get("grade")}
    assert answers == {"ex1_split": ["split_by_lesion"], "ex2_class_weights": ["median_frequency_weights"],
                       "ex3_lenet": ["LeNet"], "ex4_training": ["train_one_epoch", "evaluate"],
                       "ex5_gradcam": ["grad_cam"]}[aid]
    assert tests == sim.POINTS[aid] and sum(tests.values()) == 10
    sources = [c.source for c, m in zip(nb.cells, metas) if m.get("grade")]
    assert sum("BEGIN HIDDEN TESTS" in s for s in sources) >= 2
    assert any("plt." in c.source for c in nb.cells if c.cell_type == "code"), "a figure"


def test_cli_rejects_an_unknown_assignment(capsys):
    with pytest.raises(SystemExit) as info:
        grading.main(["release", "ex9_nothing"])
    assert info.value.code == 2
    assert "unknown assignment" in capsys.readouterr().err


def test_cli_needs_a_course_directory(tmp_path):
    with pytest.raises(SystemExit, match="no nbgrader_config.py"):
        grading.main(["--course-dir", str(tmp_path), "release"])


# ---------------------------------------------------------------- grading in parallel batches


@pytest.mark.parametrize("jobs", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("subset", [EXERCISES, EXERCISES[:1], EXERCISES[1:4]])
def test_grading_batches_cover_each_assignment_exactly_once(jobs, subset):
    import fnmatch

    globs = grading.grading_batches(subset, jobs)
    assert len(globs) == min(jobs, len(subset))
    matched = [aid for g in globs for aid in EXERCISES if fnmatch.fnmatchcase(aid, g)]
    assert sorted(matched) == sorted(subset)  # no id twice, none left out, no other id


def test_grading_batches_balance_the_expected_cost():
    globs = grading.grading_batches(EXERCISES, 2)
    import fnmatch

    cost = grading.grading_cost()  # each exercise declares its own (skinlab/grading/<id>/__init__.py)
    costs = [sum(cost[a] for a in EXERCISES if fnmatch.fnmatchcase(a, g)) for g in globs]
    total = sum(cost.values())
    assert max(costs) < 0.65 * total  # a greedy split: far from one call doing everything


def test_grade_rejects_jobs_below_one(capsys):
    with pytest.raises(SystemExit) as exc:
        grading.main(["grade", "submitted-nowhere", "--jobs", "0"])
    assert exc.value.code == 2
    assert "--jobs 0" in capsys.readouterr().err


def test_the_checks_module_does_not_import_nbconvert():
    """Every student's kernel imports skinlab.grading at autograding: nbconvert alone costs ~2 s."""
    import subprocess

    code = "import sys, skinlab.grading; print(sorted(m for m in ('nbconvert', 'nbformat', 'nbgrader') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
