# %% [markdown]
# # Exercise 2: median-frequency class weights
#
# *This exercise goes with chapter 4 of the skinlab book, [Class imbalance and class weights](../../book/04_imbalance.md) (`book/04_imbalance.md` in the repository; built, `_build/html/book/04_imbalance.html`). Read it first: it explains what you build here.*
#
# Two thirds of HAM10000 is `nv` (melanocytic nevi). A classifier that always answers `nv` is
# right 67 % of the time and useless. One remedy is to weigh the loss of each class: with
# `nn.CrossEntropyLoss(weight=w)`, a mistake on a rare class costs more than one on a common
# class.
#
# **Median-frequency balancing** (Eigen & Fergus, 2015) sets, for class $c$ with frequency
# $f_c = \text{count}_c / N$,
#
# $$ w_c = \frac{\operatorname{median}(f_0, \dots, f_{C-1})}{f_c} $$
#
# so the class of median frequency weighs 1, rarer classes more than 1 and common classes less.
# The figure shows the class counts of all 10,015 HAM10000 images (log scale) and the median;
# in the course the weights are computed on the training split only (chapter 4).

# %%
import matplotlib.pyplot as plt
import numpy as np

classes = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
counts = np.array([327, 514, 1099, 115, 1113, 6705, 142])  # all 10,015 HAM10000 images
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(classes, counts, color="tab:blue")
ax.axhline(np.median(counts), color="tab:red", linestyle="--", label="median count")
ax.set(yscale="log", ylabel="images (log scale)", title="HAM10000 class sizes")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Your task
#
# Write `median_frequency_weights(labels, num_classes)`:
#
# * `labels`: the class index (0 … `num_classes` − 1) of every training sample, as a list, a numpy
#   array or a torch tensor.
# * Return a `torch.float32` tensor of shape `(num_classes,)` whose entry `c` is $w_c$ above (in
#   class-index order). The median is `numpy.median` over all `num_classes` frequencies (with an
#   even number of classes it is the mean of the two middle ones).
# * A class with no samples has no frequency to divide by: raise a `ValueError` whose message
#   names the class index.
#
# Example: labels `[0, 0, 0, 1, 2, 2]` have frequencies 1/2, 1/6, 1/3, median 1/3, so the weights
# are `[0.6667, 2.0, 1.0]`.
#
# Do **not** import `skinlab` in your answer (it holds the reference solution: an answer that
# uses it scores 0).

# %% answer grade_id=median_frequency_weights
import numpy as np
import torch


def median_frequency_weights(labels, num_classes):
    """Class weights w_c = median(f) / f_c, f_c = count_c / N, as a float32 tensor (num_classes,)."""
    ### BEGIN SOLUTION
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    empty = [c for c in range(num_classes) if counts[c] == 0]
    if empty:
        raise ValueError(f"class {empty} has no samples: its weight would be infinite")
    freq = counts / counts.sum()
    return torch.tensor(np.median(freq) / freq, dtype=torch.float32)
    ### END SOLUTION

# %% [markdown]
# Try it (not graded):

# %%
import os

if "NBGRADER_EXECUTION" not in os.environ:  # skipped while grading
    print(median_frequency_weights([0, 0, 0, 1, 2, 2], 3))

# %% [markdown]
# ## Tests
#
# Each test cell is worth the points shown; hidden tests run more inputs when you are graded.

# %% test grade_id=test_weights_output points=2
# 2 points: a float32 tensor of shape (num_classes,), from a list, an array or a tensor.
from skinlab.grading import check_weights_output

check_weights_output(median_frequency_weights)

# %% test grade_id=test_weights_example points=3
# 3 points: the worked example above.
from skinlab.grading import check_weights_values

check_weights_values(median_frequency_weights, [0, 0, 0, 1, 2, 2], 3)
### BEGIN HIDDEN TESTS
check_weights_values(median_frequency_weights, [2, 1, 1, 0, 0, 0, 0, 0], 3)
### END HIDDEN TESTS

# %% test grade_id=test_weights_more points=3
# 3 points: more label sets (an even number of classes: the median is the mean of the middle two).
from skinlab.grading import check_weights_values

check_weights_values(median_frequency_weights, [0, 1, 1, 2, 2, 2, 3, 3, 3, 3], 4)
### BEGIN HIDDEN TESTS
import numpy as np

_rng = np.random.default_rng(5)
check_weights_values(median_frequency_weights, _rng.choice(7, size=2000, p=[0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02]), 7)
check_weights_values(median_frequency_weights, [5, 5, 4, 3, 2, 1, 0, 0, 0, 5, 5, 5], 6)
### END HIDDEN TESTS

# %% test grade_id=test_weights_missing_class points=2
# 2 points: a class without samples raises ValueError naming it.
from skinlab.grading import check_weights_missing_class

check_weights_missing_class(median_frequency_weights)
### BEGIN HIDDEN TESTS
check_weights_missing_class(median_frequency_weights, labels=(1, 2, 3, 4, 5, 6, 1), num_classes=7)
### END HIDDEN TESTS
