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


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # the oracle, on purpose
@pytest.mark.parametrize("seed", range(4))
def test_balanced_accuracy_alone_equals_sklearn_and_compute_metrics(seed):
    from skinlab.metrics import balanced_accuracy

    y, p = random_probs(n=200, seed=seed)
    rng = np.random.default_rng(seed)
    y = np.where(y == seed + 2, 0, y)  # one class absent from the truth, still predicted
    preds = [p.argmax(1), rng.integers(0, 7, len(y)), np.zeros_like(y)]  # incl. a majority-only predictor
    for pred in preds:
        assert balanced_accuracy(y, pred) == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
        assert balanced_accuracy(y, pred) == pytest.approx(compute_metrics(y, pred)["balanced_accuracy"], abs=1e-12)


def test_balanced_accuracy_rejects_mismatched_or_empty_input():
    from skinlab.metrics import balanced_accuracy

    with pytest.raises(ValueError, match="1-D and of one length"):
        balanced_accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="no labels"):
        balanced_accuracy([], [])


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


# --------------------------------------------------------------------------- bootstrap over lesions

from skinlab.metrics import bootstrap_metrics, format_interval  # noqa: E402


def test_bootstrap_two_lesions_by_hand():
    # lesion A: two images, both right; lesion B: one image, wrong. Drawing 2 lesions with
    # replacement gives AA (accuracy 1, p=1/4), AB or BA (2/3, p=1/2), BB (0, p=1/4).
    y = np.array([0, 0, 1])
    pred = np.array([0, 0, 0])
    out = bootstrap_metrics(y, pred, ["A", "A", "B"], num_classes=2, n_boot=4000, seed=1,
                            return_replicates=True)
    assert out["accuracy"]["value"] == pytest.approx(2 / 3)
    reps = out["replicates"]["accuracy"]
    assert set(np.round(reps, 6)) <= {1.0, round(2 / 3, 6), 0.0}
    assert np.mean(reps == 1.0) == pytest.approx(0.25, abs=0.03)
    assert np.mean(np.isclose(reps, 2 / 3)) == pytest.approx(0.5, abs=0.03)
    assert (out["accuracy"]["low"], out["accuracy"]["high"]) == (0.0, 1.0)
    narrow = bootstrap_metrics(y, pred, ["A", "A", "B"], num_classes=2, n_boot=4000, seed=1, level=0.4)
    assert narrow["accuracy"]["low"] == pytest.approx(2 / 3) and narrow["accuracy"]["high"] == pytest.approx(2 / 3)
    # balanced accuracy: recall class 0 = 1, class 1 = 0 -> 0.5; AA has only class 0 -> 1.0
    assert out["balanced_accuracy"]["value"] == pytest.approx(0.5)
    assert set(np.round(out["replicates"]["balanced_accuracy"], 6)) <= {1.0, 0.5, 0.0}


def test_bootstrap_replicates_match_an_explicit_resample():
    y, p = random_probs(n=120, seed=3)
    groups = np.repeat(np.arange(60), 2)  # 60 lesions of two images
    y = y[::2].repeat(2)  # one diagnosis per lesion
    out = bootstrap_metrics(y, p, groups, n_boot=5, seed=7, return_replicates=True)
    draws = np.random.default_rng(7).integers(0, 60, size=(5, 60))
    for b in range(5):
        idx = np.concatenate([np.flatnonzero(groups == lesion) for lesion in draws[b]])
        m = compute_metrics(y[idx], p[idx])
        assert out["replicates"]["accuracy"][b] == pytest.approx(m["accuracy"])
        assert out["replicates"]["balanced_accuracy"][b] == pytest.approx(m["balanced_accuracy"])
    whole = compute_metrics(y, p)
    assert out["accuracy"]["value"] == pytest.approx(whole["accuracy"])
    assert out["balanced_accuracy"]["value"] == pytest.approx(whole["balanced_accuracy"])
    assert out["recall"]["mel"]["value"] == pytest.approx(whole["per_class_recall"]["mel"])


