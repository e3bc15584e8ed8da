"""Exercise 1 checks: ``split_by_lesion`` (chapter 3, ``skinlab.split``).

Probes (what runs the student's code): ``probes.py`` beside this file, which also builds the metadata
(:func:`make_lesion_metadata`) so that the judges here and the probes see the same rows.
"""

from __future__ import annotations

import numpy as np

from ...split import DEFAULT_FRACTIONS, SPLITS  # the task's defaults are the reference's
from ..checking import check
from .probes import make_lesion_metadata  # noqa: F401 - public: skinlab.grading.make_lesion_metadata

PROBES = "ex1_split"


# ------------------------------------------------------------------ hidden-test inputs
# Drawn at grading time (``Check.fresh``): seeds from a wide range, fractions around the defaults
# (``DEFAULT_FRACTIONS`` lies inside their range: tests/test_default_fractions.py) and metadata
# sizes in ranges where the tolerances hold for any lesion-level stratified split.


def _draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 2))  # seed + 1 is a valid seed too (np.random.seed, sklearn)


def _draw_fractions(rng: np.random.Generator) -> list:
    """(train, val, test) around the defaults (``DEFAULT_FRACTIONS``), each at least 0.1, summing to 1."""
    train = int(rng.integers(50, 81))  # in percent
    val = int(rng.integers(10, 100 - train - 10 + 1))
    return [train / 100, val / 100, (100 - train - val) / 100]


def _draw_scale(rng: np.random.Generator, low: float = 0.3, high: float = 1.5) -> float:
    return round(float(rng.uniform(low, high)), 2)


def _fresh_output(rng: np.random.Generator) -> dict:
    return {"seed": _draw_seed(rng), "scale": _draw_scale(rng), "max_images": int(rng.integers(2, 13))}


def _fresh_no_leak(rng: np.random.Generator) -> dict:
    return {"seed": _draw_seed(rng), "fractions": _draw_fractions(rng), "scale": _draw_scale(rng),
            "max_images": int(rng.integers(2, 13))}


def _fresh_fractions(rng: np.random.Generator) -> dict:
    # At least ~550 images: a lesion-level split hits the overall shares to well within 2 points.
    return {"fractions": _draw_fractions(rng), "seed": _draw_seed(rng), "scale": _draw_scale(rng, 0.6, 1.5),
            "max_images": int(rng.integers(2, 9))}


def _fresh_stratified(rng: np.random.Generator) -> dict:
    # Rare classes of at least 160 lesions: a per-class fill and scikit-learn's StratifiedGroupKFold
    # (the reference, whose equal folds only approach a class's share on rare classes) both stay
    # inside the allowance (tolerance + one largest lesion), while a split that ignores dx falls
    # outside it at almost every draw (tests/test_grading_ex1.py).
    return {"seed": _draw_seed(rng), "fractions": _draw_fractions(rng), "scale": _draw_scale(rng, 2.0, 5.0),
            "max_images": int(rng.integers(2, 11))}


def _fresh_deterministic(rng: np.random.Generator) -> dict:
    return {"seed": _draw_seed(rng), "scale": _draw_scale(rng, 0.3, 1.0), "max_images": int(rng.integers(2, 13))}


# ------------------------------------------------------------------ reading the probe's report


class _Shown(str):
    """A label or value the probe could only describe: compares as text, prints as its repr."""

    def __repr__(self):
        return str.__str__(self)


def _value(v):
    if isinstance(v, dict):
        return _Shown(str(v.get("repr", "?")))
    return v


def _as_split(seen: dict, metadata):
    """The student's split as a Series indexed like ``metadata``, or the AssertionError that
    says what is wrong with it."""
    import pandas as pd

    if not seen.get("series"):
        raise AssertionError(
            f"split_by_lesion should return a pandas Series of 'train'/'val'/'test'; got "
            f"{seen.get('type')}"
        )
    index = [_value(v) for v in seen.get("index") or []]
    values = [_value(v) for v in seen.get("values") or []]
    length = seen.get("length")
    if length != len(metadata) or len(index) != len(metadata) or len(values) != len(metadata):
        raise AssertionError(
            f"split_by_lesion returned {length} labels for {len(metadata)} rows: every row "
            "(image) needs exactly one split"
        )
    expected = metadata.index.tolist()
    if any(type(a) is _Shown or a != b for a, b in zip(index, expected)):
        raise AssertionError(
            "the returned Series must be indexed like metadata (same labels, same order): "
            "build it with index=metadata.index. The metadata in this test has index "
            f"{expected[:3]}..., yours starts {index[:3]}"
        )
    bad = [(label, v) for label, v in zip(expected, values) if type(v) is not str or v not in SPLITS]
    if bad:
        raise AssertionError(
            f"every value must be 'train', 'val' or 'test'; row {bad[0][0]!r} is {bad[0][1]!r} "
            f"({len(bad)} such rows)"
        )
    return pd.Series(values, index=metadata.index, name="split", dtype=object)


