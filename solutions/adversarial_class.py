"""An adversarial class: students who try to beat the grader, and honest ones it must not punish.

Each entry is one student's notebook for one exercise, with the points it deserves per test cell
and what the instructor must see. ``tests/test_grading_adversarial.py`` grades them all in one
batch with the real grade command (sandboxed) and checks both. The attacks know the course
folder's path (``{course}``) and the package's (``{package}``): the strongest student there is.

    python solutions/adversarial_class.py /tmp/class COURSE_DIR   # writes the notebooks
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import simulated_class as sim  # noqa: E402


@dataclass
class Entry:
    student: str
    assignment: str
    attack: str  # code added to the answer cell (after the answer), or a whole answer (replace=True)
    points: dict  # {test grade_id: points deserved}
    sees: str  # what the instructor must see: disagreement | similarity-reference | similarity-pair | nothing
    answer: str = "solution"  # the answer the attack rides on: solution | mistake | raw
    replace: dict = field(default_factory=dict)  # {answer grade_id: source} replacing the answer
    tamper: str = ""  # a key of TAMPERINGS: the nbgrader metadata this student edits
    skipped: str = ""  # a phrase of the skipped.csv reason when the folder cannot be graded under its name


def _pts(aid, student="solution"):
    return sim.expected_points(aid, student)


def _only(aid, passing):
    return {gid: (pts if gid in passing else 0) for gid, pts in sim.POINTS[aid].items()}


TRAIN_CELLS = {"test_train_matches", "test_train_returns", "test_train_mode"}

_GUARDED = "try:\n{body}\nexcept Exception as _exc:\n    print('attack failed:', type(_exc).__name__)\n"


def _guarded(code: str) -> str:
    return _GUARDED.format(body="\n".join("    " + line for line in code.strip("\n").split("\n")))


ATTACKS = {
    # --- the checks replaced in the kernel: nbgrader says 10, the verifier the truth
    "patch_checks_attribute": '''
import skinlab.grading as _g
for _n in dir(_g):
    if _n.startswith("check_"):
        setattr(_g, _n, lambda *a, **k: None)
''',
    "patch_checks_sys_modules": '''
import sys, types
class _Fake(types.ModuleType):
    def __getattr__(self, name):
        return lambda *a, **k: None
sys.modules["skinlab.grading"] = _Fake("skinlab.grading")
import skinlab
skinlab.grading = sys.modules["skinlab.grading"]
''',
    "patch_import": '''
import builtins, types
_real_import = builtins.__import__
def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if name.startswith("skinlab.grading"):
        fake = types.ModuleType("fake")
        for n in fromlist or ():
            setattr(fake, n, lambda *a, **k: None)
        return fake
    return _real_import(name, globals, locals, fromlist, level)
builtins.__import__ = _import
''',
    "neuter_numpy_torch": '''
import numpy as np, torch
np.allclose = lambda *a, **k: True
_np_abs = np.abs
np.abs = lambda x, *a, **k: _np_abs(x) * 0
torch.allclose = lambda *a, **k: True
''',
    "neuter_ipython": '''
_ip = get_ipython()
_ip.input_transformers_post.append(lambda lines: ["pass\\n"] if any("check_" in l for l in lines) else lines)
''',
    # --- reading and writing where it must not
    "read_hidden_tests": '''
import linecache, sys
for _p in ["{course}/solutions/ex2_class_weights/ex2_class_weights.ipynb", "{course}/gradebook.db",
           "{course}/solutions/ex2_class_weights/ex2_class_weights.py"]:
    try:
        print("STOLEN", open(_p, "rb").read(200000).decode("latin-1"))
    except Exception as _exc:
        print("blocked:", _p, type(_exc).__name__)
_answer = median_frequency_weights
def median_frequency_weights(labels, num_classes):
    print("CALLER", "".join(linecache.getlines(sys._getframe(1).f_code.co_filename)))
    return _answer(labels, num_classes)
''',
    "write_everywhere": '''
import sqlite3, subprocess, sys
try:
    _c = sqlite3.connect("{course}/gradebook.db")
    _c.execute("update grade set manual_score = 100")
    _c.commit()
    print("GRADEBOOK WRITTEN")
except Exception as _exc:
    print("gradebook blocked:", type(_exc).__name__)
for _p in ["{course}/submitted/victim/ex2_class_weights/ex2_class_weights.ipynb",
           "{course}/solutions/ex2_class_weights/ex2_class_weights.ipynb", "{package}/grading/__init__.py"]:
    try:
        with open(_p, "a") as _f:
            _f.write("\\n# pwned\\n")
        print("WRITTEN", _p)
    except Exception as _exc:
        print("write blocked:", _p, type(_exc).__name__)
# a process that outlives the kernel and writes the gradebook later
subprocess.Popen([sys.executable, "-c", "import time, sqlite3; time.sleep(8); "
                  "c = sqlite3.connect('{course}/gradebook.db'); c.execute('update grade set manual_score = 100'); c.commit()"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
''',
    "network": '''
import socket
for _addr in [("127.0.0.1", {port}), ("localhost", {port})]:
    try:
        socket.create_connection(_addr, timeout=2).sendall(b"stolen")
        print("CONNECTED", _addr)
    except Exception as _exc:
        print("network blocked:", type(_exc).__name__)
''',
    "spawn_processes": '''
import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)  # skinlab-adversary-marker"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)  # skinlab-adversary-marker"])
    os._exit(0)
''',
    "output_flood": '''
_answer = median_frequency_weights
def median_frequency_weights(labels, num_classes):
    for _ in range(20):
        print("x" * 5_000_000)
    return _answer(labels, num_classes)
''',
}

# evaluate() replaced by one that ends the process one way or another; train_one_epoch is right.
EVALUATE_BREAKS = {
    "exit_os": "import os\n\ndef evaluate(model, loader, criterion, device):\n    os._exit(3)\n",
    "exit_sys": "import sys\n\ndef evaluate(model, loader, criterion, device):\n    sys.exit(1)\n",
    "kill_kernel": "import os, signal\n\ndef evaluate(model, loader, criterion, device):\n    os.kill(os.getpid(), signal.SIGKILL)\n",
    "swallow_time_limit": ("def evaluate(model, loader, criterion, device):\n    while True:\n        try:\n"
                           "            while True:\n                pass\n        except BaseException:\n            pass\n"),
    "memory_bomb": ("def evaluate(model, loader, criterion, device):\n    hoard = []\n    while True:\n"
                    "        hoard.append(bytearray(256 << 20))\n"),
}

HARDCODED_WEIGHTS = '''
import torch

_KNOWN = {
    ((0, 1, 1, 2, 2, 2, 3, 3, 3, 3), 4): [2.0, 1.0, 0.6667, 0.5],
    ((0, 0, 0, 1, 2, 2), 3): [2 / 3, 2.0, 1.0],
}


def median_frequency_weights(labels, num_classes):
    key = (tuple(int(v) for v in labels), num_classes)
    if key == ((0, 0, 2, 2, 3), 4):  # the visible missing-class example
        raise ValueError("class 1 has no samples")
    return torch.tensor(_KNOWN.get(key, [1.0] * num_classes), dtype=torch.float32)
'''

REFERENCE_VIA = {
    ("ref_importlib", "ex1_split", "split_by_lesion"): '''
import importlib
split_by_lesion = importlib.import_module("skin" + "lab." + "split").split_by_lesion
''',
    ("ref_exec", "ex2_class_weights", "median_frequency_weights"): '''
exec("from skin" + "lab.balance import median_frequency_weights")
''',
    ("ref_strings", "ex3_lenet", "LeNet"): '''
LeNet = getattr(__import__("".join(["s", "k", "i", "n", "l", "a", "b", ".models"]), fromlist=["LeNet"]), "LeNet")
''',
}

# The reference (skinlab.balance) copied with every name changed, comments and docstring gone.
COPIED_REFERENCE = '''
import numpy as np
import torch


def median_frequency_weights(lbls, n_cls):
    arr = np.asarray(lbls).reshape(-1).astype(np.int64)
    tally = np.bincount(arr, minlength=n_cls)[:n_cls]
    zero = [k for k in range(n_cls) if tally[k] == 0]
    if zero:
        raise ValueError(f"class {zero} has no samples: its weight would be infinite")
    share = tally / tally.sum()
    return torch.tensor(np.median(share) / share, dtype=torch.float32)
'''

# Two students hand in the same (wrong) split under different names.
SHARED_SPLIT = '''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    {rng} = np.random.default_rng(seed)
    {out} = pd.Series("train", index=metadata.index, name="split")
    for {dx}, {rows} in metadata.groupby("dx").groups.items():
        {rows} = np.asarray({rows})[{rng}.permutation(len({rows}))]
        {a} = int(round(fractions[0] * len({rows})))
        {b} = int(round(fractions[1] * len({rows})))
        {out}.loc[{rows}[{a}:{a} + {b}]] = "val"
        {out}.loc[{rows}[{a} + {b}:]] = "test"
    return {out}
'''

# Correct answers written unlike the reference: full marks.
UNLIKE_REFERENCE = {
    ("honest_functional_lenet", "ex3_lenet", "LeNet"): '''
import torch
import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.head = nn.ModuleList([nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, num_classes)])
        self.c1 = nn.Conv2d(3, 6, kernel_size=5)
        self.c2 = nn.Conv2d(6, 16, kernel_size=5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = x.view(x.size(0), -1)
        x = F.relu(self.head[0](x))
        x = F.relu(self.head[1](x))
        return self.head[2](x)
''',
    ("honest_autograd_gradcam", "ex5_gradcam", "grad_cam"): '''
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
''',
    ("honest_zero_grad_after_step", "ex4_training", "train_one_epoch"): '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    loss_sum, hits, count = 0.0, 0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs)
        batch_loss = criterion(outputs, targets)
        batch_loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += batch_loss.item() * inputs.size(0)
        hits += int((outputs.argmax(dim=1) == targets).sum())
        count += inputs.size(0)
    return loss_sum / count, hits / count
''',
    ("honest_bincount_weights", "ex2_class_weights", "median_frequency_weights"): '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    if isinstance(labels, torch.Tensor):
        labels = labels.cpu().numpy()
    counts = np.bincount(np.array(labels, dtype=int).ravel(), minlength=num_classes)
    for c in range(num_classes):
        if counts[c] == 0:
            raise ValueError(f"no samples of class {c}")
    frequencies = counts / len(np.array(labels).ravel())
    return torch.from_numpy(np.median(frequencies) / frequencies).float()
''',
}


# ---------------------------------------------------------------------------- lying about itself (issue #20)
# Answers that describe themselves falsely to the grader. Every point rests on values the
# verifier recomputes from inputs it drew, so a false description earns nothing that the
# answer's own computation does not.

_LENET_HEADER = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"

ONE_LINEAR_LENET = _LENET_HEADER + '''
class LeNet(nn.Module):
    """Not LeNet: one linear layer on the flattened image."""

    def __init__(self, num_classes=7):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))
'''

# The attack that scored 10/10 when the verifier believed the worker: the probes the worker
# imports are replaced by functions that describe LeNet-5 (zero weights, the outputs those give).
FORGED_LENET_PROBES = ONE_LINEAR_LENET + '''

def _forge():
    import numpy as np
    import grading_probes.ex3_lenet as probes  # only in the grader's worker

    shapes = [((6, 3, 5, 5), "Conv2d", 3, 6), ((16, 6, 5, 5), "Conv2d", 6, 16), ((120, 400), "Linear", 400, 120),
              ((84, 120), "Linear", 120, 84), (None, "Linear", 84, None)]

    def layers(num_classes, batch):
        out = []
        for i, (w, kind, cin, cout) in enumerate(shapes):
            cout = num_classes if cout is None else cout
            w = (cout, 84) if w is None else w
            entry = {"kind": kind, "in": cin, "out": cout, "type": kind, "bias": True, "params": 0,
                     "module": i, "declared": i, "shares": None, "weight_shape": list(w), "bias_shape": [cout],
                     "weight": np.zeros(w, np.float32), "bias": np.zeros(cout, np.float32),
                     "input": np.zeros((batch, cin) if kind == "Linear" else (batch, cin, 32, 32), np.float32),
                     "output": np.zeros((batch, cout), np.float32)}
            if kind == "Conv2d":
                entry.update(kernel=[5, 5], stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1)
                entry["shape"] = [batch, cout, 28 if i == 0 else 10, 28 if i == 0 else 10]
            else:
                entry["shape"] = [batch, cout]
            out.append(entry)
        return out

    def described(num_classes, batch):
        return {"module": True, "declared": layers(num_classes, batch), "layers": layers(num_classes, batch),
                "output": {"type": "Tensor", "shape": [batch, num_classes],
                           "values": np.zeros((batch, num_classes), np.float32)}}

    probes.layers = lambda call, answers, num_classes, batch, seed: described(num_classes, batch)
    probes.equivalent = lambda call, answers, seed, num_classes, batch: described(num_classes, batch)
    probes.parameters = lambda call, answers: {"module": True, "total": 61751, "declared": layers(7, 2),
                                               "trace": described(7, 2)}


try:
    _forge()
except ImportError:  # in the student's own kernel there is nothing to forge
    pass
'''

# A LeNet without the ReLU after its first linear layer (honestly worth 7 of 10) that zeroes its
# own weights in eval mode: it scored 10/10 while the equivalence loaded the weights the worker
# reported. Judged on the grader's weights, its eval-mode values show no LeNet at all.
SELF_ZEROING_LENET = _LENET_HEADER + '''
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        if not self.training:
            with torch.no_grad():
                for p in self.parameters():
                    p.zero_()
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.fc1(x.flatten(1))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
'''

# LeNet with the ReLUs after both linear layers left out (written with F.relu): 7 of 10, and the
# equivalence cell names both missing ReLUs.
NO_LINEAR_RELUS_LENET = SELF_ZEROING_LENET.replace(
    "        if not self.training:\n            with torch.no_grad():\n                for p in self.parameters():\n"
    "                    p.zero_()\n", "").replace("x = F.relu(self.fc2(x))", "x = self.fc2(x)")
assert "zero_" not in NO_LINEAR_RELUS_LENET and NO_LINEAR_RELUS_LENET.count("F.relu") == 2

# No model at all: every probe replaced by a trace whose first "convolution" is one dot product
# per image chosen to be negative (ReLU makes it zero) and whose later layers have no bias, so
# zeros chain through. It took the layers cell (2 points) and the output cell from a reported
# shape; now layers want LeNet-5's weight shapes, weights are taken by the layer's place, and
# the output cell wants values behind its shape (found by a red-team helper, 2026-12-07).
FORGED_ZERO_CHAIN = '''
import torch
from torch import nn


LeNet = None  # no model at all


def _forge():
    import numpy as np
    import grading_probes.ex3_lenet as probes  # only in the grader's worker

    def described(num_classes, batch, seed, scale=1.0):
        images = probes.lenet_input(seed, batch, scale).numpy()
        z = lambda *s: np.zeros(s, np.float32)
        conv = dict(kind="Conv2d", kernel=[5, 5], stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1)
        # 1st layer: a single 3x32x32 "kernel" (one dot product per image); pick the grader weight
        # index (`module`) whose dot products are all negative, so that ReLU makes them zero.
        for m in range(5, 100000):
            w, _ = probes.grader_weights(seed, m, [1, 3, 32, 32], None)
            out0 = (w.numpy()[None].astype(np.float64) * images[:, None].astype(np.float64)).sum((2, 3, 4))
            if (out0 < 0).all():
                break
        spec = [  # (desc, weight_shape, input, output, shape reported)
            (dict(conv, **{"in": 3, "out": 6}), [1, 3, 32, 32], images, out0.reshape(batch, 1, 1, 1).astype(np.float32), [batch, 6, 28, 28]),
            (dict(conv, **{"in": 6, "out": 16}), [400, 1, 1, 1], z(batch, 1, 1, 1), z(batch, 400, 1, 1), [batch, 16, 10, 10]),
            ({"kind": "Linear", "in": 400, "out": 120}, [120, 400], z(batch, 400), z(batch, 120), [batch, 120]),
            ({"kind": "Linear", "in": 120, "out": 84}, [84, 120], z(batch, 120), z(batch, 84), [batch, 84]),
            ({"kind": "Linear", "in": 84, "out": num_classes}, [num_classes, 84], z(batch, 84), z(batch, num_classes), [batch, num_classes]),
        ]
        layers = []
        for i, (d, w, inp, out, shape) in enumerate(spec):
            d = dict(d, type=d["kind"], bias=False, params=0, module=m if i == 0 else i, declared=i, shares=None,
                     weight_shape=w, bias_shape=None, input=inp, output=out, shape=shape)
            layers.append(d)
        return {"module": True, "declared": layers, "layers": layers,
                "output": {"type": "Tensor", "shape": [batch, num_classes], "values": z(batch, num_classes)}}

    probes.layers = lambda call, answers, num_classes, batch, seed: described(num_classes, batch, seed)
    probes.equivalent = lambda call, answers, seed, num_classes, batch: described(num_classes, batch, seed)
    probes.logits = lambda call, answers, seed, batch: described(7, batch, seed, 3.0)
    probes.output = lambda call, answers, num_classes, batch, seed: {"module": True, "output": {"type": "Tensor", "shape": [batch, num_classes]}}
    probes.parameters = lambda call, answers: {"module": True, "total": 61751, "declared": [], "trace": described(7, 2, 0)}


try:
    _forge()
except ImportError:
    pass
'''

# What a one-Linear "LeNet" honestly scores: the output's shape and raw logits, nothing else.
ONE_LINEAR_POINTS = _only("ex3_lenet", {"test_lenet_output", "test_lenet_logits"})


# ---------------------------------------------------------------------------- issue #20: strict, fair, safe
# An empty class "named" by listing every class (it earned the missing-class cell's 2 points).
EVERY_CLASS_MESSAGE = '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    counts = np.bincount(np.asarray(labels).reshape(-1), minlength=num_classes)
    if (counts == 0).any():
        raise ValueError("class " + " ".join(str(c) for c in range(num_classes)) + " has no samples")
    freq = counts / counts.sum()
    return torch.tensor(np.median(freq) / freq, dtype=torch.float32)
'''

# Right weights, returned as float64: only the output cell (type and dtype) is lost.
FLOAT64_WEIGHTS = EVERY_CLASS_MESSAGE.replace(
    '" ".join(str(c) for c in range(num_classes))', "\", \".join(str(c) for c in np.flatnonzero(counts == 0))").replace(
    "dtype=torch.float32", "dtype=torch.float64")

# The reference copied, renamed, padded with a statement without effect after each line and its
# comprehension unrolled into a loop (0.631 against the 0.64 threshold before no-effect
# statements were dropped).
PADDED_COPY = '''
import numpy as np
import torch


def median_frequency_weights(ys, k):
    v = np.asarray(ys).reshape(-1).astype(np.int64)
    None
    c = np.bincount(v, minlength=k)[:k]
    0
    e = []
    "padding"
    for j in range(k):
        if c[j] == 0:
            e.append(j)
        ...
    if e:
        raise ValueError(f"class {e} has no samples: its weight would be infinite")
    pass
    f = c / c.sum()
    1.0
    return torch.tensor(np.median(f) / f, dtype=torch.float32)
'''

# Correct weights whose cell also displays active content: the feedback page must run none of it.
ACTIVE_OUTPUTS = '''
from IPython.display import HTML, Markdown, SVG, display

display(Markdown("ok <img src=x onerror=\\"alert('PWN')\\"> [click](javascript:alert('PWN'))"))
display(HTML("<iframe src=\\"javascript:alert('PWN')\\"></iframe><a href=\\"javascript:alert('PWN')\\">x</a>"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg' onload=\\"alert('PWN')\\"><circle r='4'/></svg>"))
'''


# Training in eval mode and evaluating in train mode, with the worker's probes rewritten to report
# the right modes and no gradients: the modes were believed, now the values decide (2 of 10, the
# averaging cell, as the same answer earns without the forgery).
FORGED_MODES_TRAIN = '''
def train_one_epoch(model, loader, criterion, optimizer, device):
    total, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return total / count, correct / count


def _forge():
    import grading_probes.ex4_training as probes  # only in the grader's worker

    train_run, evaluate_run = probes.train_run, probes.evaluate_run

    def forged_train(*args, **kwargs):
        seen = train_run(*args, **kwargs)
        seen["modes"] = [[True, True] for _ in seen.get("modes", [])]
        return seen

    def forged_evaluate(*args, **kwargs):
        seen = evaluate_run(*args, **kwargs)
        seen["modes"] = [[False, False] for _ in seen.get("modes", [])]
        seen["grads"] = False
        return seen

    probes.train_run, probes.evaluate_run = forged_train, forged_evaluate


try:
    _forge()
except ImportError:
    pass
'''

FORGED_MODES_EVALUATE = '''
def evaluate(model, loader, criterion, device):
    total, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total += criterion(logits, y).item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return total / count, correct / count
'''

# An evaluate that calls loss.backward() (no step): right numbers, the model unchanged; it loses
# the mode cell only, and the feedback says gradients were computed during evaluation.
EVALUATE_BACKWARD = '''
def evaluate(model, loader, criterion, device):
    model.eval()
    total, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return total / count, correct / count
'''


# ---------------------------------------------------------------------------- tampered metadata, folder names
# Edited nbgrader metadata: the scores stay right (the verifier reads the source notebook), and
# tampered.csv names the cell and what was done to it. {key: (edit, grade_id in tampered.csv)}


def cell_of(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def extra_graded_cell(nb):
    """An extra locked test cell worth 50 points, which the source notebook does not have."""
    import nbformat

    cell = nbformat.v4.new_code_cell("assert True")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "free_points", "locked": True, "points": 50,
                                 "schema_version": 3, "solution": False, "task": False}
    nb.cells.append(cell)


def answer_locked_and_graded(nb, gid="median_frequency_weights"):
    cell_of(nb, gid).metadata["nbgrader"].update(locked=True, grade=True, points=5)


def mark_test_cell_as_answer(nb, gid="test_weights_missing_class"):
    cell_of(nb, gid).metadata["nbgrader"]["solution"] = True


TAMPERINGS = {
    "extra_graded": (extra_graded_cell, "free_points"),
    "answer_locked": (answer_locked_and_graded, "median_frequency_weights"),
    "test_as_answer": (mark_test_cell_as_answer, "test_weights_missing_class"),
}


def entries() -> list[Entry]:
    out = []
    sees_disagreement = [
        ("patch_checks_attribute", "ex2_class_weights", "mistake"),
        ("patch_checks_sys_modules", "ex3_lenet", "mistake"),
        ("patch_import", "ex4_training", "mistake"),
        ("neuter_numpy_torch", "ex5_gradcam", "mistake"),
    ]
    for attack, aid, answer in sees_disagreement:
        out.append(Entry(attack, aid, _guarded(ATTACKS[attack]), _pts(aid, answer), "disagreement", answer))
    # IPython's cell machinery: every later cell that calls a check becomes `pass`. The answer
    # returns ones: right type and shape (2 points), wrong values.
    out.append(Entry("neuter_ipython", "ex2_class_weights", _guarded(ATTACKS["neuter_ipython"]),
                     _only("ex2_class_weights", {"test_weights_output"}), "disagreement", "raw",
                     {"median_frequency_weights": "import torch\n\ndef median_frequency_weights(labels, num_classes):\n"
                                                  "    return torch.ones(num_classes)\n"}))
    for attack in ("read_hidden_tests", "write_everywhere", "network", "spawn_processes", "output_flood"):
        answer = "mistake" if attack == "write_everywhere" else "solution"
        out.append(Entry(attack, "ex2_class_weights", ATTACKS[attack] if attack in ("read_hidden_tests", "output_flood")
                         else _guarded(ATTACKS[attack]), _pts("ex2_class_weights", answer), "nothing", answer))
    out.append(Entry("victim", "ex2_class_weights", "", _pts("ex2_class_weights"), "nothing"))
    for student, body in EVALUATE_BREAKS.items():
        # A kernel that dies takes nbgrader's whole notebook with it; the verifier grades on.
        sees = "disagreement" if student in ("exit_os", "kill_kernel") else "nothing"
        out.append(Entry(student, "ex4_training", "", _only("ex4_training", TRAIN_CELLS), sees,
                         "solution", {"evaluate": body}))
    out.append(Entry("hardcoded_visible", "ex2_class_weights", "", _only("ex2_class_weights", {"test_weights_output"}),
                     "nothing", "raw", {"median_frequency_weights": HARDCODED_WEIGHTS}))
    for (student, aid, gid), body in REFERENCE_VIA.items():
        out.append(Entry(student, aid, "", {g: 0 for g in sim.POINTS[aid]}, "nothing", "raw", {gid: body}))
    out.append(Entry("copied_reference", "ex2_class_weights", "", _pts("ex2_class_weights"), "similarity-reference",
                     "raw", {"median_frequency_weights": COPIED_REFERENCE}))
    for student, names in (("copy_pair_a", dict(rng="rng", out="out", dx="dx", rows="rows", a="n_train", b="n_val")),
                           ("copy_pair_b", dict(rng="gen", out="result", dx="cls", rows="idx", a="k1", b="k2"))):
        out.append(Entry(student, "ex1_split", "", _pts("ex1_split", "mistake"), "similarity-pair", "raw",
                         {"split_by_lesion": sim.with_default_fractions(SHARED_SPLIT.format(**names))}))
    for (student, aid, gid), body in UNLIKE_REFERENCE.items():
        out.append(Entry(student, aid, "", _pts(aid), "nothing", "raw", {gid: body}))
    # Lying about itself: the points its values earn (the honest one-Linear model is in
    # tests/test_grading_ex3.py), and nbgrader (in the kernel, where nothing is forged) agrees.
    out.append(Entry("forged_lenet_probes", "ex3_lenet", "", ONE_LINEAR_POINTS, "nothing", "raw",
                     {"LeNet": FORGED_LENET_PROBES}))
    ex2_all = set(sim.POINTS["ex2_class_weights"])
    out.append(Entry("every_class_message", "ex2_class_weights", "",
                     _only("ex2_class_weights", ex2_all - {"test_weights_missing_class"}), "nothing", "raw",
                     {"median_frequency_weights": EVERY_CLASS_MESSAGE}))
    out.append(Entry("float64_weights", "ex2_class_weights", "",
                     _only("ex2_class_weights", ex2_all - {"test_weights_output"}), "nothing", "raw",
                     {"median_frequency_weights": FLOAT64_WEIGHTS}))
    out.append(Entry("padded_copy", "ex2_class_weights", "", _pts("ex2_class_weights"), "similarity-reference",
                     "raw", {"median_frequency_weights": PADDED_COPY}))
    out.append(Entry("active_outputs", "ex2_class_weights", ACTIVE_OUTPUTS, _pts("ex2_class_weights"), "nothing"))
    out.append(Entry("relus_missing_after_linear", "ex3_lenet", "",
                     _only("ex3_lenet", set(sim.POINTS["ex3_lenet"]) - {"test_lenet_equivalent"}), "nothing", "raw",
                     {"LeNet": NO_LINEAR_RELUS_LENET}))
    out.append(Entry("forged_modes", "ex4_training", "", _only("ex4_training", {"test_train_returns"}), "nothing",
                     "raw", {"train_one_epoch": FORGED_MODES_TRAIN, "evaluate": FORGED_MODES_EVALUATE}))
    out.append(Entry("evaluate_backward", "ex4_training", "",
                     _only("ex4_training", set(sim.POINTS["ex4_training"]) - {"test_evaluate_mode"}), "nothing",
                     "raw", {"evaluate": EVALUATE_BACKWARD}))
    for name in TAMPERINGS:
        out.append(Entry(f"tampers_{name}", "ex2_class_weights", "", _pts("ex2_class_weights", "mistake"),
                         "tampered", "mistake", tamper=name))
    # Folder names nbgrader cannot take: a glob that matched a classmate ("bob" must keep his
    # grade and feedback), a hidden folder, and the same name in its decomposed Unicode form.
    out.append(Entry("bob", "ex2_class_weights", "", _pts("ex2_class_weights"), "nothing"))
    out.append(Entry("bo[b]", "ex2_class_weights", "", {}, "nothing", "mistake", skipped="reads as a pattern"))
    out.append(Entry(".carol", "ex2_class_weights", "", {}, "nothing", "mistake", skipped="is hidden"))
    out.append(Entry("Jos\u00e9", "ex2_class_weights", "", _pts("ex2_class_weights"), "nothing"))
    out.append(Entry("Jose\u0301", "ex2_class_weights", "", {}, "nothing", "mistake",
                     skipped="in another Unicode form"))
    out.append(Entry("forged_zero_chain", "ex3_lenet", "", {g: 0 for g in sim.POINTS["ex3_lenet"]}, "nothing",
                     "raw", {"LeNet": FORGED_ZERO_CHAIN}))
    out.append(Entry("self_zeroing_lenet", "ex3_lenet", "", {g: 0 for g in sim.POINTS["ex3_lenet"]},
                     "nothing", "raw", {"LeNet": SELF_ZEROING_LENET}))
    return out


def notebook(entry: Entry, release_dir: Path, course: Path, package: Path, port: int):
    """The submitted notebook of ``entry``: the chosen answer, the attack added to its first answer cell."""
    base = "solution" if entry.answer == "raw" else entry.answer
    nb = sim.submission(Path(release_dir) / entry.assignment / f"{entry.assignment}.ipynb", entry.assignment, base)
    first = True
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        gid = meta["grade_id"]
        if gid in entry.replace:
            cell.source = entry.replace[gid].strip("\n")
        if first and entry.attack:
            attack = entry.attack.replace("{course}", str(course)).replace("{package}", str(package))
            cell.source = cell.source.rstrip("\n") + "\n\n" + attack.replace("{port}", str(port))
        first = False
    if entry.tamper:
        TAMPERINGS[entry.tamper][0](nb)
    return nb


def write_class(out: Path, release_dir: Path, course: Path, package: Path, port: int = 9) -> list[Entry]:
    import nbformat

    chosen = entries()
    for entry in chosen:
        target = Path(out) / entry.student / entry.assignment / f"{entry.assignment}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook(entry, release_dir, course, package, port), str(target))
    return chosen


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python solutions/adversarial_class.py OUT_DIR COURSE_DIR")
    import skinlab

    write_class(Path(sys.argv[1]), HERE.parent / "exercises", Path(sys.argv[2]).resolve(),
                Path(skinlab.__file__).resolve().parent)
    print(sys.argv[1])
