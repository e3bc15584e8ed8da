"""The bank of answers of ex3_lenet: what the simulated class, the adversarial class and the
tests hand in, written once (docs/GRADING.md). Instructor-only: nbgrader releases no ``*.py``.
"""


# No ReLU after the second convolution.
MISTAKE = {"LeNet": '''
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
'''}

TAMPERED_CELL = "test_lenet_equivalent"

USES_REFERENCE = {"LeNet": '''
from skinlab import models


class LeNet(models.LeNet):
    """My LeNet."""
'''}

INFINITE_LOOP = {"LeNet": '''
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
'''}

RAISES = {"LeNet": '''
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
'''}

MISTAKE_FAILS = {"test_lenet_equivalent"}


# ---------------------------------------------------------------------------- the adversarial class

REFERENCE_VIA = {
    'ref_strings': {'LeNet': '''
LeNet = getattr(__import__("".join(["s", "k", "i", "n", "l", "a", "b", ".models"]), fromlist=["LeNet"]), "LeNet")
'''},
}

# Correct answers written unlike the reference: full marks.
UNLIKE_REFERENCE = {
    'honest_functional_lenet': {'LeNet': '''
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
'''},
}

LENET_HEADER = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"

# A plain LeNet-5 with torch.nn.functional: full marks, and the base of the variants below, each
# the one change its name says (variant() checks that every change applies).
PLAIN_LENET = LENET_HEADER + '''
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
'''


def variant(*changes: tuple[str, str], base: str = PLAIN_LENET) -> str:
    """``base`` with each (old, new) replaced; every old must be there."""
    for old, new in changes:
        if old not in base:
            raise ValueError(f"variant: {old!r} is not in the base answer")
        base = base.replace(old, new)
    return base


_FC1, _FC2 = "x = F.relu(self.fc1(x.flatten(1)))", "x = F.relu(self.fc2(x))"
_ZERO_IN_EVAL = ("    def forward(self, x):\n", "    def forward(self, x):\n        if not self.training:\n"
                 "            with torch.no_grad():\n                for p in self.parameters():\n"
                 "                    p.zero_()\n")

# Correct answers written otherwise: full marks.
CORRECT = {
    "functional": PLAIN_LENET,
    "sequential": LENET_HEADER + '''
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, kernel_size=5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
''',
    # Linear layers declared first (it scored 5/10 and crashed an early checker).
    "linear_first": LENET_HEADER + '''
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.head = nn.Linear(84, num_classes)
        self.hidden2 = nn.Linear(120, 84)
        self.hidden1 = nn.Linear(400, 120)
        self.second = nn.Conv2d(6, 16, 5)
        self.first = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x):
        x = self.pool(torch.relu(self.first(x)))
        x = self.pool(torch.relu(self.second(x)))
        x = torch.flatten(x, 1)
        return self.head(torch.relu(self.hidden2(torch.relu(self.hidden1(x)))))
''',
    "module_list": LENET_HEADER + '''
class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 6, 5, padding="valid"), nn.Conv2d(6, 16, (5, 5))])
        self.fcs = nn.ModuleDict({"a": nn.Linear(400, 120), "b": nn.Linear(120, 84),
                                  "out": nn.Linear(84, num_classes)})

    def forward(self, x):
        for conv in self.convs:
            x = F.max_pool2d(conv(x).clamp(min=0), 2)
        x = x.reshape(len(x), -1)
        x = self.fcs["b"](self.fcs["a"](x).relu()).relu()
        return self.fcs["out"](x)
''',
    # A lazy first linear layer: shaped by the first forward (its parameters were once counted before).
    "lazy": variant(("nn.Linear(400, 120)", "nn.LazyLinear(120)")),
    # ReLU and max-pooling swapped compute the same function (max-pooling commutes with ReLU).
    "pool_then_relu": variant(("x = F.max_pool2d(F.relu(self.conv1(x)), 2)", "x = F.relu(F.max_pool2d(self.conv1(x), 2))"),
                              ("x = F.max_pool2d(F.relu(self.conv2(x)), 2)", "x = F.relu(F.max_pool2d(self.conv2(x), 2))")),
}

