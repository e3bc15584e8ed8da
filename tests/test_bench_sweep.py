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
from bench import accuracy, sweep  # noqa: E402


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
    grid.write_text(json.dumps({"a": {"model": "lenet", "epochs": 1}, "b": {"model": "lenet", "epochs": 1, "init_seed": 1}}))
    out = tmp_path / "sweep"
    assert sweep.main(["run", str(grid), "--out", str(out), "--data", str(synth_dir), "--threads", "1"]) == 0
    for name in ("a", "b"):
        summary = json.loads((out / f"{name}.json").read_text())
        z = np.load(out / f"{name}.npz")
        assert summary["cfg"]["data"] == str(synth_dir) and summary["seconds"] > 0
        assert z["test_p"].shape == (len(z["test_y"]), 7) and np.allclose(z["test_p_tta"].sum(1), 1, atol=1e-5)
        # the stored test probabilities are the ones the run's own metrics came from
        assert abs(summary["test"]["accuracy"] - (z["test_p"].argmax(1) == z["test_y"]).mean()) < 1e-9
    table = sweep.report(out, ensemble=["a", "b"])  # b: another initialisation on a's split
    assert table.count("\n| a |") == 1 and "ensemble of 2" in table
    other = tmp_path / "grid2.json"
    other.write_text(json.dumps({"c": {"model": "lenet", "epochs": 1, "seed": 1}}))
    assert sweep.main(["run", str(other), "--out", str(out), "--data", str(synth_dir), "--threads", "1"]) == 0
    with pytest.raises(ValueError, match="share their split"):  # seed 1 is another split
        sweep.report(out, ensemble=["a", "c"])
    # `bench.accuracy ensemble` scores finished runs with the same functions as add + report
    direct = accuracy.ensemble([out / "a", out / "b"], data=str(synth_dir), tta=True, n_boot=None)
    reported = sweep.scores([np.load(out / "a.npz"), np.load(out / "b.npz")])
    for key in ("accuracy", "balanced_accuracy", "val_accuracy", "val_balanced_accuracy", "macro_f1"):
        assert direct[key] == pytest.approx(reported[key], abs=1e-9), key
    with pytest.raises(ValueError, match="share their split"):
        accuracy.ensemble([out / "a", out / "c"], data=str(synth_dir))
    # a finished run brought in with `add` is scored from the same best weights: same arrays
    added = tmp_path / "added"
    assert sweep.main(["add", str(out / "a"), "--out", str(added), "--data", str(synth_dir)]) == 0
    # its summary describes the run as skinlab reads it back (LeNet's default size resolved)
    assert json.loads((added / "a.json").read_text())["cfg"] == {"model": "lenet", "image_size": 32, "epochs": 1,
                                                                   "lr": 3e-3, "seed": 0}
    z, z2 = np.load(out / "a.npz"), np.load(added / "a.npz")
    assert set(z.files) == set(z2.files) and "test_lesion_id" in z.files
    for key in z.files:
        assert np.array_equal(z[key], z2[key]) if z[key].dtype.kind in "iuU" else np.allclose(z[key], z2[key], atol=1e-6)


def _fake_run(out, name, y_val, y_test, rng, skew, lesions=None):
    """A sweep run's saved arrays (what ``save_predictions`` writes), with made-up probabilities."""
    arrays = {"val_y": y_val, "test_y": y_test}
    for split, y in (("val", y_val), ("test", y_test)):
        p = _probs(y, rng, skew)
        arrays[f"{split}_p"] = p
        arrays[f"{split}_p_tta"] = p
    if lesions is not None:
        arrays["test_lesion_id"] = lesions
    np.savez(out / f"{name}.npz", **arrays)
    (out / f"{name}.json").write_text(json.dumps({"name": name, "cfg": {}, "seconds": 60.0, "best_epoch": 3}))
    return np.load(out / f"{name}.npz")


def _labels(rng, n):
    return rng.choice(7, size=n, p=[0.6, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])


