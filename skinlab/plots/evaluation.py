"""Evaluation (chapters 9, 11 and 12): confusion matrices, recall per class, models compared."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from skinlab.data import CLASSES
from skinlab.plots._common import _class_vector, _to_numpy, class_color


def _annotate_matrix(ax, values, fmt: str, norm_max: float) -> None:
    for (i, j), v in np.ndenumerate(values):
        text = "–" if np.isnan(v) else format(v, fmt)
        dark = not np.isnan(v) and norm_max > 0 and v / norm_max > 0.55
        ax.text(j, i, text, ha="center", va="center", fontsize=9,
                color="white" if dark else "black")


def confusion_matrices(cm, class_names: Sequence[str] = CLASSES, ncols: int = 1) -> Figure:
    """Counts, row-normalised (recall on the diagonal) and ideal (identity) confusion matrices.

    Rows are true classes, columns predicted classes; rows without images show "–". Each panel
    has its colour bar (the axes after the three panels). ``ncols``: panels per row; the default,
    one, stacks them so that each stays legible on a page as narrow as a phone.
    """
    if ncols not in (1, 2, 3):
        raise ValueError(f"confusion_matrices: ncols must be 1, 2 or 3, got {ncols}")
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

    nrows = -(-3 // ncols)
    side = 0.5 * k + 1.6
    fig, grid = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(ncols * (side + 1.0), nrows * (side + 0.3)))
    axes = grid.ravel()[:3]
    for extra in grid.ravel()[3:]:
        fig.delaxes(extra)
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
    for ax, (_, fmt, _, _) in zip(axes, panels):
        bar = fig.colorbar(ax.images[0], ax=ax, shrink=0.85, pad=0.02)
        bar.set_label("images" if fmt == ".0f" and ax is axes[0] else "share of the row", fontsize=9)
    return fig


def per_class_recall(recalls, baseline=None, class_names: Sequence[str] = CLASSES, *, label: str = "recall",
                     baseline_label: str = "baseline") -> Figure:
    """Recall per class as bars, with their mean (the balanced accuracy) as a line.

    ``recalls``: dict code -> recall, an array in class order, or a metrics dict holding
    ``per_class_recall``. ``baseline``: a number (drawn as a line, e.g. chance 1/7), or per-class
    recalls / a metrics dict of another model (drawn as grey bars beside). ``label`` and
    ``baseline_label`` name the two in the legend (e.g. the two models compared).
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
    bars = ax.bar(x - shift, np.nan_to_num(r), width, color=colors, label=label)
    ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.2f}" for v in r],
                 padding=2, fontsize=9)
    if base_bars is not None:
        bb = ax.bar(x + shift, np.nan_to_num(base_bars), width, color="#bbbbbb",
                    label=f"{baseline_label} (balanced accuracy {np.nanmean(base_bars):.3f})")
        ax.bar_label(bb, labels=[f"{v:.2f}" for v in base_bars], padding=2, fontsize=8,
                     color="#555555")
    ax.axhline(balanced, color="black", linestyle="--", linewidth=1.2,
               label=(f"{label}: " if base_bars is not None else "") + f"balanced accuracy = mean recall = {balanced:.3f}")
    if base_line is not None:
        ax.axhline(base_line, color="#d62728", linestyle=":", linewidth=1.5,
                   label=f"{baseline_label} {base_line:.3f}")
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
                   metrics: Sequence[str] = ("accuracy", "balanced_accuracy"), *, split: str) -> Figure:
    """Grouped bars of ``metrics`` per model; the majority baseline as horizontal lines.

    ``results``: model name -> metrics dict (e.g. from ``compute_metrics``). ``baseline``: a
    metrics dict (one line per metric, same colour as its bars) or a single number. ``split``:
    the part of the data the scores were computed on (``"test"``, ``"validation"``...), which the
    y-axis names; it has no default, so a figure of validation scores cannot say "test".
    """
    if not results:
        raise ValueError("compare_models: results is empty")
    if not isinstance(split, str) or not split.strip():
        raise ValueError("compare_models: split must name the part the scores are on, e.g. 'test' or 'validation'")
    for name, res in results.items():
        missing = [m for m in metrics if m not in res]
        if missing:
            raise ValueError(f"compare_models: results[{name!r}] lacks {missing}")
    names = list(results)
    fig, ax = plt.subplots(figsize=(min(9.0, max(6.5, 1.6 * len(names) + 3)), 4.5), layout="constrained")
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
    many = len(names) > 4  # long names side by side would overlap: slant them
    ax.set_xticks(x, names, rotation=25 if many else 0, ha="right" if many else "center")
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(f"score on the {split.strip()} split")
    ax.set_title("Model comparison")
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncols=2)
    ax.spines[["top", "right"]].set_visible(False)
    return fig