def _assert_untouched(seen: dict, metadata):
    """The probe's report on the caller's DataFrame after the student's call."""
    columns = [str(c) for c in metadata.columns]
    if list(seen.get("columns", [])) != columns:
        added = sorted(set(seen.get("columns", [])) - set(columns))
        raise AssertionError(
            f"split_by_lesion modified its input: metadata now has columns {added or list(seen.get('columns', []))}; "
            "work on a copy (the caller's DataFrame must not change)"
        )
    if seen.get("unchanged") is not True:
        raise AssertionError(
            "split_by_lesion modified its input DataFrame (values, order or index changed): work "
            "on a copy, e.g. metadata.copy() or metadata[[...]]"
        )


def _fractions(fractions) -> tuple:
    return tuple(float(f) for f in fractions)


def _observe_split(observe, metadata, *, seed, scale, max_images, fractions=None, on=None):
    params = {"seed": int(seed), "scale": float(scale), "max_images": int(max_images)}
    if fractions is not None:
        params["fractions"] = list(fractions)
    if on is not None:
        params["on"] = on
    seen = observe(f"{PROBES}.split_once", **params)
    return _as_split(seen["split"], metadata), seen["input"]


# ------------------------------------------------------------------ the checks


def find_lesion_leaks(metadata, split) -> dict:
    """{lesion_id: {split: n_images}} for lesions whose images are in more than one split."""
    table = (
        metadata.assign(_split=np.asarray(split)).groupby(["lesion_id", "_split"]).size().unstack(fill_value=0)
    )
    leaky = table[(table > 0).sum(axis=1) > 1]
    return {lesion: {s: int(n) for s, n in row.items() if n} for lesion, row in leaky.iterrows()}


def _assert_lesion_level(meta, result, points: str, seed=None):
    """The split judged by the fractions, stratification and determinism checks must not leak.

    An image-level split (the mistake chapter 3 is about) easily hits the image shares per class
    and can be seeded: those points are for a *lesion-level* split, so they need one first.
    Verified here, by the judge, on the very split it judges (:func:`find_lesion_leaks`)."""
    leaks = find_lesion_leaks(meta, result)
    if not leaks:
        return
    parts = "two or three parts" if any(len(where) > 2 for where in leaks.values()) else "two parts"
    shown = "; ".join(f"{lesion} ({', '.join(f'{where[s]} in {s}' for s in SPLITS if s in where)})"
                      for lesion, where in list(leaks.items())[:3])
    more = f"; and {len(leaks) - 3} more" if len(leaks) > 3 else ""
    on = "" if seed is None else f" (seed={seed})"
    raise AssertionError(
        f"{len(leaks)} lesion{'s have' if len(leaks) != 1 else ' has'} images in {parts}{on}: {shown}{more}. "
        f"The points for {points} need a lesion-level split first: all images of a lesion must go to "
        "the same split (group by lesion_id; see test_split_no_leak). Split lesions, not images."
    )


@check("split_by_lesion", fresh=_fresh_output)
def check_split_output(observe, seed: int = 0, scale: float = 1.0, max_images: int = 6):
    """A Series of split names, one per row, indexed like the metadata; the input untouched."""
    meta = make_lesion_metadata(seed, scale, max_images)
    result, after = _observe_split(observe, meta, seed=seed, scale=scale, max_images=max_images,
                                   on=f"metadata of {len(meta)} rows")
    missing = [s for s in SPLITS if s not in set(result)]
    if missing:
        raise AssertionError(f"no image was assigned to {missing}: all three splits must be used")
    _assert_untouched(after, meta)


@check("split_by_lesion", fresh=_fresh_no_leak)
def check_split_no_leak(observe, seed: int = 0, fractions=DEFAULT_FRACTIONS, scale: float = 1.0, max_images: int = 6):
    """No lesion has images in two splits."""
    fractions = _fractions(fractions)
    meta = make_lesion_metadata(seed, scale, max_images)
    result, _ = _observe_split(observe, meta, seed=seed, scale=scale, max_images=max_images, fractions=fractions,
                               on=f"metadata of {len(meta)} rows, fractions={fractions}, seed={seed}")
    unused = [s for s in SPLITS if s not in set(result)]
    if unused:  # everything in one split never leaks: no points for that
        raise AssertionError(f"no image was assigned to {unused}: all three splits must be used (a split "
                             "that puts everything in one place has nothing to leak)")
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


