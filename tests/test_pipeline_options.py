"""The options that let the book's experiments train through ``pipeline.train`` (the one training
path): another initialisation, a given split, a subset of the training images, no augmentation,
class-balanced sampling; and reading a run back (``load_run``, ``predict_split``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from skinlab import data, engine, metrics, pipeline, presets
from skinlab.distributed import ShardedSampler
from skinlab.pipeline import TrainConfig, load_run, predict_split, prepare_data, train

pytestmark = pytest.mark.usefixtures("one_torch_thread", "private_cache")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("options-sample") / "ham"
    return data.make_synthetic_ham10000(root, n_images=120, seed=0, image_size=(64, 48), progress=False)


def _cfg(sample: Path, out: Path, **kw) -> TrainConfig:
    return TrainConfig(**{**dict(data=str(sample), out=str(out), epochs=2, batch_size=16, device="cpu", progress=False,
                                 figures=False, workers=1), **kw})


def _history(out: Path) -> list:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads((out / "history.json").read_text())]


def test_init_seed_changes_the_model_not_the_split_and_a_given_split_reproduces_a_run(sample, tmp_path):
    a = tmp_path / "a"
    result = train(_cfg(sample, a), log=None)
    b = tmp_path / "b"
    train(_cfg(sample, b, init_seed=5), log=None)
    assert (a / "split.csv").read_text() == (b / "split.csv").read_text()
    assert _history(a) != _history(b)
    # the run's own split.csv given back as a split file: the same run again
    c = tmp_path / "c"
    train(_cfg(sample, c, split_file=str(a / "split.csv")), log=None)
    assert _history(a) == _history(c)
    # predictions.npz holds the test probabilities the metrics were computed from
    with np.load(a / "predictions.npz") as z:
        assert metrics.compute_metrics(z["y_true"], z["y_prob"])["accuracy"] == result["accuracy"]
        assert len(z["test_index"]) == result["n"]
    # ... and load_run + predict_split predict them again
    run = load_run(a)
    y_true, y_prob = predict_split(run, run.prepare_data(), "test")
    with np.load(a / "predictions.npz") as z:
        assert np.array_equal(y_true, z["y_true"]) and np.allclose(y_prob, z["y_prob"], atol=1e-6)


def test_load_run_reads_the_config_json_of_older_versions(sample, tmp_path):
    """A run folder from before the newer options (no crop, colour constancy, TTA, ... keys) and
    with an option that no longer exists loads with those options at their defaults."""
    old = tmp_path / "old"
    train(_cfg(sample, old, epochs=1), log=None)
    record = json.loads((old / "config.json").read_text())
    for key in ("crop", "color_constancy", "tta", "backbone_lr", "train_last_blocks", "sampling", "init_seed",
                "split_file", "train_images", "class_weights", "rotation", "flip"):
        del record[key]
    (old / "config.json").write_text(json.dumps({**record, "retired_option": 1}))
    run = load_run(old)
    assert (run.cfg.crop, run.cfg.color_constancy, run.cfg.tta) == (None, "none", False)
    assert run.preset == presets.EvalPreset(32, record["mean"], record["std"])
    y_true, y_prob = predict_split(run, run.prepare_data(), "test")
    with np.load(old / "predictions.npz") as z:
        assert np.array_equal(y_true, z["y_true"]) and np.allclose(y_prob, z["y_prob"], atol=1e-6)
    del record["mean"]
    (old / "config.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="config.json: no mean"):
        load_run(old)


def test_a_given_split_is_used_as_is_and_checked(sample, tmp_path):
    meta = data.load_metadata(sample)
    split = pd.Series(np.where(np.arange(len(meta)) % 5 == 0, "test", np.where(np.arange(len(meta)) % 5 == 1, "val", "train")))
    path = tmp_path / "split.csv"
    split.to_frame("split").assign(image_id=meta["image_id"]).to_csv(path, index=False)
    prepared = prepare_data(_cfg(sample, tmp_path / "r", split_file=str(path)), log=None)
    assert np.array_equal(prepared.index["test"], np.flatnonzero(split.to_numpy() == "test"))
    split.iloc[:3].to_frame("split").assign(image_id=meta["image_id"].iloc[:3]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="no split for"):
        prepare_data(_cfg(sample, tmp_path / "r", split_file=str(path)), log=None)


def test_train_images_keeps_a_stratified_subset_of_the_training_split(sample, tmp_path):
    full = prepare_data(_cfg(sample, tmp_path / "r"), log=None)
    sub = prepare_data(_cfg(sample, tmp_path / "r", train_images=30), log=None)
    assert set(sub.index["train"]) <= set(full.index["train"]) and 25 <= len(sub.index["train"]) <= 37
    assert np.array_equal(sub.index["test"], full.index["test"])
    assert set(sub.labels("train")) == set(full.labels("train"))  # every class keeps an image


class _Stop(Exception):
    pass


@pytest.mark.parametrize("options, augmenting, balanced", [
    ({}, True, False),
    ({"rotation": 0, "flip": False}, False, False),
    ({"sampling": "balanced", "weighting": "none"}, True, True),
])
def test_augmentation_and_sampling_options_reach_fit(sample, tmp_path, monkeypatch, options, augmenting, balanced):
    seen = {}

    def fake_fit(model, train_loader, val_loader, criterion, *args, train_transform=None, **kw):
        seen.update(loader=train_loader, transform=train_transform, weight=criterion.weight)
        raise _Stop

    monkeypatch.setattr(engine, "fit", fake_fit)
    with pytest.raises(_Stop):
        train(_cfg(sample, tmp_path / "r", **options), log=None)
    assert seen["transform"].train_mode is augmenting
    assert isinstance(seen["loader"].sampler, ShardedSampler) is balanced
    if balanced:
        assert seen["weight"] is None and seen["loader"].sampler.weights is not None


def test_predict_split_feeds_batches_in_the_layout_of_the_run_preset(sample, tmp_path):
    cfg = _cfg(sample, tmp_path / "r")
    prepared = prepare_data(cfg, log=None)
    layouts = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 7, 3)

        def forward(self, x):
            layouts.append(x.is_contiguous(memory_format=torch.channels_last))
            return self.conv(x).mean(dim=(2, 3))

    for channels_last in (False, True):
        model = Probe()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        layouts.clear()
        preset = pipeline.eval_preset(cfg, prepared.mean, prepared.std, channels_last)
        run = pipeline.LoadedRun(tmp_path, cfg, model, torch.device("cpu"), preset)
        y_true, y_prob = predict_split(run, prepared, "val")
        assert len(y_true) == len(prepared.index["val"]) and y_prob.shape == (len(y_true), 7)
        assert layouts and all(layouts) is channels_last


def test_load_run_makes_the_model_and_its_preset_channels_last_together(sample, tmp_path, monkeypatch):
    out = tmp_path / "r"
    train(_cfg(sample, out, epochs=1), log=None)
    for channels_last in (False, True):
        monkeypatch.setattr(pipeline.models, "prefers_channels_last", lambda name, device, cl=channels_last: cl)
        run = load_run(out)
        conv = next(m for m in run.model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) is channels_last
        assert run.preset.channels_last is channels_last


def test_backbone_lr_gives_the_head_lr_and_the_rest_the_smaller_rate():
    from skinlab import models

    model = models.build_model("efficientnet_lite0", num_classes=7, pretrained=False, allow_random_init=True)
    head = {id(p) for p in models.head_module(model).parameters()}
    one = pipeline.param_groups(model, 1e-3)
    assert len(one) == 1 and one[0]["lr"] == 1e-3 and len(one[0]["params"]) == len(list(model.parameters()))
    head_group, backbone_group = pipeline.param_groups(model, 1e-3, backbone_lr=1e-4)
    assert head_group["lr"] == 1e-3 and {id(p) for p in head_group["params"]} == head
    assert backbone_group["lr"] == 1e-4 and not head & {id(p) for p in backbone_group["params"]}
    assert len(head_group["params"]) + len(backbone_group["params"]) == len(list(model.parameters()))
    # Only trainable parameters reach the optimiser: the last 2 blocks, head convolution, head.
    models.train_last_blocks(model, 2)
    groups = pipeline.param_groups(model, 1e-3, backbone_lr=1e-4)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g["params"]} == trainable
    expected = {id(p) for m in (*model._blocks[-2:], model._conv_head, model._bn1, model._fc) for p in m.parameters()}
    assert trainable == expected
    model.train()
    before = [model._blocks[0]._bn1.running_mean.clone(), model._blocks[-1]._bn1.running_mean.clone()]
    model(torch.randn(2, 3, 64, 64))
    # Every BatchNorm keeps its ImageNet statistics, in the trained blocks too; those still learn
    # their scale and shift.
    assert torch.equal(model._blocks[0]._bn1.running_mean, before[0])
    assert torch.equal(model._blocks[-1]._bn1.running_mean, before[1])
    assert model._blocks[-1]._bn1.weight.requires_grad and not model._blocks[0]._bn1.weight.requires_grad
    with pytest.raises(ValueError, match="EfficientNet-Lite"):
        models.train_last_blocks(models.build_model("lenet"), 1)


def test_backbone_lr_and_crop_and_colour_constancy_reach_a_run(sample, tmp_path, monkeypatch):
    seen = {}
    real_fit = engine.fit

    def spy(model, train_loader, val_loader, criterion, optimizer, *args, **kw):
        seen["lrs"] = [g["lr"] for g in optimizer.param_groups]
        x, _ = next(iter(train_loader))
        seen["train_shape"] = tuple(kw["train_transform"](x, torch.Generator().manual_seed(0)).shape)
        seen["eval_shape"] = tuple(kw["eval_transform"](x).shape)
        return real_fit(model, train_loader, val_loader, criterion, optimizer, *args, **kw)

    monkeypatch.setattr(engine, "fit", spy)
    out = tmp_path / "crop"
    head_lr = TrainConfig().lr  # the default rate, not given: the head trains at it
    backbone_lr = head_lr / 30
    result = train(_cfg(sample, out, image_size=40, crop=32, color_constancy="shades_of_gray",
                        backbone_lr=backbone_lr), log=None)
    assert seen["train_shape"][-2:] == (32, 32) and seen["eval_shape"][-2:] == (32, 32)
    assert sorted(seen["lrs"]) == [backbone_lr, head_lr]
    assert result["n"] > 0
    run = load_run(out)
    assert run.cfg.crop == 32 and run.cfg.color_constancy == "shades_of_gray"
    record = json.loads((out / "config.json").read_text())
    assert run.preset == presets.EvalPreset(40, record["mean"], record["std"], crop=32, color_constancy="shades_of_gray")
    data = run.prepare_data()
    y, p = predict_split(run, data, "test")
    with np.load(out / "predictions.npz") as z:  # the run's own test predictions, again
        assert np.array_equal(y, z["y_true"]) and np.allclose(p, z["y_prob"], atol=1e-6)
    # data prepared for another configuration is refused, not silently evaluated
    with pytest.raises(ValueError, match="colour constancy 'shades_of_gray'.*'none'"):
        predict_split(run, prepare_data(_cfg(sample, tmp_path / "y", image_size=40), log=None), "test")
    with pytest.raises(ValueError, match="evaluates 40 px images"):
        predict_split(run, prepare_data(_cfg(sample, tmp_path / "y", color_constancy="shades_of_gray"), log=None),
                      "test")
    with pytest.raises(ValueError, match="color_constancy"):
        prepare_data(_cfg(sample, tmp_path / "x", color_constancy="retinex"), log=None)


def test_explicit_class_weights_reach_the_loss_in_label_order_and_survive_load_run(sample, tmp_path, monkeypatch):
    # Chapter 4 trains with a weight list written in value_counts() order: the loss must get the
    # list exactly as given (entry k = label k), not the median-frequency weights.
    given = (0.5, 1.0, 1.25, 4.0, 1.0, 0.125, 8.0)
    seen = {}
    real_fit = engine.fit

    def spy(model, train_loader, val_loader, criterion, *args, **kw):
        seen["weight"] = criterion.weight.detach().cpu().clone()
        return real_fit(model, train_loader, val_loader, criterion, *args, **kw)

    monkeypatch.setattr(engine, "fit", spy)
    out = tmp_path / "given"
    train(_cfg(sample, out, class_weights=list(given)), log=None)
    assert torch.equal(seen["weight"], torch.tensor(given))
    assert json.loads((out / "config.json").read_text())["class_weights"] == list(given)
    assert load_run(out).cfg.class_weights == given


@pytest.mark.parametrize("bad, message", [
    ((1, 2, 3), "got 3 numbers, expected 7"),
    ((1, 1, 1, 1, 1, 1, 0), "vasc=0 is not a positive"),
    ((1, 1, 1, float("nan"), 1, 1, 1), "df=nan is not a positive"),
    ((1, 1, "x", 1, 1, 1, 1), "'x' is not a number"),
])
def test_bad_class_weights_fail_before_any_data_is_read(tmp_path, bad, message):
    missing = tmp_path / "no-such-dataset"  # the weights are checked first, so this is never looked at
    with pytest.raises(ValueError, match=message):
        train(TrainConfig(data=str(missing), out=str(tmp_path / "r"), class_weights=bad, device="cpu",
                          progress=False), log=None)
    assert not (tmp_path / "r").exists()
