"""The bank of answers of ex2_class_weights: what the simulated class, the adversarial class and the
tests hand in, written once (docs/GRADING.md). Instructor-only: nbgrader releases no ``*.py``.
"""


# 1 / f_c: not normalised by the median frequency.
MISTAKE = {"median_frequency_weights": '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    counts = np.bincount(np.asarray(labels), minlength=num_classes)
    if (counts == 0).any():
        raise ValueError(f"class {int(np.argmin(counts))} has no samples")
    return torch.tensor(counts.sum() / counts, dtype=torch.float32)
'''}

TAMPERED_CELL = "test_weights_example"

USES_REFERENCE = {"median_frequency_weights": '''
import skinlab.balance as helpers


def median_frequency_weights(labels, num_classes):
    return helpers.median_frequency_weights(labels, num_classes)
'''}

INFINITE_LOOP = {"median_frequency_weights": '''
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
'''}

RAISES = {"median_frequency_weights": '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    counts = np.bincount(labels, minlength=num_classes)
    return torch.from_numpy(np.median(counts) / counts, dtype=torch.float32)  # TypeError
'''}

MISTAKE_FAILS = {"test_weights_example", "test_weights_more"}


# ---------------------------------------------------------------------------- the adversarial class

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
    'ref_exec': {'median_frequency_weights': '''
exec("from skin" + "lab.balance import median_frequency_weights")
'''},
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

# Correct answers written unlike the reference: full marks.
UNLIKE_REFERENCE = {
    'honest_bincount_weights': {'median_frequency_weights': '''
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
'''},
}

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


# ---------------------------------------------------------------------------- the similarity report

# Copies of a reference (the solution notebook or the package code the book prints), for the
# similarity report: {name: (the reference it copies, the copy)}.
COPIES = {}

COPIES['solution renamed'] = ("solution", '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    n = np.bincount(y, minlength=num_classes)[:num_classes]
    missing = [k for k in range(num_classes) if n[k] == 0]
    if missing:
        raise ValueError(f"classes {missing} are empty")
    f = n / n.sum()
    return torch.tensor(np.median(f) / f, dtype=torch.float32)
''')

COPIES['solution reformatted, one line added'] = ("solution", '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    """weights"""
    arr = np.asarray(labels).reshape(-1).astype(np.int64)
    cnt = np.bincount(arr, minlength=num_classes)[:num_classes]
    bad = [i for i in range(num_classes)
           if cnt[i] == 0]
    if bad: raise ValueError("missing classes: %s" % bad)
    frequencies = cnt / cnt.sum()
    w = np.median(frequencies) / frequencies
    return torch.tensor(w, dtype=torch.float32)
''')

COPIES['package, helper inlined'] = ("skinlab.balance", '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if y.ndim != 1:
        raise ValueError("labels must be 1-D")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise ValueError("labels must be integers")
        y = y.astype(np.int64)
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.size:
        raise ValueError(f"bad label {int(bad[0])}")
    counts = np.bincount(y.astype(np.int64), minlength=num_classes)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(f"class {', '.join(str(i) for i in empty)} has no samples")
    freq = counts / counts.sum()
    return torch.tensor(np.median(freq) / freq, dtype=torch.float32)
''')

# Correct answers written unlike the references (and unlike each other): {name: source}.
INDEPENDENT = {}

INDEPENDENT['Counter loop'] = '''
from collections import Counter

import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    if isinstance(labels, torch.Tensor):
        labels = labels.tolist()
    counter = Counter(int(label) for label in labels)
    total = sum(counter.values())
    freqs = []
    for c in range(num_classes):
        if counter[c] == 0:
            raise ValueError(f"class {c} does not appear in labels")
        freqs.append(counter[c] / total)
    med = float(np.median(freqs))
    return torch.tensor([med / f for f in freqs], dtype=torch.float32)
'''

INDEPENDENT['torch only'] = '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    y = torch.as_tensor(np.asarray(labels)).long().flatten()
    counts = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, y, torch.ones(len(y), dtype=torch.float64))
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f"no samples for class(es) {missing}")
    freq = counts / len(y)
    median = float(np.median(freq.numpy()))
    return (median / freq).float()
'''

INDEPENDENT['pandas value_counts'] = '''
import numpy as np
import pandas as pd
import torch


def median_frequency_weights(labels, num_classes):
    s = pd.Series(np.asarray(labels)).value_counts().reindex(range(num_classes), fill_value=0)
    if (s == 0).any():
        raise ValueError("empty class: " + ", ".join(str(c) for c in s.index[s == 0]))
    f = s / s.sum()
    return torch.tensor((f.median() / f).to_numpy(), dtype=torch.float32)
'''

INDEPENDENT['bincount, own style'] = '''
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    labels = torch.as_tensor(labels).view(-1)
    counts = torch.bincount(labels, minlength=num_classes).double()
    for c in range(num_classes):
        if counts[c] == 0:
            raise ValueError(f"class {c} has no examples")
    freqs = counts / counts.sum()
    weights = freqs.median() if num_classes % 2 else torch.tensor(np.median(freqs.numpy()))
    return (weights / freqs).to(torch.float32)
'''

# Two students with the same answer, renamed and reformatted: the first independent answer, passed on.

# Two students with the same answer, renamed and reformatted: the first independent answer of
# each exercise, passed on.
PASSED_ON = '''
from collections import Counter
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    # turn tensors into lists first
    if isinstance(labels, torch.Tensor):
        labels = labels.tolist()
    tally = Counter(int(x) for x in labels)
    n = sum(tally.values())
    fr = []
    for k in range(num_classes):
        if tally[k] == 0:
            raise ValueError(f"no sample of class {k}")
        fr.append(tally[k] / n)
    m = float(np.median(fr))
    return torch.tensor([m / q for q in fr], dtype=torch.float32)
'''
