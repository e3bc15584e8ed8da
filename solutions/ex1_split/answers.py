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


# ---------------------------------------------------------------------------- the similarity report

# Copies of a reference (the solution notebook or the package code the book prints), for the
# similarity report: {name: (the reference it copies, the copy)}.
COPIES = {}

COPIES['solution renamed'] = ("solution", with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    gen = np.random.default_rng(seed)
    labels = np.array(["train", "val", "test"])
    bounds = np.cumsum(fractions)[:2]
    dx_of = metadata.groupby("lesion_id")["dx"].agg(lambda col: col.mode().iloc[0])
    n_images = metadata.groupby("lesion_id").size()
    where_to = {}
    for cls in sorted(dx_of.unique()):
        lesions = dx_of.index[dx_of == cls].to_numpy()
        lesions = lesions[gen.permutation(len(lesions))]
        counts = n_images.loc[lesions].to_numpy()
        cum = np.cumsum(counts)
        mid = (cum - counts / 2) / cum[-1]
        for les, pos in zip(lesions, np.searchsorted(bounds, mid)):
            where_to[les] = labels[pos]
    return pd.Series(metadata["lesion_id"].map(where_to).to_numpy(), index=metadata.index, name="split")
'''))

COPIES['solution reformatted, reordered'] = ("solution", with_default_fractions("""
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    '''My own split.'''
    # how many images each lesion has
    sizes_of = metadata.groupby('lesion_id').size()
    split_names = np.array(['train', 'val', 'test'])
    lesion_class = metadata.groupby('lesion_id')['dx'].agg(
        lambda s: s.mode().iloc[0]
    )
    r = np.random.default_rng(seed)
    edges = np.cumsum(fractions)[:2]

    out = {}
    for d in sorted(lesion_class.unique()):
        ids = lesion_class.index[lesion_class == d].to_numpy()
        ids = ids[r.permutation(len(ids))]
        s = sizes_of.loc[ids].to_numpy()

        e = np.cumsum(s)
        m = (e - s / 2) / e[-1]   # the middle image
        for l, w in zip(ids, np.searchsorted(edges, m)):
            out[l] = split_names[w]
    result = pd.Series(metadata['lesion_id'].map(out).to_numpy(), index=metadata.index, name='split')
    return result
"""))

COPIES['package, trimmed'] = ("skinlab.split", with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    f = np.asarray(fractions, dtype=float)
    gen = np.random.default_rng(seed)
    table = pd.DataFrame({"lesion_id": metadata["lesion_id"].to_numpy(), "dx": metadata["dx"].to_numpy()})
    cls_of = table.groupby("lesion_id", sort=True)["dx"].agg(lambda s: s.mode().iloc[0])
    size_of = table.groupby("lesion_id", sort=True).size()
    result = {}
    for c in sorted(cls_of.unique()):
        members = cls_of.index[cls_of == c].to_numpy()
        members = members[gen.permutation(len(members))]
        n = size_of.loc[members].to_numpy()
        order = np.argsort(-n, kind="stable")
        goal = f * n.sum()
        have = np.zeros(3)
        for i in order:
            j = int(np.argmax(goal - have))
            have[j] += n[i]
            result[members[i]] = ("train", "val", "test")[j]
    return pd.Series(metadata["lesion_id"].map(result).to_numpy(), index=metadata.index, name="split")
'''))

# Correct answers written unlike the references (and unlike each other): {name: source}.
INDEPENDENT = {}

INDEPENDENT['pandas groupby + cut'] = with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    rng = np.random.default_rng(seed)
    lesions = metadata.groupby("lesion_id").agg(dx=("dx", "first"), n=("dx", "size")).reset_index()
    lesions["key"] = rng.random(len(lesions))
    lesions = lesions.sort_values(["dx", "key"])
    per_class = lesions.groupby("dx")["n"]
    lesions["position"] = (per_class.cumsum() - lesions["n"] / 2) / per_class.transform("sum")
    edges = [-np.inf, fractions[0], fractions[0] + fractions[1], np.inf]
    lesions["split"] = pd.cut(lesions["position"], edges, labels=["train", "val", "test"]).astype(str)
    return metadata["lesion_id"].map(dict(zip(lesions["lesion_id"], lesions["split"]))).rename("split")
''')

INDEPENDENT['value_counts walk'] = with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    rng = np.random.default_rng(seed)
    split_of = {}
    for label in sorted(metadata["dx"].unique()):
        counts = metadata.loc[metadata["dx"] == label, "lesion_id"].value_counts().sort_index()
        order = list(counts.index)
        rng.shuffle(order)
        total = counts.sum()
        train_end = fractions[0] * total
        val_end = (fractions[0] + fractions[1]) * total
        done = 0
        for lesion in order:
            middle = done + counts[lesion] / 2
            if middle <= train_end:
                split_of[lesion] = "train"
            elif middle <= val_end:
                split_of[lesion] = "val"
            else:
                split_of[lesion] = "test"
            done += counts[lesion]
    return pd.Series([split_of[l] for l in metadata["lesion_id"]], index=metadata.index)
''')

INDEPENDENT["numpy greedy (the notebook's hint)"] = with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    rng = np.random.default_rng(seed)
    lesion_ids = metadata["lesion_id"].to_numpy()
    diagnoses = metadata["dx"].to_numpy()
    result = np.empty(len(metadata), dtype=object)
    for cls in np.unique(diagnoses):
        in_class = diagnoses == cls
        lesions, sizes = np.unique(lesion_ids[in_class], return_counts=True)
        wanted = np.array(fractions) * sizes.sum()
        got = np.zeros(3)
        for i in rng.permutation(len(lesions)):
            k = int(np.argmax(wanted - got))
            got[k] += sizes[i]
            result[in_class & (lesion_ids == lesions[i])] = ["train", "val", "test"][k]
    return pd.Series(result, index=metadata.index)
''')

# Two students with the same answer, renamed and reformatted: the first independent answer, passed on.

# Two students with the same answer, renamed and reformatted: the first independent answer of
# each exercise, passed on.
PASSED_ON = with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    g = np.random.default_rng(seed)
    per_lesion = (metadata.groupby("lesion_id")
                  .agg(dx=("dx", "first"), n=("dx", "size"))
                  .reset_index())
    per_lesion["key"] = g.random(len(per_lesion))
    per_lesion = per_lesion.sort_values(["dx", "key"])
    grp = per_lesion.groupby("dx")["n"]
    per_lesion["position"] = (grp.cumsum() - per_lesion["n"] / 2) / grp.transform("sum")
    bins = [-np.inf, fractions[0], fractions[0] + fractions[1], np.inf]
    per_lesion["split"] = pd.cut(per_lesion["position"], bins, labels=["train", "val", "test"]).astype(str)
    lookup = dict(zip(per_lesion["lesion_id"], per_lesion["split"]))
    return metadata["lesion_id"].map(lookup).rename("split")
''')
