"""The same seed gives the same split and, on CPU, the same training run and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from skinlab import data, engine
from skinlab.pipeline import TrainConfig, train
from skinlab.split import split_by_lesion


pytestmark = pytest.mark.usefixtures("one_torch_thread", "private_cache")

@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("determinism-sample") / "ham"
    return data.make_synthetic_ham10000(root, n_images=80, seed=0, image_size=(64, 48), progress=False)


def _run(sample: Path, out: Path, seed: int, epochs: int = 3) -> dict:
    cfg = TrainConfig(data=str(sample), out=str(out), epochs=epochs, seed=seed, batch_size=8, device="cpu",
                      progress=False, figures=False, workers=1)
    train(cfg, log=None)
    return {name: json.loads((out / name).read_text()) for name in ("history.json", "metrics.json")} | {
        "split": (out / "split.csv").read_text(),
        "weights": engine.load_checkpoint(out / "last.pt")["model"],
    }


def _without_timing(obj):
    if isinstance(obj, list):
        return [_without_timing(o) for o in obj]
    return {k: v for k, v in obj.items() if k != "seconds"}


def test_same_seed_same_run_different_seed_different_split(sample, tmp_path):
    a = _run(sample, tmp_path / "a", seed=0)
    b = _run(sample, tmp_path / "b", seed=0)
    assert a["split"] == b["split"]
    assert _without_timing(a["history.json"]) == _without_timing(b["history.json"])
    assert _without_timing(a["metrics.json"]) == _without_timing(b["metrics.json"])
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    # the runs did learn something, so equality is not trivial
    assert a["history.json"][0]["train_loss"] != a["history.json"][-1]["train_loss"]

    c = _run(sample, tmp_path / "c", seed=1, epochs=1)
    assert c["split"] != a["split"]


def test_split_depends_only_on_the_seed(sample):
    md = data.load_metadata(sample)
    s0 = split_by_lesion(md, seed=0)
    assert s0.equals(split_by_lesion(md, seed=0))
    assert s0.equals(split_by_lesion(md.sample(frac=1.0, random_state=3), seed=0).reindex(md.index))
    assert not s0.equals(split_by_lesion(md, seed=1))
