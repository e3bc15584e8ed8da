"""Metrics against scikit-learn computed independently."""

import numpy as np
import pytest
from sklearn import metrics as skm

from skinlab.metrics import compute_metrics, majority_baseline


def random_probs(n=300, c=7, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 2.0 * np.eye(c)[y] * rng.random((n, 1))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p


def test_against_sklearn():
    y, p = random_probs()
    pred = p.argmax(1)
    m = compute_metrics(y, p)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    np.testing.assert_array_equal(m["confusion_matrix"], skm.confusion_matrix(y, pred, labels=range(7)))
    recalls = skm.recall_score(y, pred, average=None)
    assert list(m["per_class_recall"].values()) == pytest.approx(list(recalls))


def test_absent_class_in_truth():
    y = np.array([0, 0, 1, 1, 2])
    p = np.eye(7)[[0, 1, 1, 1, 5]]
    m = compute_metrics(y, p)
    assert m["per_class_recall"]["vasc"] is None
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p.argmax(1)))
    assert m["per_class_auc"]["vasc"] is None
    assert len(m["confusion_matrix"]) == 7


def test_labels_instead_of_probabilities_have_no_auc():
    m = compute_metrics([0, 1, 2], [0, 1, 1])
    assert "roc_auc_ovr" not in m and m["accuracy"] == pytest.approx(2 / 3)


def test_majority_baseline():
    b = majority_baseline([5, 5, 5, 0, 1], [5, 5, 0, 1])
    assert b["class"] == "nv"
    assert b["accuracy"] == pytest.approx(0.5)
    assert b["balanced_accuracy"] == pytest.approx(1 / 3)
    assert b["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score([5, 5, 0, 1], [5, 5, 5, 5]))


@pytest.mark.realdata
def test_real_majority_baseline_on_lesion_split(real_metadata):
    from skinlab.split import split_by_lesion

    s = split_by_lesion(real_metadata, seed=0)
    y = real_metadata["label"].to_numpy()
    b = majority_baseline(y[s == "train"], y[s == "test"])
    assert b["class"] == "nv"
    assert b["accuracy"] == pytest.approx(0.67, abs=0.01)
    assert b["balanced_accuracy"] == pytest.approx(1 / 7)