def test_ensemble_scores_are_those_of_the_mean_probabilities_with_a_lesion_bootstrap(tmp_path):
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(1)
    y_val, y_test = _labels(rng, 400), _labels(rng, 300)
    lesions = np.array([f"L{i // 2}" for i in range(300)])  # two images per lesion
    zs = [_fake_run(tmp_path, f"m{k}", y_val, y_test, rng, skew=1.0, lesions=lesions) for k in range(3)]
    r = sweep.scores(zs, n_boot=300)
    mean_p = np.mean([z["test_p_tta"] for z in zs], 0)
    assert r["accuracy"] == accuracy_score(y_test, mean_p.argmax(1))
    assert r["balanced_accuracy"] == balanced_accuracy_score(y_test, mean_p.argmax(1))
    assert r["ci"]["accuracy"][0] <= r["accuracy"] <= r["ci"]["accuracy"][1]
    assert r["ci"]["balanced_accuracy"][0] < r["ci"]["balanced_accuracy"][1]
    adjusted = sweep.scores(zs, adjust=True)
    tau, pred = sweep.logit_adjust(y_val, np.mean([z["val_p_tta"] for z in zs], 0), mean_p)
    assert adjusted["tau"] == tau and adjusted["balanced_accuracy"] == balanced_accuracy_score(y_test, pred)
    other = _fake_run(tmp_path, "other", y_val, _labels(rng, 300), rng, skew=1.0)
    with pytest.raises(ValueError, match="share their split"):
        sweep.scores(zs + [other])
    # same labels, other images (another seed's split can have identical label vectors): refused
    ids = np.array([f"ISIC_{i}" for i in range(300)])
    for name, order in (("x", ids), ("y", ids[::-1])):
        z = dict(np.load(tmp_path / "m0.npz"))
        z["test_image_id"], z["val_image_id"] = order, np.array([f"V{i}" for i in range(400)])
        np.savez(tmp_path / f"{name}.npz", **z)
    with pytest.raises(ValueError, match="test split: .*share their split.*image ids of y differ from x's"):
        sweep.scores([np.load(tmp_path / "x.npz"), np.load(tmp_path / "y.npz")], names=["x", "y"])
    assert sweep.scores([np.load(tmp_path / "x.npz"), np.load(tmp_path / "x.npz")])["n_test"] == 300


