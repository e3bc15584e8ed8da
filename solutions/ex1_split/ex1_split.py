# %% [markdown]
# # Exercise 1: split by lesion, stratified by class
#
# *This exercise goes with chapter 3 of the skinlab book, [Splitting the data by lesion](../../book/03_splitting.md) (`book/03_splitting.md` in the repository; built, `_build/html/book/03_splitting.html`). Read it first: it explains what you build here.*
#
# HAM10000 has 10,015 images of only 7,470 lesions: many lesions were photographed two to six
# times. Images of one lesion look almost the same, so if one of them is in the training set and
# another in the test set, the test set measures memory, not generalisation. The honest unit of
# splitting is therefore the **lesion** (`lesion_id`): all images of a lesion go to the same split.
#
# The classes are very imbalanced (two thirds are `nv`, dermatofibroma `df` has 115 images), so the
# split is also **stratified** by diagnosis `dx`: every class should be spread over train,
# validation and test in the same proportions (64 / 16 / 20 % of its images by default). Otherwise
# a rare class can end up with almost no test images.
#
# The figure shows the test data the grader generates (no dataset needed): HAM10000-like
# metadata with rare classes and lesions of one to six images.

# %%
import os

import matplotlib.pyplot as plt

if "NBGRADER_EXECUTION" not in os.environ:  # skipped while grading (skinlab is not available then)
    from skinlab.grading import make_lesion_metadata

    demo = make_lesion_metadata(seed=0)
    images_per_lesion = demo.groupby("lesion_id").size()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    images_per_lesion.value_counts().sort_index().plot.bar(ax=axes[0], color="tab:blue")
    axes[0].set(xlabel="images of the lesion", ylabel="lesions", title="Images per lesion")
    demo["dx"].value_counts().plot.bar(ax=axes[1], color="tab:orange", logy=True)
    axes[1].set(xlabel="dx", ylabel="images (log scale)", title="Class sizes")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Your task
#
# Write `split_by_lesion(metadata, fractions=(0.64, 0.16, 0.20), seed=0)`:
#
# * `metadata` is a DataFrame with (at least) the columns `lesion_id` and `dx`, one row per image,
#   with any index; every image of a lesion has the same `dx`.
# * Return a pandas `Series` with one value per row, `"train"`, `"val"` or `"test"`, **indexed like
#   `metadata`** (`index=metadata.index`).
# * No lesion may have images in two splits.
# * Each class is split in the proportions `fractions` (train, val, test): its images to within a
#   few percentage points (plus one lesion: a lesion cannot be cut in two), or its lesions to within
#   about a point (splitting the list of lesions with `train_test_split(lesions, stratify=...)`).
#   Overall, the fractions count **images**.
# * Do not hand the lesions out largest first: the part with the biggest target then takes the
#   lesions photographed many times, and the others get mostly single-image lesions (chapter 3
#   measures it on HAM10000). A shuffled order keeps every part like the whole.
# * The same `seed` gives the same split; another seed gives another split. Draw randomness from
#   `np.random.default_rng(seed)`.
# * Do not modify `metadata`.
#
# Use numpy and pandas; do **not** import `skinlab` in your answer (that is the reference
# solution: an answer that uses it scores 0). One way: for each class, shuffle its lesions and
# walk through them, sending each lesion to the split whose share of the class's images is not
# yet full.

# %% answer grade_id=split_by_lesion
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=(0.64, 0.16, 0.20), seed=0):
    """Assign each image (row) to "train", "val" or "test", keeping lesions whole, stratified by dx."""
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    names = np.array(["train", "val", "test"])
    cuts = np.cumsum(fractions)[:2]  # boundaries between train|val and val|test
    lesion_dx = metadata.groupby("lesion_id")["dx"].agg(lambda s: s.mode().iloc[0])
    lesion_size = metadata.groupby("lesion_id").size()
    assignment = {}
    for dx in sorted(lesion_dx.unique()):
        ids = lesion_dx.index[lesion_dx == dx].to_numpy()
        ids = ids[rng.permutation(len(ids))]
        sizes = lesion_size.loc[ids].to_numpy()
        # Where each lesion's middle image falls along the class's shuffled images decides its
        # split: each class's shares miss their targets by at most half a lesion.
        ends = np.cumsum(sizes)
        middle = (ends - sizes / 2) / ends[-1]
        for lesion, where in zip(ids, np.searchsorted(cuts, middle)):
            assignment[lesion] = names[where]
    return pd.Series(metadata["lesion_id"].map(assignment).to_numpy(), index=metadata.index, name="split")
    ### END SOLUTION

# %% [markdown]
# Try it on the demo metadata (this cell is not graded):

# %%
if "NBGRADER_EXECUTION" not in os.environ:  # skipped while grading
    split = split_by_lesion(demo)
    print(split.value_counts(normalize=True).round(3))
    print(pd.crosstab(demo["dx"], split, normalize="index").round(3))

# %% [markdown]
# ## Tests
#
# Each test cell is worth the points shown. Some hidden tests run more inputs when your notebook
# is graded; a failing test says what went wrong.

# %% test grade_id=test_split_output points=2
# 2 points: a Series of "train"/"val"/"test", one per row, indexed like metadata; input unchanged.
from skinlab.grading import check_split_output

check_split_output(split_by_lesion)
### BEGIN HIDDEN TESTS
check_split_output(split_by_lesion, seed=7, scale=0.3)
check_split_output(split_by_lesion, seed=8, scale=2.0)
### END HIDDEN TESTS

# %% test grade_id=test_split_no_leak points=3
# 3 points: no lesion has images in two splits.
from skinlab.grading import check_split_no_leak

check_split_no_leak(split_by_lesion)
### BEGIN HIDDEN TESTS
check_split_no_leak(split_by_lesion, seed=11, fractions=(0.7, 0.1, 0.2))
check_split_no_leak(split_by_lesion, seed=12, scale=0.5, max_images=12)
### END HIDDEN TESTS

# %% test grade_id=test_split_fractions points=2
# 2 points: each split holds its fraction of the images (±2 percentage points).
from skinlab.grading import check_split_fractions

check_split_fractions(split_by_lesion)
### BEGIN HIDDEN TESTS
check_split_fractions(split_by_lesion, fractions=(0.7, 0.15, 0.15), seed=21)
check_split_fractions(split_by_lesion, fractions=(0.5, 0.25, 0.25), seed=22)
### END HIDDEN TESTS

# %% test grade_id=test_split_stratified points=2
# 2 points: each class is spread over the splits in the target fractions (stratified by dx).
from skinlab.grading import check_split_stratified

check_split_stratified(split_by_lesion)
check_split_stratified(split_by_lesion, seed=1)
### BEGIN HIDDEN TESTS
check_split_stratified(split_by_lesion, seed=31)
check_split_stratified(split_by_lesion, seed=32)
### END HIDDEN TESTS

# %% test grade_id=test_split_deterministic points=1
# 1 point: the same seed gives the same split, another seed another split.
from skinlab.grading import check_split_deterministic

check_split_deterministic(split_by_lesion)
### BEGIN HIDDEN TESTS
check_split_deterministic(split_by_lesion, seed=41)
### END HIDDEN TESTS
