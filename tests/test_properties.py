"""Property-based tests (hypothesis) of the lesion-level splits and the class weights.

``split_by_lesion`` (scikit-learn's StratifiedGroupKFold, whole folds per part): every row
assigned, no leak, deterministic, independent of row order, part sizes from :func:`fold_counts`.

The share bound for ``split_by_lesion_greedy``'s fill (the course's first split, kept to show how
largest-first skews the parts), per class (n images, largest lesion s,
target t_k = f_k * n for split k, deficit d_k = t_k - filled_k, R = images still to place):

* R = sum_k d_k at every step (the targets sum to n).
* A lesion of size s goes to the split of largest deficit, d_j >= R / 3 >= s / 3, so after it
  d_j >= -2s/3; a split with a negative deficit is never chosen again (some deficit is > 0 while
  R > 0). Hence at the end every split is over its target by at most 2/3 s.
* Invariant max_k d_k <= R + 5/6 s: for a split i not chosen, d_i <= d_j and d_i + d_j = R - d_l
  <= R + 2/3 s, so d_i <= R/2 + s/3 <= (R - s) + 5/6 s because s <= R. At the end R = 0, so every
  split is under its target by at most 5/6 s.

So -2/3 s <= count_k - f_k * n <= 5/6 s; with only single-image lesions (s = 1) every count is
the floor or the ceiling of its target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skinlab.balance import median_frequency_weights
from skinlab.data import CLASSES
from skinlab.split import SPLITS, find_leaks, fold_counts, split_by_lesion, split_by_lesion_greedy, split_shares

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def metadata_frames(draw, max_lesions=80, max_lesion_size=6):
    n_lesions = draw(st.integers(1, max_lesions))
    dx = draw(st.lists(st.sampled_from(CLASSES), min_size=n_lesions, max_size=n_lesions))
    sizes = draw(st.lists(st.integers(1, max_lesion_size), min_size=n_lesions, max_size=n_lesions))
    rows = [(f"HAM_{i:07d}", d) for i, (d, s) in enumerate(zip(dx, sizes)) for _ in range(s)]
    order = draw(st.permutations(range(len(rows))))
    df = pd.DataFrame(
        {
            "lesion_id": [rows[i][0] for i in order],
            "image_id": [f"ISIC_{k:07d}" for k in range(len(rows))],
            "dx": [rows[i][1] for i in order],
        }
    )
    if draw(st.booleans()):  # a non-default index (e.g. a filtered frame) must be respected
        df.index = pd.Index(draw(st.permutations(range(10, 10 + 3 * len(df), 3))))
    return df


@st.composite
def fraction_triples(draw):
    w = draw(st.lists(st.integers(0, 20), min_size=3, max_size=3).filter(lambda v: sum(v) > 0))
    return tuple(np.asarray(w, dtype=float) / sum(w))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadata_frames(max_lesions=120), fraction_triples(), st.integers(0, 2**32 - 1))
def test_split_assigns_every_row_without_leak_deterministically(md, fractions, seed):
    k, per_part = fold_counts(fractions)
    if md["lesion_id"].nunique() < k:
        with pytest.raises(ValueError, match=f"cannot be dealt into {k} folds"):
            split_by_lesion(md, fractions, seed=seed)
        return
    before = md.copy(deep=True)
    split = split_by_lesion(md, fractions, seed=seed)
    pd.testing.assert_frame_equal(md, before)  # input untouched
    assert split.index.equals(md.index)
    assert split.isin(SPLITS).all()  # every row assigned
    assert (split.groupby(md["lesion_id"]).nunique() == 1).all()  # independent leak check
    assert find_leaks(md, split) == {}
    assert split.equals(split_by_lesion(md, fractions, seed=seed))  # deterministic
    assert split.equals(split_by_lesion(md.copy(), list(fractions), seed=seed))
    shuffled = md.sample(frac=1.0, random_state=seed % 1000)
    assert split.equals(split_by_lesion(shuffled, fractions, seed=seed).reindex(md.index))  # row order
    for name, n in zip(SPLITS, per_part):
        assert (n == 0) <= (not (split == name).any())  # a part of no folds is empty


@given(fraction_triples())
@settings(max_examples=200, deadline=None)
def test_fold_counts_give_the_fractions_within_half_a_point(fractions):
    k, per_part = fold_counts(fractions)
    assert per_part.sum() == k and (per_part >= 0).all()
    assert k == 100 or np.abs(per_part / k - np.asarray(fractions)).max() <= 0.005 + 1e-12
    assert np.abs(per_part / k - np.asarray(fractions)).max() <= 0.01 + 1e-12
    # the fewest such folds: one fewer misses some fraction by more than half a point
    for fewer in range(1, k):
        n = np.round(np.asarray(fractions) * fewer)
        assert not (n.sum() == fewer and np.abs(n / fewer - np.asarray(fractions)).max() <= 0.005 - 1e-12)


@SETTINGS
@given(metadata_frames(), fraction_triples(), st.integers(0, 2**32 - 1))
def test_split_counts_stay_within_the_greedy_bound(md, fractions, seed):
    split = split_by_lesion_greedy(md, fractions, seed=seed)
    f = np.asarray(fractions)
    for dx, rows in md.groupby("dx").groups.items():
        n = len(rows)
        s_max = md.loc[rows].groupby("lesion_id").size().max()
        counts = split.loc[rows].value_counts().reindex(list(SPLITS), fill_value=0).to_numpy()
        excess = counts - f * n
        eps = 1e-9 * max(n, 1)
        assert np.all(excess <= 2 / 3 * s_max + eps), (dx, counts, f * n, s_max)
        assert np.all(-excess <= 5 / 6 * s_max + eps), (dx, counts, f * n, s_max)
        assert counts.sum() == n


@SETTINGS
@given(metadata_frames(max_lesion_size=1), fraction_triples(), st.integers(0, 2**32 - 1))
def test_single_image_lesions_split_to_floor_or_ceiling_of_target(md, fractions, seed):
    split = split_by_lesion_greedy(md, fractions, seed=seed)
    for _, rows in md.groupby("dx").groups.items():
        target = np.asarray(fractions) * len(rows)
        counts = split.loc[rows].value_counts().reindex(list(SPLITS), fill_value=0).to_numpy()
        assert np.all((counts >= np.floor(target - 1e-9)) & (counts <= np.ceil(target + 1e-9))), (counts, target)
    shares = split_shares(md, split)
    assert np.allclose(shares.sum(axis=1), 1.0)


@SETTINGS
@given(metadata_frames(max_lesions=60), st.integers(0, 1000))
def test_seed_changes_the_split_of_a_sizeable_dataset(md, seed):
    many = md.groupby("dx")["lesion_id"].nunique()
    if many.max() < 30:  # too few lesions for two seeds to differ with near certainty
        return
    a = split_by_lesion(md, seed=seed)
    b = split_by_lesion(md, seed=seed + 1)
    assert not split_by_lesion_greedy(md, seed=seed).equals(split_by_lesion_greedy(md, seed=seed + 1))
    assert not a.equals(b)


# --------------------------------------------------------------------------- class weights


@st.composite
def label_arrays(draw):
    c = draw(st.integers(2, 10))
    extra = draw(st.lists(st.integers(0, c - 1), max_size=300))
    labels = np.asarray(list(range(c)) + extra, dtype=np.int64)  # every class present
    return c, labels[np.asarray(draw(st.permutations(range(len(labels)))))]


@SETTINGS
@given(label_arrays(), st.sampled_from(["numpy", "list", "torch"]))
def test_weights_match_the_median_frequency_formula(case, kind):
    c, labels = case
    given_labels = {"numpy": labels.copy(), "list": labels.tolist(), "torch": torch.from_numpy(labels.copy())}[kind]
    w = median_frequency_weights(given_labels, c)
    counts = np.array([(labels == k).sum() for k in range(c)], dtype=float)  # independent count
    f = counts / counts.sum()
    expected = np.median(f) / f
    assert isinstance(w, torch.Tensor) and w.dtype == torch.float32 and w.shape == (c,)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    if kind == "numpy":
        assert np.array_equal(given_labels, labels)  # input untouched
    # the rarest class gets the largest weight, the most frequent the smallest
    assert int(w.argmax()) in np.flatnonzero(counts == counts.min())
    assert int(w.argmin()) in np.flatnonzero(counts == counts.max())


@SETTINGS
@given(label_arrays(), st.data())
def test_weights_name_the_empty_class(case, data):
    c, labels = case
    empty = data.draw(st.integers(0, c - 1))
    kept = labels[labels != empty]
    with pytest.raises(ValueError, match=rf"class {empty} \({CLASSES[empty] if c == 7 else empty}\).* no samples"):
        median_frequency_weights(kept, c)


def test_weights_name_the_empty_class_by_its_code():
    labels = [0, 1, 2, 4, 5, 6, 5]  # no df (3)
    with pytest.raises(ValueError, match=r"^class 3 \(df\) has no samples"):
        median_frequency_weights(labels, 7)
