"""Figures for the course: EDA, image grids, augmentation, training curves, evaluation, Grad-CAM.

Every function returns a matplotlib ``Figure`` and never calls ``plt.show()``: in Jupyter the
figure displays itself, in scripts pass it to :func:`save_figure`. Classes are always drawn in
the order of ``CLASSES`` and with one colour per class, the same in every figure.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import tempfile
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from skinlab.data import CLASS_NAMES, CLASSES

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "class_color",
    "class_distribution",
    "metadata_overview",
    "age_by_class",
    "split_shares",
    "class_weights",
    "image_grid",
    "augmentation_examples",
    "training_curves",
    "confusion_matrices",
    "per_class_recall",
    "gradcam_overlays",
    "lr_comparison",
    "compare_models",
    "save_figure",
]

SPLITS = ("train", "val", "test")
HISTORY_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc")
_SPLIT_COLORS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868", "overall": "#7f7f7f"}


# --------------------------------------------------------------------------- helpers


def class_color(code: str):
    """The colour of one class (tab10, in ``CLASSES`` order), shared by all figures."""
    return plt.get_cmap("tab10")(CLASSES.index(code))


def _new_axes(ax, figsize):
    if ax is None:
        return plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def _require_columns(metadata: pd.DataFrame, columns: Sequence[str], func: str) -> None:
    if not isinstance(metadata, pd.DataFrame):
        raise TypeError(f"{func}: metadata must be a pandas DataFrame, "
                        f"got {type(metadata).__name__}")
    missing = [c for c in columns if c not in metadata.columns]
    if missing:
        raise ValueError(
            f"{func}: metadata lacks column(s) {missing}; it has {list(metadata.columns)}"
        )


def _check_dx(metadata: pd.DataFrame, func: str) -> None:
    bad = sorted(set(metadata["dx"].dropna().astype(str)) - set(CLASSES))
    if bad or metadata["dx"].isna().any():
        rows = metadata.index[~metadata["dx"].isin(CLASSES)][:5].tolist()
        raise ValueError(
            f"{func}: column 'dx' has values outside {CLASSES}: {bad or ['<missing>']} "
            f"(first rows: {rows})"
        )


def _dx_counts(metadata: pd.DataFrame) -> pd.Series:
    """Counts per class in ``CLASSES`` order, zeros included."""
    return metadata["dx"].value_counts().reindex(list(CLASSES), fill_value=0).astype(int)


def _to_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor, without importing torch
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _class_vector(values, name: str, class_names: Sequence[str] = CLASSES) -> np.ndarray:
    """A dict code -> value, or a sequence/array/tensor in class order -> float array."""
    if isinstance(values, Mapping):
        missing = [c for c in class_names if c not in values]
        if missing:
            raise ValueError(f"{name}: missing class(es) {missing}; got keys {list(values)}")
        return np.array([float(values[c]) for c in class_names], dtype=float)
    arr = _to_numpy(values).astype(float).ravel()
    if arr.shape != (len(class_names),):
        raise ValueError(
            f"{name}: expected {len(class_names)} values (one per class in {tuple(class_names)}), "
            f"got shape {_to_numpy(values).shape}"
        )
    return arr


def _to_display(image, mean=None, std=None, name: str = "image") -> np.ndarray:
    """PIL image, tensor (C,H,W) or array (H,W[,C]) -> float array in [0, 1] for ``imshow``.

    ``mean``/``std`` undo a ``Normalize`` on tensors/float arrays before clipping.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=float) / 255.0
    is_tensor = hasattr(image, "detach")
    arr = _to_numpy(image)
    if arr.ndim == 3 and is_tensor and arr.shape[0] in (1, 3):
        arr = np.transpose(arr, (1, 2, 0))  # C,H,W -> H,W,C
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"{name}: expected an HxW or HxWx3 image (or 3xHxW tensor), "
                         f"got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(float) / 255.0
    arr = arr.astype(float)
    if mean is not None or std is not None:
        mean_ = np.asarray(mean if mean is not None else 0.0, dtype=float)
        std_ = np.asarray(std if std is not None else 1.0, dtype=float)
        arr = arr * std_ + mean_  # broadcasts over the channel axis (last)
    return np.clip(arr, 0.0, 1.0)