def test_bootstrap_interval_contains_the_value_and_narrows_with_more_lesions():
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 1600):
        y = rng.integers(0, 2, n)
        pred = np.where(rng.random(n) < 0.8, y, 1 - y)
        out = bootstrap_metrics(y, pred, np.arange(n), num_classes=2, n_boot=1000, seed=0)
        a = out["accuracy"]
        assert a["low"] <= a["value"] <= a["high"]
        widths.append(a["high"] - a["low"])
    assert widths[1] < widths[0] / 2.5  # ~1/sqrt(16) = 1/4 of the width
    assert format_interval(out["accuracy"]).count(".") == 3


def test_bootstrap_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_metrics([0, 1], [0, 1], ["a"])


def test_metrics_table_puts_the_baseline_first_and_rounds():
    from skinlab.metrics import metrics_table

    y_true = np.array([0, 0, 1, 1, 2, 5, 5, 5])
    m = compute_metrics(y_true, np.eye(7)[[0, 1, 1, 1, 2, 5, 5, 0]])
    base = majority_baseline(y_true, y_true)
    table = metrics_table({"model": m}, base)
    assert list(table.index) == [f"majority baseline (always {base['class']})", "model"]
    assert table.loc["model", "accuracy"] == round(m["accuracy"], 3)
    assert table.loc["model", "balanced accuracy"] == round(m["balanced_accuracy"], 3)
    assert np.isnan(table.iloc[0]["macro-F1"])  # the baseline has no F1 in the table
    assert list(metrics_table({"model": m}).index) == ["model"]


def test_metrics_table_rounds_as_the_prose_prints():
    """0.5965 is printed 0.597 by f"{x:.3f}" in a sentence; the table beside it must agree
    (DataFrame.round gave 0.596)."""
    from skinlab.metrics import metrics_table

    row = {"accuracy": 0.5965, "balanced_accuracy": 0.0125, "macro_f1": 0.2345}
    table = metrics_table({"model": row})
    for key, column in (("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy")):
        assert table.loc["model", column] == float(f"{row[key]:.3f}")


def test_paired_difference_against_a_hand_written_paired_bootstrap():
    """Oracle: resample lesions by hand with the same generator and score both models on each draw."""
    from skinlab.metrics import balanced_accuracy, paired_difference

    rng = np.random.default_rng(5)
    n = 300
    groups = np.repeat(np.arange(150), 2)
    y = rng.integers(0, 7, n)
    a = np.where(rng.random(n) < 0.5, y, rng.integers(0, 7, n))
    b = np.where(rng.random(n) < 0.7, y, rng.integers(0, 7, n))
    got = paired_difference(y, a, b, groups, metric="accuracy", n_boot=500, seed=3)
    assert got["value"] == pytest.approx((b == y).mean() - (a == y).mean(), abs=1e-12)
    draws = np.random.default_rng(3).integers(0, 150, size=(500, 150))
    diffs = []
    for d in draws:
        w = np.bincount(d, minlength=150)[groups]
        diffs.append((w * (b == y)).sum() / w.sum() - (w * (a == y)).sum() / w.sum())
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert got["low"] == pytest.approx(low, abs=1e-12) and got["high"] == pytest.approx(high, abs=1e-12)
    assert got["low"] > 0  # b is right 70 % + chance, a 50 % + chance: clearly better
    same = paired_difference(y, a, a, groups, n_boot=200)
    assert same["value"] == same["low"] == same["high"] == 0.0  # paired: no noise left
    bal = paired_difference(y, a, b, groups, n_boot=200)
    assert bal["value"] == pytest.approx(balanced_accuracy(y, b) - balanced_accuracy(y, a), abs=1e-12)


def test_claims_outcome_and_require():
    from skinlab.course import claims

    assert claims.outcome({"low": 0.01, "high": 0.05}) == "better"
    assert claims.outcome({"low": -0.05, "high": -0.01}) == "worse"
    assert claims.outcome({"low": -0.01, "high": 0.05}) == "within the noise"
    assert claims.outcome({"low": float("nan"), "high": 0.1}) == "within the noise"
    assert claims.seeds_interval([0.1, -0.02, 0.04]) == pytest.approx({"value": 0.04, "low": -0.02, "high": 0.1, "n": 3})
    claims.require(True, "fine")
    with pytest.raises(claims.ClaimError, match="the page says 'B beats A'.*gap=-0.1"):
        claims.require(False, "B beats A", gap=-0.1)
