"""Training (chapters 7, 8 and 12): loss and accuracy curves, learning rates compared."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from skinlab.plots._common import SPLIT_COLORS, _to_numpy

HISTORY_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc")


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


def training_curves(history) -> Figure:
    """Loss and accuracy per epoch (train vs validation), the best epoch marked.

    ``history``: dict of lists or list of per-epoch dicts with ``train_loss, val_loss,
    train_acc, val_acc`` and optionally ``val_balanced_acc`` (then used to pick the best epoch).
    """
    hist = _history_dict(history, "training_curves: history")
    epochs = np.arange(1, len(hist["train_loss"]) + 1)
    metric = _selection_metric(hist)
    best = int(np.nanargmax(hist[metric]))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(8.6, 3.8), layout="constrained")
    ax_loss.plot(epochs, hist["train_loss"], "o-", ms=3, label="train",
                 color=SPLIT_COLORS["train"])
    ax_loss.plot(epochs, hist["val_loss"], "o-", ms=3, label="validation",
                 color=SPLIT_COLORS["val"])
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Loss")
    ax_acc.plot(epochs, hist["train_acc"], "o-", ms=3, label="train accuracy",
                color=SPLIT_COLORS["train"])
    ax_acc.plot(epochs, hist["val_acc"], "o-", ms=3, label="validation accuracy",
                color=SPLIT_COLORS["val"])
    if "val_balanced_acc" in hist:
        ax_acc.plot(epochs, hist["val_balanced_acc"], "s-", ms=3, color=SPLIT_COLORS["test"],
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
