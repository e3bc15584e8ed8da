"""bench.split_effect: a run's accuracy reweighted to the greedy split's test make-up."""

import json

import numpy as np
import pytest

from bench import split_effect


@pytest.mark.realdata
def test_a_model_right_only_on_follow_up_nevi_scores_their_share_of_each_test_part(real_metadata, tmp_path):
    """Oracle by hand: a model right exactly on the follow_up-confirmed images scores, on any test
    part, that part's share of follow_up images; reweighted to the greedy part, the greedy share."""
    import os

    from skinlab.data import CLASSES
    from skinlab.split import split_by_lesion, split_by_lesion_greedy

    m = real_metadata
    test = m[split_by_lesion(m, seed=0) == "test"]
    y = test["dx"].map(CLASSES.index).to_numpy()
    right = (test["dx_type"] == "follow_up").to_numpy()
    prob = np.eye(7)[np.where(right, y, (y + 1) % 7)]
    run = tmp_path / "run"
    run.mkdir()
    np.savez(run / "predictions.npz", y_true=y, y_prob=prob, test_index=test.index.to_numpy())
    (run / "config.json").write_text(json.dumps({"seed": 0}))
    got = split_effect.effect(run, os.environ["HAM10000_DIR"])
    greedy = m[split_by_lesion_greedy(m, seed=0) == "test"]
    assert got["accuracy"] == pytest.approx(right.mean())
    assert got["accuracy reweighted to the greedy test part"] == pytest.approx((greedy["dx_type"] == "follow_up").mean())
    assert got["greedy test images covered"] == 1.0
    assert got["follow_up share of the test part"]["greedy"] > got["follow_up share of the test part"]["this split"] + 0.1


def test_a_folder_without_predictions_is_a_clear_error(tmp_path, capsys):
    assert split_effect.main([str(tmp_path), "--data", str(tmp_path)]) == 2
    assert "no predictions.npz" in capsys.readouterr().err
