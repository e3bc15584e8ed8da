"""A simulated class: submissions that an honest autograder must grade right.

For each assignment: the solution, the untouched release, an infinite loop, an answer that
raises, a plausible partial mistake, the same mistake with the failing test cell edited or
deleted, and an answer that calls the reference implementation. ``expected_points`` gives the
points each must get per test cell (``POINTS``: the exercise sources' cell headers). Used by
``tests/test_exercises.py``; instructors can try the grader on it:

    python solutions/simulated_class.py /tmp/class          # writes /tmp/class/<student>/<id>/<id>.ipynb
    python -m skinlab.grading grade /tmp/class
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import nbformat

from skinlab.course.exercises import exercise_ids, test_points
from skinlab.split import DEFAULT_FRACTIONS

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT_IDS = exercise_ids(ROOT)


def with_default_fractions(answer: str) -> str:
    """``answer`` (student code) with the name ``DEFAULT_FRACTIONS`` written out as its value.

    A student's answer runs where ``skinlab`` cannot be imported (the grading worker blocks it), so
    its default fractions are a literal; writing that literal from ``skinlab.split`` keeps every
    simulated answer on the course's defaults. An answer left unconverted fails loudly (NameError).
    """
    return answer.replace("DEFAULT_FRACTIONS", repr(tuple(DEFAULT_FRACTIONS)))


# ---------------------------------------------------------------------------- answers

MISTAKES = {
    # Stratified, but image by image: images of one lesion land in different splits.
    "ex1_split": {"split_by_lesion": with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    rng = np.random.default_rng(seed)
    out = pd.Series("train", index=metadata.index, name="split")
    for dx, rows in metadata.groupby("dx").groups.items():
        rows = np.asarray(rows)[rng.permutation(len(rows))]
        n_train = int(round(fractions[0] * len(rows)))
        n_val = int(round(fractions[1] * len(rows)))
        out.loc[rows[n_train:n_train + n_val]] = "val"
        out.loc[rows[n_train + n_val:]] = "test"
    return out
''')},
    # 1 / f_c: not normalised by the median frequency.
    "ex2_class_weights": {"median_frequency_weights": '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    counts = np.bincount(np.asarray(labels), minlength=num_classes)
    if (counts == 0).any():
        raise ValueError(f"class {int(np.argmin(counts))} has no samples")
    return torch.tensor(counts.sum() / counts, dtype=torch.float32)
'''},
    # No ReLU after the second convolution.
    "ex3_lenet": {"LeNet": '''
import torch
from torch import nn


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(self.conv2(x), 2)
        x = x.flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))
'''},
    # optimizer.zero_grad() forgotten: gradients accumulate over the epoch.
    "ex4_training": {"train_one_epoch": '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    total, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return total / seen, correct / seen
''', "evaluate": None},
    # No ReLU on the weighted sum of activation maps.
    "ex5_gradcam": {"grad_cam": '''
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
'''},
}

# The test cell that the mistake fails, which the "edits"/"deletes" students tamper with.
TAMPERED_CELL = {
    "ex1_split": "test_split_no_leak",
    "ex2_class_weights": "test_weights_example",
    "ex3_lenet": "test_lenet_equivalent",
    "ex4_training": "test_train_matches",
    "ex5_gradcam": "test_cam_lenet",
}

# Three routes to the reference: an alias wrapped in a function, a module alias, a subclass,
# importlib with a computed name (only the runtime guard can see it), the library itself.
USES_REFERENCE = {
    "ex1_split": {"split_by_lesion": with_default_fractions('''
from skinlab.split import split_by_lesion as _mine


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    return _mine(metadata, fractions, seed)
''')},
    "ex2_class_weights": {"median_frequency_weights": '''
import skinlab.balance as helpers


def median_frequency_weights(labels, num_classes):
    return helpers.median_frequency_weights(labels, num_classes)
'''},
    "ex3_lenet": {"LeNet": '''
from skinlab import models


class LeNet(models.LeNet):
    """My LeNet."""
'''},
    "ex4_training": {"train_one_epoch": '''
import importlib


def train_one_epoch(model, loader, criterion, optimizer, device):
    engine = importlib.import_module(".".join(["skin" + "lab", "eng" + "ine"]))
    return engine.train_one_epoch(model, loader, criterion, optimizer, device)
''', "evaluate": None},
    "ex5_gradcam": {"grad_cam": '''
import numpy as np


def grad_cam(model, image, target_layer, class_idx=None):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model, target_layers=[target_layer]) as cam:
        targets = None if class_idx is None else [ClassifierOutputTarget(class_idx)]
        return cam(input_tensor=image[None], targets=targets)[0]
'''},
}

INFINITE_LOOP = {
    "ex1_split": {"split_by_lesion": with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    lesions = list(metadata["lesion_id"].unique())
    assigned = {}
    i = 0
    while len(assigned) < len(lesions):  # i is never incremented
        if np.random.default_rng(seed + i).random() < fractions[0]:
            assigned[lesions[i]] = "train"
    return metadata["lesion_id"].map(assigned)
''')},
    "ex2_class_weights": {"median_frequency_weights": '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    counts = [0] * num_classes
    labels = list(labels)
    i = 0
    while i < len(labels):
        counts[int(labels[i])] += 1  # forgot i += 1
    freq = np.array(counts) / len(labels)
    return torch.tensor(np.median(freq) / freq, dtype=torch.float32)
'''},
    "ex3_lenet": {"LeNet": '''
import torch
from torch import nn


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        while x.shape[-1] > 5:  # pooling forgotten: the size never shrinks
            x = torch.relu(self.conv1(x)) if x.shape[1] == 3 else x
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x.flatten(1))))))
'''},
    "ex4_training": {"train_one_epoch": '''
import itertools


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    total, seen = 0.0, 0
    for x, y in itertools.cycle(loader):  # never ends
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        seen += len(y)
    return total / seen, 0.0
''', "evaluate": None},
    "ex5_gradcam": {"grad_cam": '''
import torch


def grad_cam(model, image, target_layer, class_idx=None):
    acts = {}
    h = target_layer.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    logits = model(image[None])
    h.remove()
    while acts["a"].grad is None:  # waits for a .grad that a non-leaf tensor never gets
        logits.max().backward(retain_graph=True)
    return acts["a"].grad
'''},
}

RAISES = {
    "ex1_split": {"split_by_lesion": with_default_fractions('''
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    lesions = metadata.groupby("lesion")  # KeyError: the column is lesion_id
    return pd.Series("train", index=metadata.index)
''')},
    "ex2_class_weights": {"median_frequency_weights": '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    counts = np.bincount(labels, minlength=num_classes)
    return torch.from_numpy(np.median(counts) / counts, dtype=torch.float32)  # TypeError
'''},
    "ex3_lenet": {"LeNet": '''
import torch
from torch import nn


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.fc1 = nn.Linear(16 * 4 * 4, 120)  # wrong size: 16 x 5 x 5 = 400
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.features(x).flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))
'''},
    "ex4_training": {"train_one_epoch": '''
def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    return loss.item() / len(loader.dataset.size), 0.0  # AttributeError
''', "evaluate": None},
    # An error at the top of the cell: grad_cam is never defined.
    "ex5_gradcam": {"grad_cam": '''
import numpy as np
import torch
from torch.nn.functional import upsample_bilinear2d


def grad_cam(model, image, target_layer, class_idx=None):
    return np.zeros(image.shape[1:])
'''},
}

# ---------------------------------------------------------------------------- expected points

# {test grade_id: points} per exercise, read from the exercise's source cell headers.
POINTS = {aid: test_points(aid, ROOT) for aid in ASSIGNMENT_IDS}

# Test cells each submission fails (all others pass).
_MISTAKE_FAILS = {
    # An image-level split leaks: the fractions, stratification and determinism points need a
    # lesion-level split first (skinlab/grading/ex1_split.py), so it keeps the output's 2 points.
    "ex1_split": {"test_split_no_leak", "test_split_fractions", "test_split_stratified", "test_split_deterministic"},
    "ex2_class_weights": {"test_weights_example", "test_weights_more"},
    "ex3_lenet": {"test_lenet_equivalent"},
    "ex4_training": {"test_train_matches"},
    "ex5_gradcam": {"test_cam_lenet", "test_cam_small_cnn"},
}
_EVALUATE_CELLS = {"test_evaluate_matches", "test_evaluate_mode", "test_evaluate_changes_nothing"}


def _fails(aid: str, student: str) -> set[str]:
    every = set(POINTS[aid])
    if student == "solution":
        return set()
    if student in ("mistake", "edits_test", "deletes_test"):
        return _MISTAKE_FAILS[aid]
    if aid == "ex4_training" and student in ("infinite_loop", "raises"):
        return every - _EVALUATE_CELLS  # evaluate is their own, correct
    return every  # untouched release, raises, infinite loop, uses_reference


STUDENTS = ("solution", "untouched", "infinite_loop", "raises", "mistake", "edits_test", "deletes_test",
            "uses_reference")


def expected_points(aid: str, student: str) -> dict[str, int]:
    """{test grade_id: points} that ``student`` deserves on ``aid``."""
    fails = _fails(aid, student)
    return {gid: (0 if gid in fails else pts) for gid, pts in POINTS[aid].items()}


EXPECTED_TAMPERING = {"edits_test": "edited", "deletes_test": "deleted"}

# ---------------------------------------------------------------------------- notebooks


def solution_answers(aid: str) -> dict[str, str]:
    """The solution's answer cells, markers removed: {grade_id: source}."""
    nb = nbformat.read(str(ROOT / "solutions" / aid / f"{aid}.ipynb"), as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            out[meta["grade_id"]] = re.sub(r"\n? *### (BEGIN|END) SOLUTION", "", cell.source)
    return out


def answer_sources(aid: str, student: str) -> dict[str, str]:
    """{answer grade_id: source} of ``student`` (not "untouched") on ``aid``."""
    answers = solution_answers(aid)
    chosen = {
        "solution": {},
        "infinite_loop": INFINITE_LOOP[aid],
        "raises": RAISES[aid],
        "mistake": MISTAKES[aid],
        "edits_test": MISTAKES[aid],
        "deletes_test": MISTAKES[aid],
        "uses_reference": USES_REFERENCE[aid],
    }[student]
    answers.update({k: v.strip("\n") for k, v in chosen.items() if v is not None})
    return answers


def submission(release_nb: Path, aid: str, student: str) -> nbformat.NotebookNode:
    """The notebook ``student`` hands in for ``aid``, built from the release notebook."""
    nb = nbformat.read(str(release_nb), as_version=4)
    if student == "untouched":
        return nb
    answers = answer_sources(aid, student)
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if meta.get("solution") and gid in answers:
            cell = copy.deepcopy(cell)
            cell.source = answers[gid]
        elif gid == TAMPERED_CELL[aid] and student == "deletes_test":
            continue
        elif gid == TAMPERED_CELL[aid] and student == "edits_test":
            cell = copy.deepcopy(cell)
            cell.source = "# this test is wrong, my answer is fine\nassert True"
        cells.append(cell)
    nb.cells = cells
    return nb


def write_class(release_dir: Path, out: Path, assignments=tuple(POINTS), students=STUDENTS) -> Path:
    """Write ``out/<student>/<id>/<id>.ipynb`` for every student and assignment."""
    for aid in assignments:
        for student in students:
            nb = submission(Path(release_dir) / aid / f"{aid}.ipynb", aid, student)
            target = Path(out) / student / aid / f"{aid}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(target))
    return Path(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python solutions/simulated_class.py OUT_DIR")
    print(write_class(ROOT / "exercises", Path(sys.argv[1])))
