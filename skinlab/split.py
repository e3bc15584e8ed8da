"""Lesion-level, class-stratified train/validation/test split.

HAM10000 has **no patient id**: the only grouping it records is ``lesion_id`` (7,470 lesions for
10,015 images; one lesion can have up to six images, taken at different times or
magnifications). Images of one lesion look alike, so if they land in two splits the test set
measures memory, not generalisation. The lesion is therefore the honest unit of splitting; one
patient with several lesions may still appear in two splits, and nothing in the data can prevent
that.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.64, 0.16, 0.20)


class LeakError(AssertionError):
    """Raised when one lesion's images are in more than one split."""


def _check_fractions(fractions) -> np.ndarray:
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0, atol=1e-6):
        raise ValueError(
            f"fractions must be three non-negative numbers (train, val, test) summing to 1; got {fractions!r}"
        )
    return f


def _check_columns(metadata: pd.DataFrame) -> None:
    for col in ("lesion_id", "dx"):
        if col not in metadata.columns:
            raise ValueError(f"metadata has no {col!r} column")


def fold_counts(fractions, tolerance: float = 0.005, max_folds: int = 100) -> tuple[int, np.ndarray]:
    """The fewest equal folds ``K`` whose whole numbers of folds give each of ``fractions`` within
    ``tolerance`` (half a percentage point), and those numbers: ``(25, [16, 4, 5])`` for
    64/16/20, ``(20, [14, 3, 3])`` for 70/15/15. Few folds keep each fold, and so each part, close
    to the class make-up of the whole when data are small; ``max_folds`` bounds the search."""
    f = _check_fractions(fractions)
    for k in range(1, max_folds + 1):
        n = np.floor(f * k).astype(int)
        n[np.argsort(-(f * k - n), kind="stable")[: k - n.sum()]] += 1  # largest remainders
        if np.abs(n / k - f).max() <= tolerance + 1e-12:
            return k, n
    return k, n  # max_folds: every part within 1/max_folds of its fraction