def _image_axes_off(ax) -> None:
    """Hide ticks and frame but keep the y label (``axis('off')`` would hide it too)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _history_dict(history, name: str = "history") -> dict[str, list[float]]:
    """Accept a dict of lists, a list of per-epoch dicts, a DataFrame, or a History object."""
    if isinstance(history, pd.DataFrame):
        history = history.to_dict("list")
    elif dataclasses.is_dataclass(history) and not isinstance(history, type):
        history = dataclasses.asdict(history)
    elif not isinstance(history, (Mapping, list, tuple)):
        for method in ("to_dict", "as_dict"):
            if callable(getattr(history, method, None)):
                history = getattr(history, method)()
                break
        else:
            attrs = {k: getattr(history, k) for k in (*HISTORY_KEYS, "val_balanced_acc")
                     if hasattr(history, k)}
            if not attrs:
                raise TypeError(f"{name}: expected a dict of lists or a list of dicts, "
                                f"got {type(history).__name__}")
            history = attrs
    if isinstance(history, (list, tuple)):
        if not all(isinstance(row, Mapping) for row in history):
            raise TypeError(f"{name}: a list history must hold one dict per epoch")
        keys = {k for row in history for k in row}
        history = {k: [row.get(k, np.nan) for row in history] for k in keys}
    hist = {k: [float(x) for x in _to_numpy(v).ravel()] for k, v in dict(history).items()
            if k in (*HISTORY_KEYS, "val_balanced_acc")}
    missing = [k for k in HISTORY_KEYS if k not in hist]
    if missing:
        raise ValueError(f"{name}: missing key(s) {missing}; got {sorted(dict(history))}")
    lengths = {k: len(v) for k, v in hist.items()}
    if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ValueError(f"{name}: all series need the same nonzero length, got {lengths}")
    return hist


def _selection_metric(hist: Mapping[str, list[float]]) -> str:
    if "val_balanced_acc" in hist and not np.all(np.isnan(hist["val_balanced_acc"])):
        return "val_balanced_acc"
    return "val_acc"


_METRIC_LABELS = {
    "train_loss": "train loss",
    "val_loss": "validation loss",
    "train_acc": "train accuracy",
    "val_acc": "validation accuracy",
    "val_balanced_acc": "validation balanced accuracy",
}


# --------------------------------------------------------------------------- data exploration


def class_distribution(metadata: pd.DataFrame, ax=None, log: bool = False) -> Figure:
    """Bar chart of images per diagnosis (``dx``) in ``CLASSES`` order, labelled count and %."""
    _require_columns(metadata, ["dx"], "class_distribution")
    _check_dx(metadata, "class_distribution")
    counts = _dx_counts(metadata)
    total = int(counts.sum())
    fig, ax = _new_axes(ax, (8, 4.5))
    x = np.arange(len(CLASSES))
    bars = ax.bar(x, counts.to_numpy(), color=[class_color(c) for c in CLASSES])
    pct = 100.0 * counts / total if total else counts * 0.0
    ax.bar_label(bars, labels=[f"{n:,}\n({p:.1f}%)" for n, p in zip(counts, pct)],
                 padding=2, fontsize=9)
    ax.set_xticks(x, list(CLASSES))
    ax.set_xlabel("diagnosis (dx)")
    ax.set_ylabel("images" + (" (log scale)" if log else ""))
    ax.set_title(f"Class distribution ({total:,} images)")
    top = max(int(counts.max()), 1)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(0.8, top * 6)  # room for the two-line labels above the tallest bar
    else:
        ax.set_ylim(0, top * 1.2)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _stacked_counts(ax, table: pd.DataFrame, horizontal: bool) -> None:
    """Draw ``table`` (rows = categories, columns = classes) as stacked bars."""
    pos = np.arange(len(table))
    base = np.zeros(len(table))
    for code in table.columns:
        vals = table[code].to_numpy(dtype=float)
        if horizontal:
            ax.barh(pos, vals, left=base, color=class_color(code), label=code)
        else:
            ax.bar(pos, vals, bottom=base, color=class_color(code), label=code)
        base += vals


def _category_counts(metadata, column, by_dx, sort_desc):
    values = metadata[column].astype("object").where(metadata[column].notna(), "<missing>")
    if by_dx:
        table = pd.crosstab(values, metadata["dx"]).reindex(columns=list(CLASSES), fill_value=0)
    else:
        table = values.value_counts().to_frame("count")
    order = table.sum(axis=1).sort_values(ascending=not sort_desc).index
    return table.loc[order]


def metadata_overview(metadata: pd.DataFrame, by_dx: bool = False) -> Figure:
    """2x2 panel: age histogram, sex, localization (sorted horizontal bars) and dx_type counts.

    ``by_dx=True`` stacks every bar by diagnosis (one colour per class, legend at the right).
    """
    _require_columns(metadata, ["age", "sex", "localization", "dx_type"]
                     + (["dx"] if by_dx else []), "metadata_overview")
    if by_dx:
        _check_dx(metadata, "metadata_overview")
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), layout="constrained")
    ax_age, ax_sex, ax_loc, ax_type = axes.ravel()

    age = pd.to_numeric(metadata["age"], errors="coerce")
    n_missing = int(age.isna().sum())
    known = age.dropna()
    # HAM10000 ages are multiples of 5: bins centred on them
    top = float(known.max()) if len(known) else 0.0
    bins = np.arange(-2.5, top + 7.5, 5.0)
    if by_dx:
        groups = [known[metadata.loc[known.index, "dx"] == c] for c in CLASSES]
        ax_age.hist(groups, bins=bins, stacked=True, color=[class_color(c) for c in CLASSES],
                    label=list(CLASSES))
    else:
        ax_age.hist(known, bins=bins, color=_SPLIT_COLORS["train"], edgecolor="white")
    ax_age.set_title(f"Age ({n_missing:,} missing)")
    ax_age.set_xlabel("age (years)")
    ax_age.set_ylabel("images")

    for ax, column, title, horizontal in (
        (ax_sex, "sex", "Sex", False),
        (ax_loc, "localization", "Localization", True),
        (ax_type, "dx_type", "How the diagnosis was confirmed (dx_type)", False),
    ):
        # horizontal bars: largest at the top, so sort ascending (barh draws bottom-up)
        table = _category_counts(metadata, column, by_dx, sort_desc=not horizontal)
        labels = [str(v) for v in table.index]
        if by_dx:
            _stacked_counts(ax, table, horizontal)
        elif horizontal:
            ax.barh(np.arange(len(table)), table["count"], color=_SPLIT_COLORS["train"])
        else:
            ax.bar(np.arange(len(table)), table["count"], color=_SPLIT_COLORS["train"])
        totals = table.sum(axis=1).to_numpy()
        if horizontal:
            ax.set_yticks(np.arange(len(table)), labels)
            ax.set_xlabel("images")
            for y, n in enumerate(totals):
                ax.text(n, y, f" {n:,}", va="center", fontsize=8)
            ax.set_xlim(0, max(totals.max(initial=0), 1) * 1.15)
        else:
            ax.set_xticks(np.arange(len(table)), labels)
            ax.set_ylabel("images")
            for x_, n in enumerate(totals):
                ax.text(x_, n, f"{n:,}", ha="center", va="bottom", fontsize=9)
            ax.set_ylim(0, max(totals.max(initial=0), 1) * 1.12)
        ax.set_title(title)
    for ax in axes.ravel():
        ax.spines[["top", "right"]].set_visible(False)
    if by_dx:
        handles, labels = ax_age.get_legend_handles_labels()
        fig.legend(handles, labels, title="dx", loc="outside right center")
    fig.suptitle(f"HAM10000 metadata ({len(metadata):,} images)")
    return fig


def age_by_class(metadata: pd.DataFrame, kind: str = "box") -> Figure:
    """Age distribution per diagnosis as box plots (``kind="box"``) or violins (``"violin"``)."""
    if kind not in ("box", "violin"):
        raise ValueError(f"age_by_class: kind must be 'box' or 'violin', got {kind!r}")
    _require_columns(metadata, ["dx", "age"], "age_by_class")
    _check_dx(metadata, "age_by_class")
    age = pd.to_numeric(metadata["age"], errors="coerce")
    groups = [age[metadata["dx"] == c].dropna().to_numpy(dtype=float) for c in CLASSES]
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    pos = np.arange(1, len(CLASSES) + 1)
    if kind == "box":
        parts = ax.boxplot(groups, positions=pos, widths=0.6, patch_artist=True,
                           medianprops={"color": "black", "linewidth": 1.5, "gid": "median"})
        for patch, code in zip(parts["boxes"], CLASSES):
            patch.set_facecolor(class_color(code))
            patch.set_alpha(0.8)
    else:
        # violinplot fails on empty groups: draw only classes with at least two ages
        drawn = [i for i, g in enumerate(groups) if len(g) >= 2]
        if drawn:
            parts = ax.violinplot([groups[i] for i in drawn], positions=pos[drawn],
                                  showmedians=True, widths=0.8)
            for body, i in zip(parts["bodies"], drawn):
                body.set_facecolor(class_color(CLASSES[i]))
                body.set_alpha(0.7)
            for key in ("cmedians", "cmins", "cmaxes", "cbars"):
                parts[key].set_color("black")
                parts[key].set_linewidth(1)
    ax.set_xticks(pos, list(CLASSES))
    ax.set_xlim(0.4, len(CLASSES) + 0.6)
    for p, g in zip(pos, groups):
        ax.text(p, 1.0, f"n={len(g):,}", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("diagnosis (dx)")
    ax.set_ylabel("age (years)")
    n_missing = int(age.isna().sum())
    ax.set_title(f"Age by diagnosis ({n_missing:,} images without age left out)", pad=16)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def split_shares(metadata: pd.DataFrame, split: pd.Series,
                 fractions: Sequence[float] = (0.64, 0.16, 0.20)) -> Figure:
    """Each class's share of the train/val/test images beside its share of the whole data set.

    ``split`` is a Series of "train"/"val"/"test" indexed like ``metadata``; ``fractions`` are
    the target split sizes, shown with the actual ones in the legend.
    """
    _require_columns(metadata, ["dx"], "split_shares")
    _check_dx(metadata, "split_shares")
    if not isinstance(split, pd.Series):
        raise TypeError(f"split_shares: split must be a pandas Series, got {type(split).__name__}")
    if len(fractions) != 3:
        raise ValueError("split_shares: fractions needs 3 values (train, val, test), "
                         f"got {fractions}")
    aligned = split.reindex(metadata.index)
    if aligned.isna().any():
        rows = metadata.index[aligned.isna()][:5].tolist()
        raise ValueError(f"split_shares: split has no entry for metadata rows {rows} "
                         f"({int(aligned.isna().sum())} in all)")
    bad = sorted(set(aligned.astype(str)) - set(SPLITS))
    if bad:
        raise ValueError(f"split_shares: split values must be {SPLITS}, got also {bad}")

    overall = _dx_counts(metadata) / len(metadata)
    series = {}
    for name, target in zip(SPLITS, fractions):
        part = metadata[aligned == name]
        shares = _dx_counts(part) / len(part) if len(part) else overall * np.nan
        label = (f"{name}: {len(part):,} images = {len(part) / len(metadata):.1%} "
                 f"(target {target:.0%})")
        series[name] = (shares, label)
    series["overall"] = (overall, f"all: {len(metadata):,} images")

    fig, ax = plt.subplots(figsize=(10, 4.8), layout="constrained")
    x = np.arange(len(CLASSES))
    width = 0.2
    for i, (name, (shares, label)) in enumerate(series.items()):
        ax.bar(x + (i - 1.5) * width, 100 * shares.to_numpy(dtype=float), width,
               color=_SPLIT_COLORS[name], label=label,
               hatch="//" if name == "overall" else None, edgecolor="white")
    ax.set_xticks(x, list(CLASSES))
    ax.set_xlabel("diagnosis (dx)")
    ax.set_ylabel("share of the split's images (%)")
    ax.set_title("Class shares per split: a good split keeps them close to the overall share")
    ax.legend(fontsize=9, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def class_weights(weights, counts=None, log: bool = False) -> Figure:
    """Bar chart of per-class loss weights (e.g. median-frequency), with the counts annotated.

    ``weights`` and ``counts`` are dicts code -> value or sequences/tensors in class order.
    """
    w = _class_vector(weights, "class_weights: weights")
    n = None if counts is None else _class_vector(counts, "class_weights: counts")
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    x = np.arange(len(CLASSES))
    bars = ax.bar(x, w, color=[class_color(c) for c in CLASSES])
    labels = [f"{v:.2f}" for v in w]
    if n is not None:
        labels = [f"{text}\nn={int(k):,}" for text, k in zip(labels, n)]
    ax.bar_label(bars, labels=labels, padding=2, fontsize=9)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="weight 1")
    ax.set_xticks(x, list(CLASSES))
    ax.set_xlabel("diagnosis (dx)")
    ax.set_ylabel("loss weight" + (" (log scale)" if log else ""))
    ax.set_title("Class weights: rare classes count more in the loss")
    top = float(np.nanmax(w)) if np.isfinite(w).any() else 1.0
    if log:
        ax.set_yscale("log")
        low = float(np.nanmin(w[w > 0])) if (w > 0).any() else 0.1
        ax.set_ylim(min(low, 1.0) / 2, max(top, 1.0) * 4)
    else:
        ax.set_ylim(0, max(top, 1.0) * 1.2)
    ax.legend(frameon=False, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# --------------------------------------------------------------------------- images


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
                             figsize=(1.9 * n_per_class + 2.2, 1.45 * len(CLASSES) + 0.6))
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


# --------------------------------------------------------------------------- training


def training_curves(history) -> Figure:
    """Loss and accuracy per epoch (train vs validation), the best epoch marked.

    ``history``: dict of lists or list of per-epoch dicts with ``train_loss, val_loss,
    train_acc, val_acc`` and optionally ``val_balanced_acc`` (then used to pick the best epoch).
    """
    hist = _history_dict(history, "training_curves: history")
    epochs = np.arange(1, len(hist["train_loss"]) + 1)
    metric = _selection_metric(hist)
    best = int(np.nanargmax(hist[metric]))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    ax_loss.plot(epochs, hist["train_loss"], "o-", ms=3, label="train",
                 color=_SPLIT_COLORS["train"])
    ax_loss.plot(epochs, hist["val_loss"], "o-", ms=3, label="validation",
                 color=_SPLIT_COLORS["val"])
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Loss")
    ax_acc.plot(epochs, hist["train_acc"], "o-", ms=3, label="train accuracy",
                color=_SPLIT_COLORS["train"])
    ax_acc.plot(epochs, hist["val_acc"], "o-", ms=3, label="validation accuracy",
                color=_SPLIT_COLORS["val"])
    if "val_balanced_acc" in hist:
        ax_acc.plot(epochs, hist["val_balanced_acc"], "s-", ms=3, color=_SPLIT_COLORS["test"],
                    label="validation balanced accuracy")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_title("Accuracy")
    ax_acc.plot(epochs[best], hist[metric][best], "*", ms=14, color="black", zorder=5)
    best_label = f"best epoch {epochs[best]} ({_METRIC_LABELS[metric]} {hist[metric][best]:.3f})"
    for ax in (ax_loss, ax_acc):
        ax.axvline(epochs[best], color="black", linestyle="--", linewidth=1, label=best_label)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def lr_comparison(histories: Mapping[str, object]) -> Figure:
    """Validation balanced accuracy (or accuracy when some run lacks it) per epoch, one line per
    learning rate; keys of ``histories`` are the legend labels (e.g. ``"1e-3"``)."""
    if not histories:
        raise ValueError("lr_comparison: histories is empty")
    hists = {str(k): _history_dict(h, f"lr_comparison: histories[{k!r}]")
             for k, h in histories.items()}
    metric = ("val_balanced_acc" if all(_selection_metric(h) == "val_balanced_acc"
                                        for h in hists.values()) else "val_acc")
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    cmap = plt.get_cmap("viridis")
    for i, (label, h) in enumerate(hists.items()):
        values = np.asarray(h[metric])
        epochs = np.arange(1, len(values) + 1)
        color = cmap(i / max(len(hists) - 1, 1) * 0.9)
        best = int(np.nanargmax(values))
        ax.plot(epochs, values, "o-", ms=3, color=color,
                label=f"{label} (best {values[best]:.3f} at epoch {best + 1})")
        ax.plot(epochs[best], values[best], "*", ms=12, color=color)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(_METRIC_LABELS[metric])
    ax.set_title(f"Learning-rate comparison: {_METRIC_LABELS[metric]}")
    ax.legend(title="learning rate", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# --------------------------------------------------------------------------- evaluation


def _annotate_matrix(ax, values, fmt: str, norm_max: float) -> None:
    for (i, j), v in np.ndenumerate(values):
        text = "–" if np.isnan(v) else format(v, fmt)
        dark = not np.isnan(v) and norm_max > 0 and v / norm_max > 0.55
        ax.text(j, i, text, ha="center", va="center", fontsize=9,
                color="white" if dark else "black")


def confusion_matrices(cm, class_names: Sequence[str] = CLASSES) -> Figure:
    """Counts, row-normalised (recall on the diagonal) and ideal (identity) confusion matrices.

    Rows are true classes, columns predicted classes; rows without images show "–".
    """
    m = _to_numpy(cm).astype(float)
    k = len(class_names)
    if m.shape != (k, k):
        raise ValueError(f"confusion_matrices: cm must be {k}x{k} (one row/column per class "
                         f"in {tuple(class_names)}), got shape {m.shape}")
    if np.isnan(m).any() or (m < 0).any():
        raise ValueError("confusion_matrices: cm must hold non-negative counts")
    row_sums = m.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.where(row_sums > 0, m / row_sums, np.nan)
    recall = np.diag(normalised)
    balanced = float(np.nanmean(recall)) if not np.all(np.isnan(recall)) else float("nan")

    fig, axes = plt.subplots(1, 3, figsize=(6 + 1.6 * k, 0.55 * k + 2.2), layout="constrained")
    panels = (
        (m, ".0f", float(m.max(initial=0)), f"Counts ({int(m.sum()):,} images)"),
        (normalised, ".2f", 1.0, f"Row-normalised: recall on the diagonal\n"
                                 f"(balanced accuracy = mean = {balanced:.3f})"),
        (np.eye(k), ".0f", 1.0, "Ideal: every image on the diagonal"),
    )
    for ax, (values, fmt, vmax, title) in zip(axes, panels):
        ax.imshow(np.ma.masked_invalid(values), cmap="Blues", vmin=0, vmax=max(vmax, 1e-12))
        _annotate_matrix(ax, values, fmt, vmax)
        ax.set_xticks(np.arange(k), list(class_names), rotation=45, ha="right")
        ax.set_yticks(np.arange(k), list(class_names))
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title, fontsize=10)
    return fig


def per_class_recall(recalls, baseline=None, class_names: Sequence[str] = CLASSES) -> Figure:
    """Recall per class as bars, with their mean (the balanced accuracy) as a line.

    ``recalls``: dict code -> recall, an array in class order, or a metrics dict holding
    ``per_class_recall``. ``baseline``: a number (drawn as a line, e.g. chance 1/7), or per-class
    recalls / a metrics dict of another model (drawn as grey bars beside).
    """
    if isinstance(recalls, Mapping) and "per_class_recall" in recalls:
        recalls = recalls["per_class_recall"]
    r = _class_vector(recalls, "per_class_recall: recalls", class_names)
    base_bars = base_line = None
    if baseline is not None:
        if isinstance(baseline, Mapping) and "per_class_recall" in baseline:
            baseline = baseline["per_class_recall"]
        if np.ndim(_to_numpy(baseline)) == 0 and not isinstance(baseline, Mapping):
            base_line = float(baseline)
        else:
            base_bars = _class_vector(baseline, "per_class_recall: baseline", class_names)
    balanced = float(np.nanmean(r))
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    x = np.arange(len(class_names))
    width = 0.4 if base_bars is not None else 0.7
    shift = width / 2 if base_bars is not None else 0.0
    colors = [class_color(c) if c in CLASSES else "#4c72b0" for c in class_names]
    bars = ax.bar(x - shift, np.nan_to_num(r), width, color=colors, label="recall")
    ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.2f}" for v in r],
                 padding=2, fontsize=9)
    if base_bars is not None:
        bb = ax.bar(x + shift, np.nan_to_num(base_bars), width, color="#bbbbbb",
                    label=f"baseline (balanced accuracy {np.nanmean(base_bars):.3f})")
        ax.bar_label(bb, labels=[f"{v:.2f}" for v in base_bars], padding=2, fontsize=8,
                     color="#555555")
    ax.axhline(balanced, color="black", linestyle="--", linewidth=1.2,
               label=f"balanced accuracy = mean recall = {balanced:.3f}")
    if base_line is not None:
        ax.axhline(base_line, color="#d62728", linestyle=":", linewidth=1.5,
                   label=f"baseline {base_line:.3f}")
    ax.set_xticks(x, list(class_names))
    ax.set_ylim(0, 1.25)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("diagnosis (dx)")
    ax.set_ylabel("recall (sensitivity)")
    ax.set_title("Recall per class")
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncols=2)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def compare_models(results: Mapping[str, Mapping[str, float]], baseline=None,
                   metrics: Sequence[str] = ("accuracy", "balanced_accuracy")) -> Figure:
    """Grouped bars of ``metrics`` per model; the majority baseline as horizontal lines.

    ``results``: model name -> metrics dict (e.g. from ``compute_metrics``). ``baseline``: a
    metrics dict (one line per metric, same colour as its bars) or a single number.
    """
    if not results:
        raise ValueError("compare_models: results is empty")
    for name, res in results.items():
        missing = [m for m in metrics if m not in res]
        if missing:
            raise ValueError(f"compare_models: results[{name!r}] lacks {missing}")
    names = list(results)
    fig, ax = plt.subplots(figsize=(max(6.5, 1.6 * len(names) + 3), 4.5), layout="constrained")
    x = np.arange(len(names))
    width = 0.8 / len(metrics)
    colors = plt.get_cmap("tab10")
    for i, metric in enumerate(metrics):
        values = [float(results[n][metric]) for n in names]
        bars = ax.bar(x + (i - (len(metrics) - 1) / 2) * width, values, width,
                      color=colors(i), label=metric.replace("_", " "))
        ax.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
        if isinstance(baseline, Mapping) and metric in baseline:
            ax.axhline(float(baseline[metric]), color=colors(i), linestyle="--", linewidth=1.2,
                       label=f"majority baseline {metric.replace('_', ' ')} "
                             f"{float(baseline[metric]):.3f}")
    if baseline is not None and not isinstance(baseline, Mapping):
        ax.axhline(float(baseline), color="black", linestyle="--", linewidth=1.2,
                   label=f"baseline {float(baseline):.3f}")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("score on the test set")
    ax.set_title("Model comparison")
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncols=2)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# --------------------------------------------------------------------------- Grad-CAM


def _as_list(items, item_ndim: int) -> list:
    """A list/tuple of items, one item (``item_ndim`` dims) or a stacked array -> list."""
    if isinstance(items, (list, tuple)):
        return list(items)
    arr = _to_numpy(items)
    return [arr] if arr.ndim == item_ndim else list(arr)


def gradcam_overlays(images, cams, titles: Sequence[str] | None = None, masks=None,
                     alpha: float = 0.45, cmap: str = "jet") -> Figure:
    """One row per image: the image, then the Grad-CAM heatmap over it (``cmap``, ``alpha``).

    ``images``: HxWx3 float in [0, 1] or uint8 (one, or a list/array of them). ``cams``: HxW in
    [0, 1], any resolution (stretched over the image). ``masks``: optional lesion masks (any
    resolution, nonzero = lesion) drawn as a white contour on the overlay.
    """
    imgs = _as_list(images, 3)
    heat = _as_list(cams, 2)
    mask_list = _as_list(masks, 2) if masks is not None else None
    if not imgs:
        raise ValueError("gradcam_overlays: no images given")
    if len(heat) != len(imgs):
        raise ValueError(f"gradcam_overlays: {len(imgs)} images but {len(heat)} cams")
    if mask_list is not None and len(mask_list) != len(imgs):
        raise ValueError(f"gradcam_overlays: {len(imgs)} images but {len(mask_list)} masks")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"gradcam_overlays: {len(imgs)} images but {len(titles)} titles")

    fig, axes = plt.subplots(len(imgs), 2, squeeze=False, layout="constrained",
                             figsize=(6.4, 2.6 * len(imgs) + 0.5))
    for i, (img, cam) in enumerate(zip(imgs, heat)):
        shown = _to_display(img, name=f"images[{i}]")
        cam = _to_numpy(cam).astype(float)
        if cam.ndim != 2:
            raise ValueError(f"gradcam_overlays: cams[{i}] must be HxW, got shape {cam.shape}")
        if not np.isfinite(cam).all() or cam.min() < -1e-6 or cam.max() > 1 + 1e-6:
            raise ValueError(f"gradcam_overlays: cams[{i}] must lie in [0, 1], got range "
                             f"[{np.nanmin(cam):.3g}, {np.nanmax(cam):.3g}]")
        h, w = shown.shape[:2]
        extent = (-0.5, w - 0.5, h - 0.5, -0.5)  # the image's own pixel extent
        ax_img, ax_cam = axes[i]
        ax_img.imshow(shown)
        ax_cam.imshow(shown)
        ax_cam.imshow(cam, cmap=cmap, alpha=alpha, vmin=0, vmax=1, extent=extent,
                      interpolation="bilinear")
        if mask_list is not None:
            mask = _to_numpy(mask_list[i]).astype(float)
            if mask.ndim == 3:
                mask = mask[..., 0]
            mh, mw = mask.shape
            # pixel centres of the mask in image coordinates, whatever its resolution
            xs = (np.arange(mw) + 0.5) * w / mw - 0.5
            ys = (np.arange(mh) + 0.5) * h / mh - 0.5
            if (mask > 0).any() and (mask <= 0).any():
                ax_cam.contour(xs, ys, (mask > 0).astype(float), levels=[0.5],
                               colors="white", linewidths=1.5)
        ax_img.set_title(titles[i] if titles is not None else "image", fontsize=9)
        ax_cam.set_title("Grad-CAM" + (" + lesion mask" if mask_list is not None else ""),
                         fontsize=9)
        for ax in (ax_img, ax_cam):
            _image_axes_off(ax)
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
    return fig


# --------------------------------------------------------------------------- saving


def save_figure(fig: Figure, path) -> Path:
    """Write ``fig`` as PNG (dpi 120) atomically, creating parent folders; close the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
