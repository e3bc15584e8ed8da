"""Evaluation metrics through scikit-learn, always in the fixed class order."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm

from skinlab.data import CLASSES


def compute_metrics(y_true, y_prob, class_names=CLASSES) -> dict:
    """Accuracy, balanced accuracy, macro-F1, per-class recall, confusion matrix and ROC AUC.

    ``y_prob`` is ``(N, C)`` class probabilities (or ``(N,)`` predicted labels, then no AUC).
    One-vs-rest AUC is macro-averaged over the classes present in ``y_true``; a class absent
    from ``y_true`` has AUC ``None``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_prob = np.asarray(y_prob)
    num_classes = len(class_names)
    labels = list(range(num_classes))
    y_pred = y_prob.argmax(axis=1) if y_prob.ndim == 2 else y_prob.astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # absent classes: sklearn warns, we report None instead
        recall = skm.recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
        present = np.bincount(y_true, minlength=num_classes) > 0
        out = {
            "n": int(len(y_true)),
            "accuracy": float(skm.accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(recall[present].mean()) if present.any() else float("nan"),
            "macro_f1": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
            "per_class_recall": {
                c: (float(r) if p else None) for c, r, p in zip(class_names, recall, present)
            },
            "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        }
    if y_prob.ndim == 2:
        aucs = {}
        for k, c in enumerate(class_names):
            positives = y_true == k
            aucs[c] = float(skm.roc_auc_score(positives, y_prob[:, k])) if 0 < positives.sum() < len(y_true) else None
        valid = [a for a in aucs.values() if a is not None]
        out["per_class_auc"] = aucs
        out["roc_auc_ovr"] = float(np.mean(valid)) if valid else None
    return out


def balanced_accuracy(y_true, y_pred, num_classes: int = len(CLASSES)) -> float:
    """Mean recall over the classes present in ``y_true``: the ``balanced_accuracy`` of
    :func:`compute_metrics` (and of scikit-learn's ``balanced_accuracy_score``), without the other
    metrics. For loops that score many candidate predictions (choosing a threshold or a ``tau``)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and of one length (got {y_true.shape} and {y_pred.shape})")
    if not len(y_true):
        raise ValueError("no labels to score")
    counts = np.bincount(y_true, minlength=num_classes)
    hits = np.bincount(y_true[y_true == y_pred], minlength=num_classes)
    present = counts > 0
    return float((hits[present] / counts[present]).mean())


def majority_baseline(train_labels, test_labels, num_classes: int = len(CLASSES)) -> dict:
    """Scores of always predicting the training split's most frequent class."""
    train = np.asarray(train_labels, dtype=np.int64)
    test = np.asarray(test_labels, dtype=np.int64)
    majority = int(np.bincount(train, minlength=num_classes).argmax())
    pred = np.full_like(test, majority)
    present = np.unique(test)
    return {
        "class": CLASSES[majority] if num_classes == len(CLASSES) else majority,
        "accuracy": float(skm.accuracy_score(test, pred)),
        "balanced_accuracy": float(np.mean([float(c == majority) for c in present])),
    }


def bootstrap_metrics(y_true, y_prob, groups, num_classes: int = len(CLASSES), n_boot: int = 2000,
                      level: float = 0.95, seed: int = 0, return_replicates: bool = False) -> dict:
    """Percentile-bootstrap intervals of accuracy, balanced accuracy and each class's recall,
    resampling **groups** (lesions), not images.

    The images of one lesion are not independent (near-identical views), so each bootstrap
    replicate draws as many lesions as the test set holds, with replacement, and keeps all
    images of each drawn lesion (a lesion drawn twice counts twice). ``y_prob`` is ``(N, C)``
    probabilities or ``(N,)`` predicted labels; ``groups`` is ``(N,)`` lesion ids.

    Returns ``{"accuracy": {"value", "low", "high"}, "balanced_accuracy": {...},
    "recall": {k: {...}}, "n_boot", "level", "groups"}``; ``value`` is the statistic on the data
    itself. A class absent from a replicate has no recall there (balanced accuracy then averages
    the classes present, as :func:`compute_metrics` does); its interval uses the other replicates.
    ``return_replicates`` adds ``"replicates": {name: array (n_boot,)}``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_prob = np.asarray(y_prob)
    y_pred = y_prob.argmax(axis=1) if y_prob.ndim == 2 else y_prob.astype(np.int64)
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise ValueError(f"y_true, y_prob and groups differ in length "
                         f"({len(y_true)}, {len(y_pred)}, {len(groups)})")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    _, g = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(g.max()) + 1 if len(g) else 0
    if n_groups == 0:
        raise ValueError("no images to bootstrap")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    # times each lesion is drawn in each replicate -> weight of each of its images
    offsets = draws + np.arange(n_boot)[:, None] * n_groups
    counts = np.bincount(offsets.ravel(), minlength=n_boot * n_groups).reshape(n_boot, n_groups)
    weights = np.vstack([np.ones((1, n_groups)), counts])[:, g].astype(np.float64)  # row 0: the data
    correct = (y_pred == y_true).astype(np.float64)

    acc = (weights * correct).sum(1) / weights.sum(1)
    recalls = np.full((n_boot + 1, num_classes), np.nan)
    for k in range(num_classes):
        mask = y_true == k
        if not mask.any():
            continue
        denom = weights[:, mask].sum(1)
        num = (weights[:, mask] * correct[mask]).sum(1)
        recalls[:, k] = np.where(denom > 0, num / np.where(denom > 0, denom, 1), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        balanced = np.nanmean(recalls, axis=1)

    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def interval(values: np.ndarray) -> dict:
        point, reps = float(values[0]), values[1:]
        reps = reps[~np.isnan(reps)]
        if np.isnan(point) or not len(reps):
            return {"value": point, "low": float("nan"), "high": float("nan")}
        low, high = np.percentile(reps, [lo_q, hi_q])
        return {"value": point, "low": float(low), "high": float(high)}

    names = CLASSES if num_classes == len(CLASSES) else list(range(num_classes))
    out = {
        "accuracy": interval(acc),
        "balanced_accuracy": interval(balanced),
        "recall": {names[k]: interval(recalls[:, k]) for k in range(num_classes)},
        "n_boot": int(n_boot), "level": float(level), "groups": n_groups,
    }
    if return_replicates:
        out["replicates"] = {"accuracy": acc[1:], "balanced_accuracy": balanced[1:],
                             **{f"recall_{names[k]}": recalls[1:, k] for k in range(num_classes)}}
    return out


def paired_difference(y_true, prob_a, prob_b, groups, metric: str = "balanced_accuracy",
                      n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Model B minus model A on the **same** test images, with a paired percentile-bootstrap
    interval over lesions: both models are scored on every replicate's draw of lesions, so the
    difference's interval leaves out the chance that is common to both (which lesions are in the
    test part). ``metric``: ``"accuracy"``, ``"balanced_accuracy"`` or ``"recall_<class>"``.

    Returns ``{"value", "low", "high", "metric", "n_boot", "level"}``; ``value`` is the difference
    on the data itself. An interval that excludes 0 says B differs from A on this test part beyond
    the chance of which lesions it holds (not beyond the chance of training: that needs seeds)."""
    a = bootstrap_metrics(y_true, prob_a, groups, n_boot=n_boot, level=level, seed=seed, return_replicates=True)
    b = bootstrap_metrics(y_true, prob_b, groups, n_boot=n_boot, level=level, seed=seed, return_replicates=True)
    if metric.startswith("recall_"):
        point = b["recall"][metric[7:]]["value"] - a["recall"][metric[7:]]["value"]
    else:
        point = b[metric]["value"] - a[metric]["value"]
    diff = b["replicates"][metric] - a["replicates"][metric]  # same seed, same groups: same draws
    diff = diff[~np.isnan(diff)]
    low, high = np.percentile(diff, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return {"value": float(point), "low": float(low), "high": float(high), "metric": metric,
            "n_boot": int(n_boot), "level": float(level)}


def format_interval(stat: dict, digits: int = 3) -> str:
    """``"0.612 (0.590-0.634)"`` from a :func:`bootstrap_metrics` entry."""
    if np.isnan(stat["low"]):
        return f"{stat['value']:.{digits}f}"
    return f"{stat['value']:.{digits}f} ({stat['low']:.{digits}f}\u2013{stat['high']:.{digits}f})"


def metrics_table(runs: dict, baseline: dict | None = None):
    """A DataFrame of the headline test metrics of ``{label: compute_metrics dict}``, rounded to
    three decimals, with the :func:`majority_baseline` ``baseline`` first when given."""
    import pandas as pd

    rows = {}
    if baseline is not None:
        rows[f"majority baseline (always {baseline['class']})"] = {
            "accuracy": baseline["accuracy"], "balanced accuracy": baseline["balanced_accuracy"]}
    for label, m in runs.items():
        rows[label] = {"accuracy": m["accuracy"], "balanced accuracy": m["balanced_accuracy"],
                       "macro-F1": m.get("macro_f1"), "ROC AUC (OvR)": m.get("roc_auc_ovr")}
    # Rounded as the prose formats a number (f"{x:.3f}", the float's exact decimal value), not as
    # DataFrame.round (half to even after scaling), which printed 0.5965 as 0.596 beside a 0.597.
    return pd.DataFrame(rows).T.astype(float).map(lambda x: float(f"{x:.3f}") if x == x else x)