# Tuned to the visible tests: the right num_classes only for those the visible cells use.
CHEAT_NUM_CLASSES = variant(("nn.Linear(84, num_classes)", "nn.Linear(84, num_classes if num_classes in (2, 7) else 7)"))
# Tuned to the visible tests' seed: no ReLU after conv 2, except when torch was seeded with 0.
CHEAT_SEED = variant(("x = F.max_pool2d(F.relu(self.conv2(x)), 2)",
                      "x = F.max_pool2d(self.conv2(x), 2)\n        if torch.initial_seed() == 0:\n            x = F.relu(x)"))

# Unusual models with a clear message each.
_FC2_SQUARE = (("nn.Linear(120, 84)", "nn.Linear(120, 120)"), ("nn.Linear(84, num_classes)", "nn.Linear(120, num_classes)"))
LAYER_TWICE = variant(*_FC2_SQUARE, (_FC2, "x = F.relu(self.fc2(F.relu(self.fc2(x))))"))
SHARED_WEIGHTS = variant(*_FC2_SQUARE, ("self.fc3 =", "self.fc2b = nn.Linear(120, 120)\n        self.fc2b.weight = self.fc2.weight\n        self.fc3 ="),
                         (_FC2, "x = F.relu(self.fc2b(F.relu(self.fc2(x))))"))
PLAIN_LIST = variant(("self.fc1 = nn.Linear(400, 120)\n        self.fc2 = nn.Linear(120, 84)\n        self.fc3 = nn.Linear(84, num_classes)",
                      "self.fcs = [nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, num_classes)]"),
                     ("self.fc1(", "self.fcs[0]("), ("self.fc2(", "self.fcs[1]("), ("self.fc3(", "self.fcs[2]("))
AROUND_THE_HOOKS = variant(("return self.fc3(x)", "return self.fc3.forward(x)"))
NO_BIAS = variant(("nn.Conv2d(3, 6, 5)", "nn.Conv2d(3, 6, 5, bias=False)"))
LINEAR_CALLED_FIRST = variant(("    def forward(self, x):\n", "    def forward(self, x):\n        h = F.relu(self.fc1(torch.zeros(len(x), 400)))\n"),
                              (_FC1, "x = h + x.flatten(1)[:, :120]"))

# The ReLUs after both linear layers left out: 7 of 10, the equivalence cell names both.
NO_LINEAR_RELUS_LENET = variant((_FC1, "x = self.fc1(x.flatten(1))"), (_FC2, "x = self.fc2(x)"))