def split_by_lesion(
    metadata: pd.DataFrame, fractions=DEFAULT_FRACTIONS, seed: int = 0
) -> pd.Series:
    """Assign every image to ``"train"``, ``"val"`` or ``"test"`` so that no lesion is split and
    every part has the make-up of the whole.

    scikit-learn's ``StratifiedGroupKFold`` (lesions as groups, ``dx`` as the class, shuffled by
    ``seed``) deals the lesions into ``K`` equal folds, each with the class shares of the whole;
    whole folds then make the parts (:func:`fold_counts`: 25 folds, 16 + 4 + 5, for 64/16/20).
    Because the folds are alike, so are the parts: on HAM10000 every class's share of every part
    is within 0.2 percentage points of the whole, and so is the share of images from lesions with
    several images (45 %). Filling the parts one by one instead, largest lesions first, skews them
    (:func:`split_by_lesion_greedy`).

    Deterministic for a ``seed`` (and independent of the order of ``metadata``'s rows). Returns a
    Series of split names indexed like ``metadata``; ``metadata`` is not modified.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    _check_columns(metadata)
    k, per_part = fold_counts(fractions)
    lesion_ids = metadata["lesion_id"].to_numpy()
    n_lesions = len(pd.unique(lesion_ids))
    if n_lesions < k:
        raise ValueError(f"{n_lesions} lesion(s) cannot be dealt into {k} folds for fractions "
                         f"{tuple(fractions)}: the split needs at least {k} lesions")
    part_of_fold = np.repeat(np.array(SPLITS, dtype=object), per_part)
    if k == 1:  # one part takes everything
        return pd.Series(part_of_fold[0], index=metadata.index, name="split")
    folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    fold = np.empty(len(metadata), dtype=int)
    with warnings.catch_warnings():
        # "The least populated class has only n members": rare classes simply spread thinner.
        warnings.simplefilter("ignore", UserWarning)
        for i, (_, members) in enumerate(folds.split(np.zeros(len(metadata)), metadata["dx"].to_numpy(), lesion_ids)):
            fold[members] = i
    return pd.Series(part_of_fold[fold], index=metadata.index, name="split")


def split_by_lesion_greedy(
    metadata: pd.DataFrame, fractions=DEFAULT_FRACTIONS, seed: int = 0
) -> pd.Series:
    """The course's first split, kept to show how it went wrong: lesion-level and stratified, but
    the parts do not look like the whole.

    Each class is split on its own, lesions in a seeded random order, **the largest lesions first**,
    each going to the part furthest below its target image count. The part furthest below its
    target at the start is always train (it wants the most images), so train takes the lesions
    with several images and the single-image lesions fill validation and test: on HAM10000,
    multi-image lesions make 63 % of train's images and 10-15 % of validation's and test's
    (45 % of the whole), for every seed.
    """
    _check_columns(metadata)
    f = _check_fractions(fractions)
    rng = np.random.default_rng(seed)

    lesions = pd.DataFrame(
        {"lesion_id": metadata["lesion_id"].to_numpy(), "dx": metadata["dx"].to_numpy()}
    )
    lesion_dx = lesions.groupby("lesion_id", sort=True)["dx"].agg(lambda s: s.mode().iloc[0])
    lesion_size = lesions.groupby("lesion_id", sort=True).size()

    assignment: dict = {}
    for dx in sorted(lesion_dx.unique()):
        ids = lesion_dx.index[lesion_dx == dx].to_numpy()
        ids = ids[rng.permutation(len(ids))]
        sizes = lesion_size.loc[ids].to_numpy()
        order = np.argsort(-sizes, kind="stable")  # largest first; ties in seeded random order
        target = f * sizes.sum()
        filled = np.zeros(3)
        for i in order:
            k = int(np.argmax(target - filled))  # ties → earliest split (train)
            filled[k] += sizes[i]
            assignment[ids[i]] = SPLITS[k]
    return pd.Series(
        metadata["lesion_id"].map(assignment).to_numpy(), index=metadata.index, name="split"
    )


def split_makeup(metadata: pd.DataFrame, split: pd.Series) -> pd.DataFrame:
    """What each part is made of, beside the whole: images, share of all images, images per
    lesion, the share of images from lesions with several images, and each class's share.
    Rows: ``train``, ``val``, ``test``, ``all``; shares as fractions."""
    s = pd.Series(split).reindex(metadata.index)
    size = metadata.groupby("lesion_id")["lesion_id"].transform("size")
    classes = sorted(metadata["dx"].unique())
    rows = {}
    for name in (*SPLITS, "all"):
        sel = np.ones(len(metadata), bool) if name == "all" else (s == name).to_numpy()
        part = metadata[sel]
        row = {"images": int(sel.sum()), "share of images": sel.mean() if len(sel) else np.nan,
               "lesions": int(part["lesion_id"].nunique()),
               "images per lesion": sel.sum() / max(part["lesion_id"].nunique(), 1),
               "from multi-image lesions": float((size[sel] > 1).mean()) if sel.any() else np.nan}
        shares = part["dx"].value_counts(normalize=True)
        row.update({dx: float(shares.get(dx, 0.0)) for dx in classes})
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def find_leaks(metadata: pd.DataFrame, split: pd.Series) -> dict[str, set[str]]:
    """Lesions whose images are in more than one split, with the splits they are in."""
    s = pd.Series(split).reindex(metadata.index)
    per_lesion = s.groupby(metadata["lesion_id"]).agg(lambda x: frozenset(x.dropna()))
    return {lesion: set(where) for lesion, where in per_lesion.items() if len(where) > 1}


def assert_no_leak(metadata: pd.DataFrame, split: pd.Series) -> None:
    """Raise :class:`LeakError` naming the lesions that appear in more than one split."""
    leaks = find_leaks(metadata, split)
    if leaks:
        shown = "; ".join(f"{k} in {', '.join(sorted(v))}" for k, v in list(leaks.items())[:10])
        more = f" (and {len(leaks) - 10} more)" if len(leaks) > 10 else ""
        raise LeakError(f"{len(leaks)} lesion(s) leak across splits: {shown}{more}")


def split_shares(metadata: pd.DataFrame, split: pd.Series) -> pd.DataFrame:
    """Each class's share of its images in each split (rows: dx, columns: splits)."""
    s = pd.Series(split).reindex(metadata.index)
    table = pd.crosstab(metadata["dx"], s).reindex(columns=list(SPLITS), fill_value=0)
    return table.div(table.sum(axis=1), axis=0)


def split_by_image(metadata: pd.DataFrame, fractions=DEFAULT_FRACTIONS, seed: int = 0) -> pd.Series:
    """The *wrong* split, image by image (stratified, ignoring lesions): used to show leakage."""
    f = _check_fractions(fractions)
    rng = np.random.default_rng(seed)
    out = pd.Series(index=metadata.index, dtype=object, name="split")
    for _, idx in metadata.groupby("dx").groups.items():
        idx = np.asarray(idx)[rng.permutation(len(idx))]
        cuts = np.round(np.cumsum(f)[:2] * len(idx)).astype(int)
        for name, part in zip(SPLITS, np.split(idx, cuts)):
            out.loc[part] = name
    return out


def load_split(path, metadata: pd.DataFrame) -> pd.Series:
    """A split saved as CSV (``image_id`` and ``split`` columns, like a run folder's ``split.csv``),
    as a Series indexed like ``metadata``. Every image of ``metadata`` needs a known split name."""
    table = pd.read_csv(path)
    missing = {"image_id", "split"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: a split file needs image_id and split columns; {sorted(missing)} missing")
    split = metadata["image_id"].map(table.set_index("image_id")["split"]).rename("split")
    if split.isna().any():
        raise ValueError(f"{path}: no split for {int(split.isna().sum())} image(s) of the dataset, "
                         f"e.g. {metadata.loc[split.isna(), 'image_id'].iloc[0]}")
    bad = sorted(set(split) - set(SPLITS))
    if bad:
        raise ValueError(f"{path}: split names must be {', '.join(SPLITS)}; found {bad}")
    return split


def stratified_subset(labels, n: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of about ``n`` of ``labels`` keeping each class's share (at least one per
    present class); all positions when ``n`` covers them."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    chosen = []
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        k = max(1, int(round(n * len(pos) / len(labels))))
        chosen.append(rng.choice(pos, size=min(k, len(pos)), replace=False))
    return np.sort(np.concatenate(chosen))
