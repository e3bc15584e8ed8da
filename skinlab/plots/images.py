"""Looking at images (chapter 5): a sample grid per class and augmentation draws."""

from __future__ import annotations

import math
import os
import random
import textwrap
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from skinlab.data import CLASS_NAMES, CLASSES
from skinlab.plots._common import _check_dx, _image_axes_off, _require_columns, _to_display


def _default_loader(path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def image_grid(metadata: pd.DataFrame, n_per_class: int = 5, seed: int = 0,
               loader: Callable | None = None) -> Figure:
    """A grid of sample images: one row per class (code and full name), ``n_per_class`` columns.

    Images are sampled with ``seed`` and loaded from the ``path`` column with PIL, or with
    ``loader(path)`` (returning a PIL image, array or tensor). Classes with fewer images show
    what they have.
    """
    if n_per_class < 1:
        raise ValueError(f"image_grid: n_per_class must be >= 1, got {n_per_class}")
    _require_columns(metadata, ["dx", "path"], "image_grid")
    _check_dx(metadata, "image_grid")
    load = loader or _default_loader
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(CLASSES), n_per_class, squeeze=False, layout="constrained",
                             figsize=(1.35 * n_per_class + 1.9, 1.05 * len(CLASSES) + 0.6))
    for r, code in enumerate(CLASSES):
        rows = metadata[metadata["dx"] == code]
        k = min(n_per_class, len(rows))
        chosen = rows.iloc[np.sort(rng.choice(len(rows), size=k, replace=False))] if k else rows
        for c in range(n_per_class):
            ax = axes[r, c]
            _image_axes_off(ax)
            if c < k:
                row = chosen.iloc[c]
                try:
                    img = load(row["path"])
                except Exception as err:  # name the row so a broken file is easy to find
                    raise ValueError(f"image_grid: cannot load image of row {chosen.index[c]!r} "
                                     f"({row['path']}): {err}") from err
                ax.imshow(_to_display(img, name=str(row["path"])))
                if "image_id" in row.index:
                    ax.set_title(str(row["image_id"]), fontsize=7, pad=2)
            elif c == 0:
                ax.text(0.5, 0.5, "no images", ha="center", va="center", transform=ax.transAxes)
        name = textwrap.fill(CLASS_NAMES.get(code, code), 24)
        axes[r, 0].set_ylabel(f"{code}\n{name}", rotation=0, ha="right", va="center",
                              fontsize=8, labelpad=8)
    fig.suptitle(f"Sample images per class (seed {seed})")
    fig.skinlab_photo = True  # shown as JPEG in the book (skinlab.plots.book_display)
    return fig


def augmentation_examples(image, transform: Callable, n: int = 8, seed: int = 0,
                          mean=None, std=None) -> Figure:
    """The original image and ``n`` outputs of ``transform`` (random augmentations).

    ``image`` is a PIL image, an array or a file path. ``transform`` maps a PIL image to a PIL
    image or a (C,H,W) tensor; give ``mean``/``std`` to undo its normalisation for display.
    Seeds torch, numpy and ``random`` with ``seed`` and restores their states afterwards.
    """
    if n < 1:
        raise ValueError(f"augmentation_examples: n must be >= 1, got {n}")
    if isinstance(image, (str, os.PathLike)):
        image = _default_loader(image)
    elif not isinstance(image, Image.Image):
        image = Image.fromarray((_to_display(image) * 255).round().astype(np.uint8))
    outputs = _run_seeded(lambda: [transform(image) for _ in range(n)], seed)

    ncols = math.ceil(math.sqrt(n + 1))
    nrows = math.ceil((n + 1) / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(2.6 * ncols, 2.3 * nrows + 0.4))
    flat = axes.ravel()
    flat[0].imshow(_to_display(image))
    flat[0].set_title("original", fontsize=10, fontweight="bold")
    for i, out in enumerate(outputs, start=1):
        flat[i].imshow(_to_display(out, mean=mean, std=std, name=f"augmented #{i}"))
        flat[i].set_title(f"augmented #{i}", fontsize=10)
    for ax in flat[: n + 1]:
        _image_axes_off(ax)
    for ax in flat[n + 1:]:
        fig.delaxes(ax)
    fig.suptitle(f"Data augmentation: {n} random draws (seed {seed})")
    fig.skinlab_photo = True
    return fig


def _run_seeded(func: Callable, seed: int):
    """Run ``func`` with torch/numpy/random seeded, leaving the callers' RNG states untouched."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        random.seed(seed)
        np.random.seed(seed)
        try:
            import torch
        except ImportError:
            return func()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return func()
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