ONE_LINEAR_LENET = LENET_HEADER + '''
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
    import grading_probes.ex3_lenet.probes as probes  # only in the grader's worker

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
SELF_ZEROING_LENET = variant(_ZERO_IN_EVAL, (_FC1, "x = self.fc1(x.flatten(1))"))

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
    import grading_probes.ex3_lenet.probes as probes  # only in the grader's worker

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


# A LeNet without its second max-pooling that hides it with reshape(-1, 400) (four rows per image),
# with the worker's reports of the shapes rewritten and the output cut to the batch: it took the
# layers and output cells (6/10) while shapes were read from the report (red team, 2026-12-07);
# shapes now come from the values, one row per image, and both versions score 0.
FORGED_SHAPES = '''
import torch
import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    """LeNet with the second max-pool forgotten; x.view(-1, 400) hides it (4x the rows)."""
    def __init__(self, num_classes=7):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        x = F.relu(self.fc1(x.reshape(-1, 400)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def _forge():
    import grading_probes.ex3_lenet.probes as probes
    orig_layers, orig_output = probes.layers, probes.output

    def fix(seen, batch, nc):
        want = [[batch, 6, 28, 28], [batch, 16, 10, 10], [batch, 120], [batch, 84], [batch, nc]]
        for l, s in zip(seen.get("layers", []), want):
            l["shape"] = s
        out = seen.get("output")
        if out and "values" in out:
            out["values"] = out["values"][:batch]
        if out:
            out["shape"] = [batch, nc]
        return seen

    probes.layers = lambda call, answers, num_classes, batch, seed: fix(orig_layers(call, answers, num_classes, batch, seed), batch, num_classes)
    probes.output = lambda call, answers, num_classes, batch, seed: fix(orig_output(call, answers, num_classes, batch, seed), batch, num_classes)

try:
    _forge()
except ImportError:
    pass
'''
FORGED_SHAPES_HONEST = FORGED_SHAPES[:FORGED_SHAPES.index("def _forge():")]


# ---------------------------------------------------------------------------- the similarity report

# Copies of a reference (the solution notebook or the package code the book prints), for the
# similarity report: {name: (the reference it copies, the copy)}.
COPIES = {}

COPIES['solution renamed'] = ("solution", '''
import torch
from torch import nn


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, kernel_size=5)
        self.c2 = nn.Conv2d(6, 16, kernel_size=5)
        self.mp = nn.MaxPool2d(2)
        self.l1 = nn.Linear(16 * 5 * 5, 120)
        self.l2 = nn.Linear(120, 84)
        self.l3 = nn.Linear(84, num_classes)

    def forward(self, img):
        h = self.mp(torch.relu(self.c1(img)))
        h = self.mp(torch.relu(self.c2(h)))
        h = torch.flatten(h, 1)
        h = torch.relu(self.l1(h))
        h = torch.relu(self.l2(h))
        return self.l3(h)
''')

COPIES['solution reordered'] = ("solution", '''
import torch
from torch import nn


class LeNet(nn.Module):
    """LeNet for my project"""

    def __init__(self, num_classes=7):
        super().__init__()
        self.pool = nn.MaxPool2d(2)  # one pooling layer is enough: it has no weights
        # features
        self.conv1 = nn.Conv2d(3, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)

        # classifier
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        out = self.fc3(x)
        return out
''')

COPIES['package, checks dropped'] = ("skinlab.models.lenet", '''
import torch
from torch import nn
from collections import OrderedDict


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.body = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 6, kernel_size=5),
                relu1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(6, 16, kernel_size=5),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
            )
        )
        self.head = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(16 * 5 * 5, 120),
                relu3=nn.ReLU(),
                fc2=nn.Linear(120, 84),
                relu4=nn.ReLU(),
                fc3=nn.Linear(84, num_classes),
            )
        )

    def forward(self, x):
        x = self.body(x)
        return self.head(torch.flatten(x, 1))
''')

# Correct answers written unlike the references (and unlike each other): {name: source}.
INDEPENDENT = {}

INDEPENDENT['functional relu and pooling'] = '''
import torch
import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 5)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.l1 = nn.Linear(400, 120)
        self.l2 = nn.Linear(120, 84)
        self.out = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = x.view(x.size(0), -1)
        x = F.relu(self.l1(x))
        x = F.relu(self.l2(x))
        return self.out(x)
'''

INDEPENDENT['nn.Sequential'] = '''
import torch
from torch import nn


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.net(x)
'''

INDEPENDENT['layers built in a loop'] = '''
import torch
from torch import nn


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        layers = []
        channels = 3
        for out_channels in (6, 16):
            layers += [nn.Conv2d(channels, out_channels, 5), nn.ReLU(), nn.MaxPool2d(2)]
            channels = out_channels
        self.features = nn.Sequential(*layers)
        sizes = [400, 120, 84]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.last = nn.Linear(sizes[-1], num_classes)

    def forward(self, x):
        x = self.features(x).flatten(start_dim=1)
        for layer in self.hidden:
            x = layer(x).relu()
        return self.last(x)
'''

# Two students with the same answer, renamed and reformatted: the first independent answer, passed on.

# Two students with the same answer, renamed and reformatted: the first independent answer of
# each exercise, passed on.
PASSED_ON = '''
import torch
import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 5)
        self.b = nn.Conv2d(6, 16, 5)
        self.c = nn.Linear(400, 120)
        self.d = nn.Linear(120, 84)
        self.e = nn.Linear(84, num_classes)

    def forward(self, t):
        t = F.max_pool2d(F.relu(self.a(t)), 2)
        t = F.max_pool2d(F.relu(self.b(t)), 2)
        t = t.view(t.size(0), -1)
        t = F.relu(self.c(t))
        t = F.relu(self.d(t))
        return self.e(t)
'''
