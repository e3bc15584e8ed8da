"""The bank of answers of ex1_split: what the simulated class, the adversarial class and the
tests hand in, written once (docs/GRADING.md). Instructor-only: nbgrader releases no ``*.py``.
"""

from bank import with_default_fractions  # noqa: F401


# Stratified, but image by image: images of one lesion land in different splits.
MISTAKE = {"split_by_lesion": with_default_fractions('''
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
''')}

TAMPERED_CELL = "test_split_no_leak"

USES_REFERENCE = {"split_by_lesion": with_default_fractions('''
from skinlab.split import split_by_lesion as _mine


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    return _mine(metadata, fractions, seed)
''')}

INFINITE_LOOP = {"split_by_lesion": with_default_fractions('''
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
''')}

RAISES = {"split_by_lesion": with_default_fractions('''
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    lesions = metadata.groupby("lesion")  # KeyError: the column is lesion_id
    return pd.Series("train", index=metadata.index)
''')}

# An image-level split leaks: the fractions, stratification and determinism points need a
# lesion-level split first (skinlab/grading/ex1_split/judges.py), so it keeps the output's 2 points.
MISTAKE_FAILS = {"test_split_no_leak", "test_split_fractions", "test_split_stratified", "test_split_deterministic"}


# ---------------------------------------------------------------------------- the adversarial class

REFERENCE_VIA = {
    'ref_importlib': {'split_by_lesion': '''
import importlib
split_by_lesion = importlib.import_module("skin" + "lab." + "split").split_by_lesion
'''},
}

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
