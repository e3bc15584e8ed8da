"""Exercise 1 probes: ``split_by_lesion`` on generated metadata (worker side, no skinlab).

The metadata is built here from ``(seed, scale, max_images)`` by :func:`make_lesion_metadata`,
which the judges (``skinlab.grading.ex1_split``) call too, so both sides see the same rows. A
probe returns what the student's split looked like, as plain data: its type, its length, its
index labels and its values (strings as they are; anything else as its ``repr``), and whether
the call changed the caller's DataFrame. The judges decide whether that is right.
"""

from __future__ import annotations

import numpy as np

from ..probe_base import answer

NAME = "split_by_lesion"

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


def _plain(value):
    """A label or value as plain data: a string, an int or a float as it is, else its repr."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bool, np.bool_)):
        return {"repr": repr(value)[:80]}
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        return float(value)
    try:
        return {"repr": repr(value)[:80]}
    except Exception:  # noqa: BLE001 - a repr that raises
        return {"repr": f"<{type(value).__name__}>"}


def describe(result) -> dict:
    """The returned split as plain data (index and values only for a pandas Series)."""
    import pandas as pd

    seen = {"type": type(result).__name__, "series": isinstance(result, pd.Series)}
    try:
        seen["length"] = int(len(result))
    except Exception:  # noqa: BLE001 - no len()
        seen["length"] = None
    if seen["series"]:
        seen["index"] = [_plain(v) for v in result.index.tolist()]
        seen["values"] = [_plain(v) for v in result.tolist()]
    return seen


def changes(meta, before) -> dict:
    """How the student's call changed the caller's DataFrame: its columns, and whether anything
    else (values, dtypes, index, row order) differs."""
    import pandas as pd

    columns = [str(c) for c in meta.columns]
    try:
        pd.testing.assert_frame_equal(meta, before)
        same = True
    except AssertionError:
        same = False
    return {"columns": columns, "unchanged": same}


def _metadata(seed, scale, max_images):
    meta = make_lesion_metadata(int(seed), float(scale), int(max_images))
    return meta, meta.copy(deep=True)


def split_once(call, answers, seed, scale, max_images, fractions=None, on=None) -> dict:
    """One call: ``split_by_lesion(metadata, [fractions=...,] seed=seed)``.

    ``fractions`` is passed only when given (as a tuple, as a test cell writes it); ``on`` is the
    description of the input that a student's error message names.
    """
    fn = answer(answers, NAME)
    meta, before = _metadata(seed, scale, max_images)
    kwargs = {"seed": int(seed)}
    if fractions is not None:
        kwargs = {"fractions": tuple(float(f) for f in fractions), "seed": int(seed)}
    result = call(NAME, fn, meta, _on=on or f"metadata of {len(meta)} rows", **kwargs)
    return {"split": describe(result), "input": changes(meta, before)}


def split_deterministic(call, answers, seed, scale, max_images) -> dict:
    """Three calls on the same metadata: ``seed``, ``seed`` again, ``seed + 1``."""
    fn = answer(answers, NAME)
    meta, before = _metadata(seed, scale, max_images)
    seed = int(seed)
    first = describe(call(NAME, fn, meta, _on=f"seed={seed}", seed=seed))
    input_after_first = changes(meta, before)
    again = describe(call(NAME, fn, meta, _on=f"seed={seed} (second call)", seed=seed))
    other = describe(call(NAME, fn, meta, _on=f"seed={seed + 1}", seed=seed + 1))
    return {"first": first, "input": input_after_first, "again": again, "other": other}
