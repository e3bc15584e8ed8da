"""bench.sweep: the tool behind the accuracy figures in docs/PERFORMANCE.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import sweep  # noqa: E402


def _probs(y, rng, skew):
    """Probabilities that favour class 0 by ``skew`` (a model biased towards the majority)."""
    logits = rng.normal(size=(len(y), 7))
    logits[np.arange(len(y)), y] += 1.5
    logits[:, 0] += skew
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


def test_logit_adjustment_tau_is_the_best_on_validation_and_only_uses_it():
    rng = np.random.default_rng(0)
    y_val = rng.choice(7, size=700, p=[0.6, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    p_val = _probs(y_val, rng, skew=2.0)
    taus = np.linspace(-1, 2, 61)
    tau, _ = sweep.logit_adjust(y_val, p_val, p_val, taus)
    log_prior = np.log(np.bincount(y_val, minlength=7) / len(y_val))
    best = max(balanced_accuracy_score(y_val, (np.log(p_val + 1e-12) - t * log_prior).argmax(1)) for t in taus)
    chosen = balanced_accuracy_score(y_val, (np.log(p_val + 1e-12) - tau * log_prior).argmax(1))
    assert chosen == best
    assert tau > 0  # a majority-biased model is pushed away from the majority
    assert chosen > balanced_accuracy_score(y_val, p_val.argmax(1))
    # The test probabilities are only transformed, never looked at to choose tau.
    test_p = np.eye(7)[rng.integers(0, 7, size=50)]
    tau2, pred = sweep.logit_adjust(y_val, p_val, test_p, taus)
    assert tau2 == tau and np.array_equal(pred, test_p.argmax(1))


@pytest.mark.slow
def test_sweep_runs_a_grid_and_reports_it(tmp_path, synth_dir, private_cache):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"a": {"model": "lenet", "epochs": 1}, "b": {"model": "lenet", "epochs": 1, "seed": 1}}))
    out = tmp_path / "sweep"
    assert sweep.main(["run", str(grid), "--out", str(out), "--data", str(synth_dir), "--threads", "1"]) == 0
    for name in ("a", "b"):
        summary = json.loads((out / f"{name}.json").read_text())
        z = np.load(out / f"{name}.npz")
        assert summary["cfg"]["data"] == str(synth_dir) and summary["seconds"] > 0
        assert z["test_p"].shape == (len(z["test_y"]), 7) and np.allclose(z["test_p_tta"].sum(1), 1, atol=1e-5)
        # the stored test probabilities are the ones the run's own metrics came from
        assert abs(summary["test"]["accuracy"] - (z["test_p"].argmax(1) == z["test_y"]).mean()) < 1e-9
    table = sweep.report(out, ensemble=["a", "b"])
    assert table.count("\n| a |") == 1 and "ensemble of 2" in table
