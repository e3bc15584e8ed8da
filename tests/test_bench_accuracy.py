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


def test_committed_results_name_no_machine_path():
    text = accuracy.RESULTS.read_text()
    for prefix in ("/work/", "/root/", "/home/"):
        assert prefix not in text
    table = accuracy.table(accuracy.load())
    assert "single run" in table
