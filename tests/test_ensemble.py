"""skinlab.ensemble: the one ensemble path (chapter 12, bench.sweep, bench.accuracy)."""

import numpy as np
import pytest

from skinlab.ensemble import EnsembleError, mean_probabilities, split_image_ids


def _probs(n, seed):
    p = np.random.default_rng(seed).random((n, 7))
    return p / p.sum(1, keepdims=True)


def test_mean_probabilities_is_the_elementwise_mean_of_members_on_the_same_images():
    members = [_probs(20, s) for s in range(3)]
    ids = np.array([f"ISIC_{i}" for i in range(20)])
    labels = np.arange(20) % 7
    mean = mean_probabilities(members, image_ids=[ids] * 3, labels=[labels] * 3)
    np.testing.assert_allclose(mean, (members[0] + members[1] + members[2]) / 3, rtol=0, atol=1e-15)
    np.testing.assert_allclose(mean.sum(1), 1, atol=1e-12)
    np.testing.assert_array_equal(mean_probabilities(members[:1]), members[0])  # one run scores itself


def test_members_with_other_images_are_refused_even_with_the_same_labels():
    members = [_probs(20, s) for s in range(2)]
    ids = np.array([f"ISIC_{i}" for i in range(20)])
    labels = np.zeros(20, dtype=int)  # another split can have the very same label vector
    with pytest.raises(EnsembleError, match="share their split.*image ids of b differ from a's"):
        mean_probabilities(members, image_ids=[ids, ids[::-1]], labels=[labels, labels], names=["a", "b"])
    with pytest.raises(EnsembleError, match="labels of member 2 differ"):
        mean_probabilities(members, labels=[labels, labels + 1])
    with pytest.raises(EnsembleError, match="shape"):
        mean_probabilities([members[0], members[1][:10]])
    with pytest.raises(EnsembleError, match="at least one member"):
        mean_probabilities([])
    assert issubclass(EnsembleError, ValueError)  # callers that catch ValueError give one line


def test_split_image_ids_are_the_order_of_the_runs_predictions(tmp_path, synth_dir):
    """``split.csv`` gives the ids of the test images in the order of ``predictions.npz``."""
    from skinlab.data import load_metadata
    from skinlab.pipeline import TrainConfig, train

    run = tmp_path / "run"
    train(TrainConfig(data=str(synth_dir), out=str(run), epochs=1, device="cpu", progress=False, figures=False),
          log=None)
    with np.load(run / "predictions.npz") as z:
        expected = load_metadata(synth_dir)["image_id"].to_numpy()[z["test_index"]]
    np.testing.assert_array_equal(split_image_ids(run), expected)
    assert len(split_image_ids(run, "val")) > 0 and not set(split_image_ids(run, "val")) & set(expected)
    with pytest.raises(EnsembleError, match="no image in split 'nope'"):
        split_image_ids(run, "nope")
    with pytest.raises(EnsembleError, match="no split.csv"):
        split_image_ids(tmp_path)
