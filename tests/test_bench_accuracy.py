"""bench.accuracy: the README's table of mean and range over seeds, from recorded runs."""

import json

import pytest

from bench import accuracy


def _run(folder, seed, acc, bal, val_bal):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seed": seed, "init_seed": None}))
    (folder / "metrics.json").write_text(json.dumps({"accuracy": acc, "balanced_accuracy": bal, "best_epoch": 2,
                                                     "seconds": 90.0, "n": 2004}))
    (folder / "history.json").write_text(json.dumps([{"epoch": 1, "val_acc": 0.1, "val_balanced_acc": 0.1},
                                                     {"epoch": 2, "val_acc": 0.7, "val_balanced_acc": val_bal}]))
    return folder


def test_record_and_table_give_mean_and_range_over_seeds(tmp_path):
    results = tmp_path / "results.json"
    runs = [_run(tmp_path / f"s{s}", s, acc, bal, v)
            for s, acc, bal, v in ((0, 0.70, 0.50, 0.52), (1, 0.74, 0.56, 0.54), (2, 0.72, 0.53, 0.53))]
    accuracy.record("lenet-defaults", runs, where="2 CPU cores", path=results)
    fig = accuracy.load(results)["figures"]["lenet-defaults"]
    assert [r["seed"] for r in fig["runs"]] == [0, 1, 2] and fig["runs"][1]["val_balanced_accuracy"] == 0.54
    s = accuracy.summary(fig)
    assert s["accuracy"] == pytest.approx({"mean": 0.72, "min": 0.70, "max": 0.74, "n": 3})
    md = accuracy.table(accuracy.load(results), markdown=True)
    assert "0.720 (0.700–0.740)" in md and "0.530 (0.500–0.560)" in md and "$HAM10000_DIR" in md
    assert "--seed S" in md
    with pytest.raises(ValueError, match="HAM10000_DIR"):
        accuracy.record("x", runs[:1], where="here", title="x", command="skinlab train --data /work/x", path=results)


def test_a_figure_never_pools_two_splits(tmp_path):
    """Runs on the new split replace the figure; the greedy split's runs keep their own entry,
    seed by seed, and the table says which split each figure was measured on."""
    results = tmp_path / "results.json"
    old = [_run(tmp_path / f"old{s}", s, 0.75, 0.52, 0.5) for s in (0, 1, 2)]
    accuracy.record("lenet-defaults", old, where="then", path=results, split="greedy")
    new = [_run(tmp_path / f"new{s}", s, 0.60, 0.50, 0.5) for s in (0, 1)]
    accuracy.record("lenet-defaults", new, where="now", path=results)
    figs = accuracy.load(results)["figures"]
    assert [(r["seed"], r["split"], r["accuracy"]) for r in figs["lenet-defaults"]["runs"]] == [
        (0, accuracy.SPLIT, 0.6), (1, accuracy.SPLIT, 0.6)]
    kept = figs["lenet-defaults@greedy"]
    assert [(r["seed"], r["accuracy"]) for r in kept["runs"]] == [(0, 0.75), (1, 0.75), (2, 0.75)]
    assert kept["title"].endswith("(on the greedy split)")
    text = accuracy.table(accuracy.load(results))
    assert "on the stratified-group-kfold split" in text and "on the greedy split" in text
    assert accuracy.split_of({"seed": 0}) == "greedy"  # recorded before the field existed
    with pytest.raises(ValueError, match="unknown split"):
        accuracy.record("lenet-defaults", new, where="now", path=results, split="random")


def test_every_committed_run_names_its_split():
    for key, fig in accuracy.load()["figures"].items():
        assert {r.get("split") for r in fig["runs"]} <= set(accuracy.SPLITS), key
        assert len({r["split"] for r in fig["runs"]}) == 1, f"{key} pools two splits"


def test_committed_results_name_no_machine_path():
    text = accuracy.RESULTS.read_text()
    for prefix in ("/work/", "/root/", "/home/"):
        assert prefix not in text
    table = accuracy.table(accuracy.load())
    assert "single run" in table


def test_curve_is_validation_balanced_accuracy_against_cumulative_minutes(tmp_path):
    run = _run(tmp_path / "c0", 0, 0.8, 0.6, 0.58)
    history = [{"epoch": 1, "val_acc": 0.5, "val_balanced_acc": 0.31, "seconds": 90.0},
               {"epoch": 2, "val_acc": 0.7, "val_balanced_acc": 0.58, "seconds": 150.0}]
    (run / "history.json").write_text(json.dumps(history))
    results = tmp_path / "results.json"
    accuracy.record("x", [run, _run(tmp_path / "c1", 1, 0.7, 0.5, 0.5)], where="here", title="Lite-x",
                    command="skinlab train --seed {seed}", path=results)
    found = accuracy.curves(accuracy.load(results))
    # the run without per-epoch seconds has no curve and is left out, not drawn as a flat line
    assert list(found) == ["Lite-x"] and [r["seed"] for r in found["Lite-x"]] == [0]
    assert found["Lite-x"][0]["curve"] == [[1.5, 0.31], [4.0, 0.58]]
    text = accuracy.curve_text(found)
    assert "1.5 min 0.310, 4.0 min 0.580; test 0.600 after 1.5 min" in text
    png = tmp_path / "curve.png"
    assert accuracy.main(["--results", str(results), "curve", "--png", str(png)]) == 0 and png.stat().st_size > 0
    with pytest.raises(ValueError, match="no recorded figure nope"):
        accuracy.curves(accuracy.load(results), ["nope"])
    empty = tmp_path / "empty.json"
    accuracy.record("y", [_run(tmp_path / "c2", 2, 0.7, 0.5, 0.5)], where="here", title="y",
                    command="skinlab train", path=empty)
    assert accuracy.main(["--results", str(empty), "curve"]) == 1  # no success on an empty result


def test_every_spread_in_the_readme_results_table_is_a_recorded_figure():
    """The README's results table is copied from `python -m bench.accuracy --markdown`: each
    "mean (min–max)" there, or an ensemble's "value (bootstrap interval)", is a recorded figure."""
    import re

    readme = (accuracy.RESULTS.parents[1] / "README.md").read_text()
    section = readme[readme.index("## Results"):]
    section = section[:section.index("\n## ", 1)]
    cells = re.findall(r"(\d\.\d{3}) \((\d\.\d{3})–(\d\.\d{3})\)", section)
    assert len(cells) >= 20
    recorded = accuracy.table(accuracy.load(), markdown=True)
    for value, low, high in cells:
        assert (f"{value} ({low}–{high})" in recorded
                or f"{value} (one seed; 95 % bootstrap {low}–{high})" in recorded), (value, low, high)


def test_cli_mistakes_get_a_one_line_error_and_exit_2(tmp_path, capsys):
    results = tmp_path / "results.json"
    assert accuracy.main(["--results", str(results)]) == 2
    assert "no recorded figures" in capsys.readouterr().err
    accuracy.record("x", [_run(tmp_path / "r0", 0, 0.8, 0.6, 0.58)], where="here", title="x",
                    command="skinlab train --seed {seed}", path=results)
    assert accuracy.main(["--results", str(results), "curve", "nope"]) == 2
    assert "no recorded figure nope; recorded: x" in capsys.readouterr().err
    assert accuracy.main(["--results", str(results), "record", "x", str(tmp_path / "missing"), "--where", "w"]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    assert accuracy.main(["--results", str(results), "record", "new", str(tmp_path / "r0"), "--where", "w"]) == 2
    assert "give its --run-command" in capsys.readouterr().err