@check("split_by_lesion", fresh=_fresh_fractions)
def check_split_fractions(observe, fractions=DEFAULT_FRACTIONS, seed: int = 0, tolerance: float = 0.02,
                          scale: float = 1.0, max_images: int = 6):
    """Each split holds its fraction of the images, within ``tolerance``, in a split that does not
    leak (an image-level split earns no points here)."""
    fractions = _fractions(fractions)
    meta = make_lesion_metadata(seed, scale, max_images)
    result, _ = _observe_split(observe, meta, seed=seed, scale=scale, max_images=max_images, fractions=fractions,
                               on=f"fractions={fractions}, seed={seed}")
    _assert_lesion_level(meta, result, "the fractions")
    shares = result.value_counts(normalize=True)
    for name, target in zip(SPLITS, fractions):
        got = float(shares.get(name, 0.0))
        if abs(got - target) > tolerance:
            raise AssertionError(
                f"with fractions={tuple(fractions)} the {name} split holds {got:.1%} of the images; "
                f"expected {target:.0%} (±{tolerance:.0%}). Use the fractions argument "
                "(train, val, test), measured in images."
            )


@check("split_by_lesion", fresh=_fresh_stratified)
def check_split_stratified(observe, seed: int = 0, tolerance: float = 0.03, fractions=DEFAULT_FRACTIONS,
                           scale: float = 3.0, max_images: int = 6):
    """Every class is spread over the splits in the target fractions (stratified by dx), in a split
    that does not leak (an image-level split earns no points here).

    A lesion-level split can stratify a class in either of two ways, and either earns the points:
    its **images** are within ``tolerance`` plus one of its largest lesions of each fraction (a
    per-class fill; scikit-learn's StratifiedGroupKFold, the reference, on metadata this size), or
    its **lesions** are within a third of ``tolerance`` plus two lesions of each fraction
    (``train_test_split(lesions, stratify=dx)``, whose image shares then wander with the lesions'
    sizes). A split that ignores dx misses both at almost every draw (tests/test_grading_ex1.py).
    """
    fractions = _fractions(fractions)
    meta = make_lesion_metadata(seed, scale, max_images)
    result, _ = _observe_split(observe, meta, seed=seed, scale=scale, max_images=max_images, fractions=fractions,
                               on=f"seed={seed}")
    _assert_lesion_level(meta, result, "stratification")
    split = meta.assign(_split=result.to_numpy())
    counts = split.groupby(["dx", "_split"]).size().unstack(fill_value=0)
    by_lesion = split.drop_duplicates("lesion_id")
    lesion_counts = by_lesion.groupby(["dx", "_split"]).size().unstack(fill_value=0)
    sizes = meta.groupby("lesion_id").size()
    largest = meta.drop_duplicates("lesion_id").set_index("lesion_id")["dx"].to_frame().assign(
        n=sizes).groupby("dx")["n"].max()
    worst = None
    for dx, row in counts.iterrows():
        n, lesions = row.sum(), lesion_counts.loc[dx]
        allowed = tolerance + largest[dx] / n
        allowed_lesions = tolerance / 3 + 2 / lesions.sum()
        for name, target in zip(SPLITS, fractions):
            share = row.get(name, 0) / n
            lesion_share = lesions.get(name, 0) / lesions.sum()
            excess = abs(share - target) - allowed
            if excess > 0 and abs(lesion_share - target) > allowed_lesions and (worst is None or excess > worst[0]):
                worst = (excess, dx, name, share, lesion_share, target, n, allowed)
    if worst:
        _, dx, name, share, lesion_share, target, n, allowed = worst
        raise AssertionError(
            f"class {dx!r} ({n} images) has {share:.1%} of its images and {lesion_share:.1%} of its lesions "
            f"in {name}; expected {target:.0%} (images ±{allowed:.1%}, or lesions within about a point). "
            "Stratify by dx: split each class's lesions separately in the target fractions, so rare "
            "classes are present in every split in the same proportion."
        )


@check("split_by_lesion", fresh=_fresh_deterministic,
       self_report="that two calls with the same seed gave the two splits it reports")
def check_split_deterministic(observe, seed: int = 0, scale: float = 0.5, max_images: int = 6):
    """Same seed, same split; another seed, another split; the input untouched; neither split leaks.

    The judge compares the three splits the probe returns, but that the first two came from two
    calls (not one split sent twice) is the worker's word (``self_report``); the probe's report
    that the input is unchanged can only take the point away."""
    meta = make_lesion_metadata(seed, scale, max_images)
    seen = observe(f"{PROBES}.split_deterministic", seed=int(seed), scale=float(scale), max_images=int(max_images))
    first = _as_split(seen["first"], meta)
    _assert_untouched(seen["input"], meta)
    _assert_lesion_level(meta, first, "determinism", seed=seed)
    again = _as_split(seen["again"], meta)
    if not first.equals(again):
        raise AssertionError(
            f"two calls with seed={seed} gave different splits ({int((first != again).sum())} rows "
            "differ): draw all randomness from the seed, e.g. rng = np.random.default_rng(seed)"
        )
    other = _as_split(seen["other"], meta)
    _assert_lesion_level(meta, other, "determinism", seed=seed + 1)
    if first.equals(other):
        raise AssertionError(
            f"seed={seed} and seed={seed + 1} gave the same split: use the seed argument for the "
            "shuffling instead of a fixed seed"
        )
