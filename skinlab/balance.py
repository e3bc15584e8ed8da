"""Median-frequency class weights (Eigen & Fergus, 2015) for the imbalanced HAM10000 classes."""

from __future__ import annotations

import numpy as np
import torch


def class_counts(labels, num_classes: int) -> np.ndarray:
    """Number of samples per class index, checking that every label is in ``range(num_classes)``."""
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional; got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise ValueError("labels must be integer class indices")
        y = y.astype(np.int64)
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.size:
        raise ValueError(f"label {int(bad[0])} is outside 0..{num_classes - 1} (num_classes={num_classes})")
    return np.bincount(y.astype(np.int64), minlength=num_classes)


def median_frequency_weights(labels, num_classes: int) -> torch.Tensor:
    """``w_c = median(f) / f_c`` with ``f_c = count_c / N``, as float32 in class-index order.

    The median is ``numpy.median`` over all ``num_classes`` frequencies. A class with no
    samples has no frequency to divide by and raises ``ValueError`` naming it. Compute it on the
    training split only: the test set must not influence training.
    """
    counts = class_counts(labels, num_classes)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        try:
            from skinlab.data import CLASSES

            names = [CLASSES[i] if num_classes == len(CLASSES) else str(i) for i in empty]
        except ImportError:  # pragma: no cover
            names = [str(i) for i in empty]
        raise ValueError(
            f"class {', '.join(f'{i} ({n})' for i, n in zip(empty, names))} has no samples; "
            "median-frequency weights need every class present"
        )
    freq = counts / counts.sum()
    return torch.tensor(np.median(freq) / freq, dtype=torch.float32)
