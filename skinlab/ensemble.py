"""Ensembles of finished runs: the mean of their predicted probabilities on the same images.

One path for every ensemble in the project: chapter 12's, ``python -m bench.sweep report
--ensemble`` / ``--ensemble-by-seed`` and ``python -m bench.accuracy ensemble``. Averaging is only
meaningful image by image, so the members must hold the same images in the same order: runs of
one split (same seed and fractions, e.g. other ``init_seed`` values, models or image sizes).
Two splits can have identical label vectors, so the check is on image ids wherever they are known.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np


class EnsembleError(ValueError):
    """The members of an ensemble do not hold the same images (another split) or are unusable."""


def mean_probabilities(probs, image_ids=None, labels=None, names=None) -> np.ndarray:
    """The mean of the members' ``(N, C)`` class probabilities, after checking that they describe
    the same images in the same order.

    ``image_ids`` (one array per member, e.g. :func:`split_image_ids`) and ``labels`` (one per
    member) are compared with the first member's where given; ``names`` name the members in the
    error. Raises :class:`EnsembleError` when they differ, or when the shapes differ.
    """
    probs = [np.asarray(p) for p in probs]  # their own dtype: the same mean as np.mean of the arrays
    if not probs:
        raise EnsembleError("an ensemble needs at least one member")
    names = list(names) if names is not None else [f"member {k + 1}" for k in range(len(probs))]
    if len(names) != len(probs):
        raise EnsembleError(f"{len(names)} names for {len(probs)} members")
    for what, per_member in (("image ids", image_ids), ("labels", labels)):
        if per_member is None:
            continue
        per_member = [np.asarray(v) for v in per_member]
        if len(per_member) != len(probs):
            raise EnsembleError(f"{len(per_member)} arrays of {what} for {len(probs)} members")
        for name, v in zip(names[1:], per_member[1:]):
            if not np.array_equal(v, per_member[0]):
                raise EnsembleError(
                    f"the runs of an ensemble must share their split (same seed and fractions): the {what} of "
                    f"{name} differ from {names[0]}'s (other images, or the same in another order)")
    for name, p in zip(names, probs):
        if p.ndim != 2 or p.shape != probs[0].shape:
            raise EnsembleError(f"{name}: probabilities of shape {p.shape}, expected {probs[0].shape} like {names[0]}'s "
                                "(one row per image, one column per class)")
    return np.mean(probs, axis=0)


def split_image_ids(run_dir: str | os.PathLike, split: str = "test") -> np.ndarray:
    """The image ids of split ``split`` of a finished ``skinlab train`` run, in the order of its
    predictions (``predictions.npz``, ``pipeline.predict_split``: the metadata's order), read from
    the run's ``split.csv``."""
    path = Path(run_dir) / "split.csv"
    if not path.is_file():
        raise EnsembleError(f"{run_dir}: no split.csv (not a finished `skinlab train` run)")
    with path.open(newline="") as fh:
        ids = [row["image_id"] for row in csv.DictReader(fh) if row["split"] == split]
    if not ids:
        raise EnsembleError(f"{path}: no image in split {split!r}")
    return np.asarray(ids, dtype=str)
