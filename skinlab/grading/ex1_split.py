"""Exercise 1 checks: ``split_by_lesion`` (chapter 3, ``skinlab.split``)."""

from __future__ import annotations

import numpy as np

from .guard import _construct, call, own_work

SPLITS = ("train", "val", "test")
# Lesions per class (rare classes ≥ 80 so that stratification can be told from luck) and the
# images a lesion can have; rare classes have one image per lesion, as most HAM10000 df and vasc
# lesions do, so a stratified split can hit their shares to within one image.
_DEMO_LESIONS = {"nv": 300, "mel": 100, "bkl": 100, "bcc": 90, "akiec": 80, "vasc": 80, "df": 80}
_MULTI_IMAGE = {"nv", "mel", "bkl"}


def make_lesion_metadata(seed: int = 0, scale: float = 1.0, max_images: int = 6):
    """HAM10000-like metadata (lesion_id, image_id, dx, age, sex) with rare classes, rows shuffled.

    The index is non-default (shuffled integers from 1000), so a split that ignores it shows.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    lesion_numbers = rng.permutation(100_000)[:10_000]
    image_numbers = iter(rng.permutation(1_000_000)[:50_000])
    k = 0
    for dx, n_lesions in _DEMO_LESIONS.items():
        for _ in range(max(2, int(round(n_lesions * scale)))):
            lesion = f"HAM_{lesion_numbers[k]:07d}"
            k += 1
            n_images = 1
            if dx in _MULTI_IMAGE and rng.random() < 0.35:
                n_images = int(rng.integers(2, max_images + 1))
            for _ in range(n_images):
                rows.append((lesion, f"ISIC_{next(image_numbers):07d}", dx))
    df = pd.DataFrame(rows, columns=["lesion_id", "image_id", "dx"])
    df["age"] = rng.integers(5, 18, len(df)) * 5.0
    df["sex"] = rng.choice(["male", "female"], len(df))
    df = df.iloc[rng.permutation(len(df))]
    df.index = pd.Index(1000 + rng.permutation(len(df)), name=None)
    return df


def _run_split(fn, metadata, _on, **kwargs):
    import pandas as pd

    result = call("split_by_lesion", fn, metadata, _on=_on, **kwargs)
    if not isinstance(result, pd.Series):
        raise AssertionError(
            f"split_by_lesion should return a pandas Series of 'train'/'val'/'test'; got "
            f"{type(result).__name__}"
        )
    if len(result) != len(metadata):
        raise AssertionError(
            f"split_by_lesion returned {len(result)} labels for {len(metadata)} rows: every row "
            "(image) needs exactly one split"
        )
    if not result.index.equals(metadata.index):
        raise AssertionError(
            "the returned Series must be indexed like metadata (same labels, same order): "
            "build it with index=metadata.index. The metadata in this test has index "
            f"{list(metadata.index[:3])}..., yours starts {list(result.index[:3])}"
        )
    bad = result[~result.isin(SPLITS)]
    if len(bad):
        raise AssertionError(
            f"every value must be 'train', 'val' or 'test'; row {bad.index[0]!r} is {bad.iloc[0]!r} "
            f"({len(bad)} such rows)"
        )
    return result


def check_split_output(split_by_lesion, seed: int = 0, scale: float = 1.0):
    """A Series of split names, one per row, indexed like the metadata; the input untouched."""
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed, scale)
    before = meta.copy(deep=True)
    result = _run_split(split_by_lesion, meta, _on=f"metadata of {len(meta)} rows", seed=seed)
    missing = [s for s in SPLITS if s not in set(result)]
    if missing:
        raise AssertionError(f"no image was assigned to {missing}: all three splits must be used")
    _assert_untouched(meta, before)


def _assert_untouched(meta, before):
    import pandas as pd

    if list(meta.columns) != list(before.columns):
        added = sorted(set(meta.columns) - set(before.columns))
        raise AssertionError(
            f"split_by_lesion modified its input: metadata now has columns {added or list(meta.columns)}; "
            "work on a copy (the caller's DataFrame must not change)"
        )
    try:
        pd.testing.assert_frame_equal(meta, before)
    except AssertionError:
        raise AssertionError(
            "split_by_lesion modified its input DataFrame (values, order or index changed): work "
            "on a copy, e.g. metadata.copy() or metadata[[...]]"
        ) from None


def find_lesion_leaks(metadata, split) -> dict:
    """{lesion_id: {split: n_images}} for lesions whose images are in more than one split."""
    table = (
        metadata.assign(_split=split.to_numpy()).groupby(["lesion_id", "_split"]).size().unstack(fill_value=0)
    )
    leaky = table[(table > 0).sum(axis=1) > 1]
    return {lesion: {s: int(n) for s, n in row.items() if n} for lesion, row in leaky.iterrows()}


def check_split_no_leak(split_by_lesion, seed: int = 0, fractions=(0.64, 0.16, 0.20), scale: float = 1.0, max_images: int = 6):
    """No lesion has images in two splits."""
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed, scale, max_images)
    result = _run_split(
        split_by_lesion, meta, _on=f"metadata of {len(meta)} rows, fractions={fractions}, seed={seed}",
        fractions=fractions, seed=seed,
    )
    leaks = find_lesion_leaks(meta, result)
    if leaks:
        multi = int((meta.groupby("lesion_id").size() > 1).sum())
        lesion, where = next(iter(leaks.items()))
        spread = ", ".join(f"{n} in {s}" for s, n in where.items())
        raise AssertionError(
            f"lesion {lesion} leaks: its {sum(where.values())} images are split across "
            f"{' and '.join(where)} ({spread}); {len(leaks)} of the {multi} lesions with "
            "several images leak like this. Split lesions, not images: all images of a lesion "
            "must go to the same split (group by lesion_id), else the test set contains "
            "near-copies of training images."
        )


def check_split_fractions(split_by_lesion, fractions=(0.64, 0.16, 0.20), seed: int = 0, tolerance: float = 0.02):
    """Each split holds its fraction of the images, within ``tolerance``."""
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed)
    result = _run_split(
        split_by_lesion, meta, _on=f"fractions={fractions}, seed={seed}", fractions=fractions, seed=seed
    )
    shares = result.value_counts(normalize=True)
    for name, target in zip(SPLITS, fractions):
        got = float(shares.get(name, 0.0))
        if abs(got - target) > tolerance:
            raise AssertionError(
                f"with fractions={tuple(fractions)} the {name} split holds {got:.1%} of the images; "
                f"expected {target:.0%} (±{tolerance:.0%}). Use the fractions argument "
                "(train, val, test), measured in images."
            )


def check_split_stratified(split_by_lesion, seed: int = 0, tolerance: float = 0.02):
    """Every class is spread over the splits in the target fractions (stratified by dx).

    A class may miss its target share by ``tolerance`` plus one of its largest lesions (a lesion
    cannot be cut in two).
    """
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed)
    fractions = (0.64, 0.16, 0.20)
    result = _run_split(split_by_lesion, meta, _on=f"seed={seed}", fractions=fractions, seed=seed)
    counts = meta.assign(_split=result.to_numpy()).groupby(["dx", "_split"]).size().unstack(fill_value=0)
    sizes = meta.groupby("lesion_id").size()
    largest = meta.drop_duplicates("lesion_id").set_index("lesion_id")["dx"].to_frame().assign(
        n=sizes).groupby("dx")["n"].max()
    worst = None
    for dx, row in counts.iterrows():
        n = row.sum()
        allowed = tolerance + largest[dx] / n
        for name, target in zip(SPLITS, fractions):
            share = row.get(name, 0) / n
            excess = abs(share - target) - allowed
            if excess > 0 and (worst is None or excess > worst[0]):
                worst = (excess, dx, name, share, target, n, allowed)
    if worst:
        _, dx, name, share, target, n, allowed = worst
        raise AssertionError(
            f"class {dx!r} ({n} images) has {share:.1%} of its images in {name}; expected "
            f"{target:.0%} (±{allowed:.1%}). Stratify by dx: split each class's lesions "
            "separately in the target fractions, so rare classes are present in every split "
            "in the same proportion."
        )


def check_split_deterministic(split_by_lesion, seed: int = 0):
    """Same seed, same split; another seed, another split; the input untouched."""
    own_work("split_by_lesion", split_by_lesion)
    meta = make_lesion_metadata(seed, scale=0.5)
    before = meta.copy(deep=True)
    first = _run_split(split_by_lesion, meta, _on=f"seed={seed}", seed=seed)
    _assert_untouched(meta, before)
    again = _run_split(split_by_lesion, meta, _on=f"seed={seed} (second call)", seed=seed)
    if not first.equals(again):
        raise AssertionError(
            f"two calls with seed={seed} gave different splits ({int((first != again).sum())} rows "
            "differ): draw all randomness from the seed, e.g. rng = np.random.default_rng(seed)"
        )
    other = _run_split(split_by_lesion, meta, _on=f"seed={seed + 1}", seed=seed + 1)
    if first.equals(other):
        raise AssertionError(
            f"seed={seed} and seed={seed + 1} gave the same split: use the seed argument for the "
            "shuffling instead of a fixed seed"
        )
