"""Exploring the data (chapters 2-4): class counts, metadata, age, split shares, class weights."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from skinlab.data import CLASSES
from skinlab.plots._common import (
    SPLIT_COLORS,
    _check_dx,
    _class_vector,
    _dx_counts,
    _new_axes,
    _require_columns,
    class_color,
)
from skinlab.split import DEFAULT_FRACTIONS, SPLITS


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
    fig, axes = plt.subplots(2, 2, figsize=(9.6, 8.2), layout="constrained")  # legible in a page column
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
        ax_age.hist(known, bins=bins, color=SPLIT_COLORS["train"], edgecolor="white")
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
            ax.barh(np.arange(len(table)), table["count"], color=SPLIT_COLORS["train"])
        else:
            ax.bar(np.arange(len(table)), table["count"], color=SPLIT_COLORS["train"])
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
                 fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Figure:
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

    fig, ax = plt.subplots(figsize=(8.4, 4.6), layout="constrained")
    x = np.arange(len(CLASSES))
    width = 0.2
    for i, (name, (shares, label)) in enumerate(series.items()):
        ax.bar(x + (i - 1.5) * width, 100 * shares.to_numpy(dtype=float), width,
               color=SPLIT_COLORS[name], label=label,
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
