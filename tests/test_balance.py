"""Median-frequency weights against hand computation and the real HAM10000 counts."""

import numpy as np
import pytest
import torch

from skinlab.balance import class_counts, median_frequency_weights
from skinlab.data import CLASSES

REAL_COUNTS = {"akiec": 327, "bcc": 514, "bkl": 1099, "df": 115, "mel": 1113, "nv": 6705, "vasc": 142}


def test_hand_computed_weights_on_real_counts():
    labels = np.concatenate([np.full(REAL_COUNTS[c], i) for i, c in enumerate(CLASSES)])
    w = median_frequency_weights(labels, 7)
    assert w.dtype == torch.float32 and w.shape == (7,)
    # median count is bcc's 514 → w_c = 514 / count_c; by hand: nv 514/6705, df 514/115.
    assert w[CLASSES.index("nv")].item() == pytest.approx(0.0767, abs=1e-4)
    assert w[CLASSES.index("df")].item() == pytest.approx(4.4696, abs=1e-4)
    assert w[CLASSES.index("bcc")].item() == pytest.approx(1.0)
    expected = [514 / REAL_COUNTS[c] for c in CLASSES]
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)


def test_even_number_of_classes_uses_numpy_median():
    labels = [0] * 1 + [1] * 2 + [2] * 4 + [3] * 8
    f = np.array([1, 2, 4, 8]) / 15
    np.testing.assert_allclose(median_frequency_weights(labels, 4).numpy(), np.median(f) / f, rtol=1e-6)


def test_accepts_tensors_lists_and_arrays_alike():
    y = [0, 1, 1, 2, 2, 2]
    a = median_frequency_weights(y, 3)
    assert torch.equal(a, median_frequency_weights(torch.tensor(y), 3))
    assert torch.equal(a, median_frequency_weights(np.array(y), 3))


def test_empty_class_raises_naming_it():
    with pytest.raises(ValueError, match="3 \\(df\\)"):
        median_frequency_weights([0, 1, 2, 4, 5, 6], 7)
    with pytest.raises(ValueError, match="class 2"):
        median_frequency_weights([0, 1], 3)


def test_out_of_range_label():
    with pytest.raises(ValueError, match="label 7 is outside"):
        class_counts([0, 7], 7)


@pytest.mark.realdata
def test_real_full_dataset_weights(real_metadata):
    w = median_frequency_weights(real_metadata["label"].to_numpy(), 7)
    assert w[CLASSES.index("nv")].item() == pytest.approx(0.0767, abs=1e-4)
    assert w[CLASSES.index("df")].item() == pytest.approx(4.4696, abs=1e-4)