def test_scores_report_skinlab_metrics_of_the_chosen_probabilities_against_sklearn(tmp_path):
    """``scores`` goes through skinlab.metrics; sklearn is the oracle. ``tta=False`` scores the
    plain probabilities, the default the flip-TTA ones."""
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    rng = np.random.default_rng(5)
    y_val, y_test = _labels(rng, 300), _labels(rng, 260)
    zs = []
    for k in range(2):
        z = dict(_fake_run(tmp_path, f"t{k}", y_val, y_test, rng, skew=1.0))
        z["test_p"], z["val_p"] = _probs(y_test, rng, skew=3.0), _probs(y_val, rng, skew=3.0)  # another model
        zs.append(z)
    for tta, key in ((True, "_p_tta"), (False, "_p")):
        r = sweep.scores(zs, tta=tta)
        test_pred = np.mean([z["test" + key] for z in zs], 0).argmax(1)
        val_pred = np.mean([z["val" + key] for z in zs], 0).argmax(1)
        assert r["accuracy"] == pytest.approx(accuracy_score(y_test, test_pred), abs=1e-12)
        assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_test, test_pred), abs=1e-12)
        assert r["macro_f1"] == pytest.approx(f1_score(y_test, test_pred, labels=range(7), average="macro",
                                                       zero_division=0), abs=1e-12)
        recall = recall_score(y_test, test_pred, labels=range(7), average=None, zero_division=0)
        assert list(r["per_class_recall"].values()) == pytest.approx(list(recall), abs=1e-12)
        assert r["val_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_val, val_pred), abs=1e-12)
    assert sweep.scores(zs, tta=False)["accuracy"] != sweep.scores(zs)["accuracy"]  # the two really differ


def test_report_of_runs_from_other_splits_is_one_line_and_exit_2(tmp_path, capsys):
    rng = np.random.default_rng(6)
    y_val, y_test = _labels(rng, 120), _labels(rng, 90)
    for name, first in (("x", 0), ("y", 1000)):
        _fake_run(tmp_path, name, y_val, y_test, rng, skew=1.0)
        z = dict(np.load(tmp_path / f"{name}.npz"))
        z["val_image_id"] = np.array([f"V{i}" for i in range(120)])
        z["test_image_id"] = np.array([f"ISIC_{first + i}" for i in range(90)])  # same labels, other images
        np.savez(tmp_path / f"{name}.npz", **z)
    assert sweep.main(["report", str(tmp_path), "--ensemble", "x", "y"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: test split: ") and "image ids of y differ from x's" in err


def _arrays(y_val, y_test, rng, skew, first_id=0):
    """What ``sweep.predict_run`` returns for a finished run (made-up probabilities)."""
    arrays = {"val_y": y_val, "test_y": y_test,
              "val_image_id": np.array([f"V{i}" for i in range(len(y_val))]),
              "test_image_id": np.array([f"ISIC_{first_id + i}" for i in range(len(y_test))]),
              "test_lesion_id": np.array([f"L{i // 2}" for i in range(len(y_test))])}
    for split, y in (("val", y_val), ("test", y_test)):
        arrays[f"{split}_p"], arrays[f"{split}_p_tta"] = _probs(y, rng, skew), _probs(y, rng, skew)
    return arrays


def test_accuracy_ensemble_is_sweep_scores_of_the_runs_predictions(tmp_path, monkeypatch, capsys):
    """``python -m bench.accuracy ensemble`` takes the path of ``bench.sweep add`` + ``report``:
    the runs' ``predict_run`` arrays, scored by ``sweep.scores`` (same figures, same checks)."""
    rng = np.random.default_rng(7)
    y_val, y_test = _labels(rng, 200), _labels(rng, 160)
    fake = {"r0": _arrays(y_val, y_test, rng, 1.0), "r1": _arrays(y_val, y_test, rng, 2.0),
            "other": _arrays(y_val, y_test, rng, 1.0, first_id=5000)}
    for name in fake:
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text("{}")
    calls = []

    def predict_run(run, data=None, device="auto"):
        calls.append((Path(run).name, data, device))
        return fake[Path(run).name], None, device

    monkeypatch.setattr(sweep, "predict_run", predict_run)
    runs = [tmp_path / "r0", tmp_path / "r1"]
    for tta in (False, True):
        for adjust in (False, True):
            got = accuracy.ensemble(runs, data="D", tta=tta, device="cpu", adjust=adjust, n_boot=200)
            want = sweep.scores([fake["r0"], fake["r1"]], adjust=adjust, n_boot=200, tta=tta)
            assert {k: got[k] for k in want} == want
    assert calls[:2] == [("r0", "D", "cpu"), ("r1", "D", "cpu")]
    with pytest.raises(ValueError, match="image ids of .*other differ"):
        accuracy.ensemble(runs + [tmp_path / "other"])
    assert accuracy.main(["ensemble", str(runs[0]), str(tmp_path / "other")]) == 2
    assert "share their split" in capsys.readouterr().err
    assert accuracy.main(["ensemble", str(runs[0]), str(tmp_path / "missing")]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    assert accuracy.main(["ensemble", *map(str, runs), "--tta", "--logit-adjust"]) == 0
    out = capsys.readouterr().out
    r = sweep.scores([fake["r0"], fake["r1"]], adjust=True, n_boot=2000)
    assert out.startswith(f"ensemble of 2 (flip TTA), logit adjustment tau {r['tau']:+.2f}")
    assert f"balanced accuracy {r['balanced_accuracy']:.3f} (95 % bootstrap" in out


def test_report_groups_runs_by_seed_and_ensembles_each_seed(tmp_path):
    rng = np.random.default_rng(2)
    truth = {}
    for seed in (0, 1, 2):
        y_val, y_test = _labels(rng, 300), _labels(rng, 250)
        for name in ("A", "B"):
            # grid runs are NAME_sS; runs brought in with `add` keep their folder's NAME-sS
            _fake_run(tmp_path, f"{name}_s{seed}" if name == "A" else f"{name}-s{seed}", y_val, y_test, rng, skew=1.0)
        truth[seed] = sweep.scores([np.load(tmp_path / f"A_s{seed}.npz"), np.load(tmp_path / f"B-s{seed}.npz")])
    _fake_run(tmp_path, "A_s3", _labels(rng, 300), _labels(rng, 250), rng, skew=1.0)  # no B for seed 3
    assert sweep.seeds_of(tmp_path, ["A"]) == [0, 1, 2, 3] and sweep.seeds_of(tmp_path, ["A", "B"]) == [0, 1, 2]
    text = sweep.report(tmp_path, ensemble_by_seed=["A", "B"])
    accs = [truth[s]["accuracy"] for s in (0, 1, 2)]
    assert f"| A | 0, 1, 2, 3 |" in text and f"| B | 0, 1, 2 |" in text
    assert f"| mean (min–max) | {np.mean(accs):.3f} ({min(accs):.3f}–{max(accs):.3f}) |" in text
    for seed in (0, 1, 2):
        assert f"| {seed} | {truth[seed]['accuracy']:.3f} |" in text
    with pytest.raises(SystemExit, match="no seed has all of"):
        sweep.report(tmp_path, ensemble_by_seed=["A", "C"])


def test_record_sweep_writes_the_reported_figures_per_seed(tmp_path):
    from bench import accuracy

    rng = np.random.default_rng(3)
    for seed in (0, 1, 2):
        y_val, y_test = _labels(rng, 300), _labels(rng, 250)
        lesions = np.array([f"L{i}" for i in range(250)])
        for name in ("A", "B"):
            _fake_run(tmp_path, f"{name}_s{seed}", y_val, y_test, rng, skew=1.5, lesions=lesions)
    results = tmp_path / "results.json"
    fig = accuracy.record_sweep("ens", tmp_path, ["A", "B"], "one GPU", "A+B", "python -m bench.sweep run g.json",
                                adjust=True, path=results)
    for run in fig["runs"]:
        zs = [np.load(tmp_path / f"{n}_s{run['seed']}.npz") for n in ("A", "B")]
        expected = sweep.scores(zs, adjust=True)
        assert run["balanced_accuracy"] == pytest.approx(expected["balanced_accuracy"], abs=1e-6)
        assert run["tau"] == pytest.approx(expected["tau"], abs=1e-9) and run["seconds"] == 120.0 and len(run["ci"]["accuracy"]) == 2
    assert "(0, 1, 2)" in accuracy.table(accuracy.load(results))
    # one seed of an ensemble: the table gives its bootstrap interval, not a bare number
    one = accuracy.record_sweep("one", tmp_path, ["A", "B"], "w", "t", "c", seeds=[1], path=results)
    ci = one["runs"][0]["ci"]["balanced_accuracy"]
    assert f"95 % bootstrap {ci[0]:.3f}–{ci[1]:.3f}" in accuracy.table({"figures": {"one": one}})
    with pytest.raises(ValueError, match="machine's path"):
        accuracy.record_sweep("x", tmp_path, ["A"], "w", "t", "python -m bench.sweep run --data /work/x", path=results)
    with pytest.raises(ValueError, match="no finished run"):
        accuracy.record_sweep("x", tmp_path, ["Z"], "w", "t", "c", path=results)


@pytest.mark.parametrize("grid", sorted((ROOT / "bench" / "grids").glob("*.json")), ids=lambda p: p.stem)
def test_every_committed_grid_is_a_set_of_valid_training_configurations(grid):
    from skinlab.models import registry
    from skinlab.pipeline import TrainConfig

    configs = json.loads(grid.read_text())
    assert configs
    for name, cfg in configs.items():
        TrainConfig(**cfg)  # an unknown field is a TypeError
        assert cfg.get("model", "lenet") in registry.MODEL_SPECS, name
        assert "data" not in cfg, f"{name}: grids take the data from --data or $HAM10000_DIR"


def test_report_errors_name_the_folder_and_the_runs_there(tmp_path):
    """A reader's mistakes get one clear line, never a traceback or an empty table."""
    with pytest.raises(SystemExit, match="no such sweep folder"):
        sweep.report(tmp_path / "nope")
    with pytest.raises(SystemExit, match="no finished run"):
        sweep.report(tmp_path)
    rng = np.random.default_rng(4)
    _fake_run(tmp_path, "A_s0", _labels(rng, 100), _labels(rng, 80), rng, skew=1.0)
    (tmp_path / "stray.json").write_text("{}")  # a JSON without its arrays is not a run
    assert "| A_s0 |" in sweep.report(tmp_path) and "stray" not in sweep.report(tmp_path)
    with pytest.raises(SystemExit, match="no finished run X in .*finished: A_s0"):
        sweep.report(tmp_path, ensemble=["X"])
    with pytest.raises(SystemExit, match="runs by seed there: A"):
        sweep.report(tmp_path, ensemble_by_seed=["B"])
