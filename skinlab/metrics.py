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
