"""A whole training run, from dataset folder to run folder: what ``skinlab train`` does.

Kept apart from the engine (which knows nothing about files or HAM10000) and from the CLI
(which only parses flags), like torchvision's ``references/classification``. It is the only
training path: the CLI, the book's chapters (``skinlab.course.runcache``) and the benchmarks all
train through :func:`train`, and read a run back with :func:`load_run` (a :class:`LoadedRun`: its
model, configuration and evaluation preset) and :func:`predict_split`. The options of a run are
declared once, in :mod:`skinlab.config` (``TrainConfig``, re-exported here).

Run folder::

    config.json  split.csv  history.json  best.pt  last.pt  metrics.json  predictions.npz  figures/*.png
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skinlab import balance, distributed, engine, metrics, models, presets
from skinlab.atomic import atomic_write, write_json
from skinlab.config import (  # noqa: F401  (re-exported: skinlab.pipeline.TrainConfig, ...)
    COLOR_CONSTANCY,
    SAMPLINGS,
    WEIGHTINGS,
    TrainConfig,
    check_class_weights,
)
from skinlab.data import CLASSES, DataSource, load_metadata, resolve_data_dir
from skinlab.data.cache import TensorBatchLoader, load_resized
from skinlab.split import SPLITS, assert_no_leak, load_split, split_by_lesion, stratified_subset


def _class_weights(kind: str, train_labels, explicit=None) -> torch.Tensor | None:
    if explicit is not None:
        return torch.tensor(check_class_weights(explicit), dtype=torch.float32)
    if kind not in WEIGHTINGS:
        raise ValueError(f"--weighting {kind!r}: expected one of {', '.join(WEIGHTINGS)}")
    if kind == "none":
        return None
    w = balance.median_frequency_weights(train_labels, len(CLASSES))
    return w.sqrt() if kind == "sqrt" else w


@dataclass
class PreparedData:
    source: DataSource
    metadata: "object"
    split: "object"
    images: torch.Tensor
    index: dict
    mean: tuple
    std: tuple
    color_constancy: str = "none"  # what ``images`` went through after decoding (presets.color_constancy)

    def labels(self, name: str) -> np.ndarray:
        return self.metadata["label"].to_numpy()[self.index[name]]

    def loader(self, name: str, batch_size: int, shuffle: bool = False, generator=None, sampler=None):
        # ``indices`` rather than ``images[idx]``: batches are gathered from the (memory-mapped)
        # cache, so a split is never copied whole into memory.
        return TensorBatchLoader(self.images, self.labels(name), batch_size=batch_size, shuffle=shuffle,
                                 generator=generator, sampler=sampler, indices=self.index[name])


def prepare_data(cfg: TrainConfig, log=print) -> PreparedData:
    """Dataset → validated metadata → split → cached resized images → statistics.

    The split is the lesion-level one (``cfg.seed``, ``cfg.fractions``) unless ``cfg.split_file``
    gives one; ``cfg.train_images`` keeps a class-stratified subset of the training part. Models
    trained from scratch are normalised by the statistics of the training images.
    """
    main = distributed.is_main()
    # Under torchrun, rank 0 makes the synthetic sample / image cache; the others then read it.
    with distributed.main_first():
        source = resolve_data_dir(cfg.data, n_synthetic=cfg.n_synthetic, progress=cfg.progress and main)
        if log:
            log(f"data: {source.description}")
        metadata = load_metadata(source.root)
        size = cfg.resolved_image_size()
        images = load_resized(metadata["path"].tolist(), size, workers=cfg.workers, progress=cfg.progress and main)
    images = presets.color_constancy(images, cfg.color_constancy)
    presets.check_crop(cfg.crop, size)
    if cfg.split_file:  # given on purpose (the book's leakage experiment uses a leaky one): not checked
        split = load_split(cfg.split_file, metadata)
    else:
        split = split_by_lesion(metadata, cfg.fractions, seed=cfg.seed)
        assert_no_leak(metadata, split)
    index = {name: np.flatnonzero(split.to_numpy() == name) for name in SPLITS}
    if cfg.train_images:
        labels = metadata["label"].to_numpy()[index["train"]]
        index["train"] = index["train"][stratified_subset(labels, cfg.train_images, cfg.seed)]
    stats = models.input_stats(cfg.model)
    if stats is None:  # LeNet from scratch: normalise by the training split's own statistics
        stats = presets.measure_mean_std(images[index["train"]])
    return PreparedData(source, metadata, split, images, index, *stats, color_constancy=cfg.color_constancy)


def train(cfg: TrainConfig, log=print) -> dict:
    """Run one training as configured; returns the test metrics (also in ``metrics.json``)."""
    t_start = time.perf_counter()
    # Under torchrun (WORLD_SIZE > 1): join the process group; otherwise nothing happens.
    dist_info, device_pref = distributed.init(cfg.device)
    try:
        result = _train(cfg, log, t_start, dist_info, device_pref)
        distributed.barrier()  # the others wait while rank 0 tests and writes
        return result
    finally:
        if dist_info.distributed:
            distributed.cleanup()


def _train(cfg: TrainConfig, log, t_start: float, dist_info, device_pref) -> dict:
    main = dist_info.is_main
    log = log if main else None  # only rank 0 talks and writes
    if cfg.class_weights is not None:  # a user mistake fails before any data is read
        cfg.class_weights = check_class_weights(cfg.class_weights)
    train_seed = cfg.seed if cfg.init_seed is None else cfg.init_seed
    engine.seed_everything(train_seed)
    device = engine.select_device(device_pref)
    out = Path(cfg.out)
    if out.exists() and (out / "metrics.json").exists() and not cfg.resume:
        raise FileExistsError(
            f"{out}: a finished run is already here; choose another --out or pass --resume"
        )
    data = prepare_data(cfg, log)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json({**asdict(cfg), "image_size": cfg.resolved_image_size(), "mean": data.mean, "std": data.std,
                     "device": str(device), "world_size": dist_info.world_size,
                     "synthetic": data.source.synthetic}, out / "config.json")
        data.split.to_frame().assign(image_id=data.metadata["image_id"]).to_csv(out / "split.csv", index=False)

    train_labels = data.labels("train")
    weights = _class_weights(cfg.weighting, train_labels, cfg.class_weights)
    weights = weights.to(device) if weights is not None else None
    if dist_info.distributed:
        # Same value as CrossEntropyLoss on the global batch, whatever the class weights.
        criterion = distributed.GlobalMeanLoss(weights, label_smoothing=cfg.label_smoothing)
    else:
        criterion = nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.label_smoothing)
    model = models.build_model(cfg.model, num_classes=len(CLASSES), pretrained=cfg.pretrained,
                               allow_random_init=cfg.allow_random_init, freeze_backbone=cfg.freeze_backbone)
    if cfg.train_last_blocks is not None and not cfg.freeze_backbone:
        models.train_last_blocks(model, cfg.train_last_blocks)
    channels_last = models.prefers_channels_last(cfg.model, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = engine.make_optimizer(param_groups(model, cfg.lr, cfg.backbone_lr), cfg.lr, cfg.weight_decay)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
                 if cfg.scheduler == "cosine" else None)
    val_loader = data.loader("val", 256)
    preset = eval_preset(cfg, data.mean, data.std, channels_last)
    plain = preset.batch_transform()
    if cfg.sampling not in SAMPLINGS:
        raise ValueError(f"sampling {cfg.sampling!r}: expected one of {', '.join(SAMPLINGS)}")
    sample_weights = None
    if cfg.sampling == "balanced":
        sample_weights = 1.0 / balance.class_counts(train_labels, len(CLASSES))[train_labels]
    rank, world = (dist_info.rank, dist_info.world_size) if dist_info.distributed else (0, 1)
    if cfg.batch_size % world:
        raise ValueError(f"--batch-size {cfg.batch_size} is the global batch: it must be divisible by "
                         f"the {world} processes")
    on_epoch_start = None
    if dist_info.distributed or sample_weights is not None:
        sampler = distributed.ShardedSampler(len(train_labels), rank, world, shuffle=True, seed=train_seed,
                                             weights=sample_weights)
        train_loader = data.loader("train", cfg.batch_size // world, sampler=sampler)
        on_epoch_start = sampler.set_epoch
    else:
        train_loader = data.loader("train", cfg.batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(train_seed))
    if cfg.rotation or cfg.flip:
        augment = presets.BatchAugment(data.mean, data.std, train=True, degrees=cfg.rotation, flip=cfg.flip,
                                       shard=(rank, world), channels_last=channels_last, crop=cfg.crop)
    else:  # no augmentation at all: the training batches are prepared like the validation ones
        augment = plain
    if dist_info.distributed:
        model = distributed.wrap_model(model.to(device), device)

    history = engine.fit(model, train_loader, val_loader, criterion, optimizer, cfg.epochs, device,
                         scheduler=scheduler, out_dir=out, resume=cfg.resume, seed=train_seed,
                         train_transform=augment, eval_transform=plain, progress=cfg.progress, log=log,
                         is_main=main, on_epoch_start=on_epoch_start)
    if not main:
        return {}

    model = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    best = engine.load_checkpoint(out / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    # The test predictions go through the same object as a later `skinlab evaluate` of the run.
    y_true, y_prob = predict_split(LoadedRun(out, cfg, model, device, preset), data, "test")
    result = {"split": "test", **metrics.compute_metrics(y_true, y_prob)}
    result.update({
        "model": cfg.model,
        "best_epoch": best["best"]["epoch"],
        "epochs": cfg.epochs,
        "train_images": int(len(data.index["train"])),
        "seconds": round(time.perf_counter() - t_start, 1),
        "data": str(data.source.root),
        "synthetic": data.source.synthetic,
        "world_size": dist_info.world_size,
        "majority_baseline": metrics.majority_baseline(train_labels, data.labels("test")),
    })
    with atomic_write(out / "predictions.npz") as fh:  # the test probabilities, for ensembles and figures
        np.savez(fh, y_true=y_true, y_prob=y_prob, test_index=data.index["test"])
    if cfg.figures:
        _figures(out, history, result)
    write_json(result, out / "metrics.json")
    if log:
        log(summary_line(result))
    return result


def param_groups(model: nn.Module, lr: float, backbone_lr: float | None = None) -> list[dict]:
    """The optimiser's parameter groups: the head at ``lr``, every other trainable parameter at
    ``backbone_lr`` (one group at ``lr`` when it is None). Frozen parameters are left out."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if backbone_lr is None:
        return [{"params": trainable, "lr": lr}]
    head_ids = {id(p) for p in models.head_module(model).parameters()}
    head = [p for p in trainable if id(p) in head_ids]
    backbone = [p for p in trainable if id(p) not in head_ids]
    return [g for g in ({"params": head, "lr": lr}, {"params": backbone, "lr": backbone_lr}) if g["params"]]


def eval_preset(cfg: TrainConfig, mean, std, channels_last: bool = False) -> presets.EvalPreset:
    """The evaluation preset of a run of ``cfg`` normalised by ``mean``/``std``: the one place that
    says which of a run's options decide how it is evaluated (``channels_last``: the model is)."""
    return presets.EvalPreset(image_size=cfg.resolved_image_size(), mean=mean, std=std, crop=cfg.crop,
                              color_constancy=cfg.color_constancy, tta=cfg.tta, channels_last=channels_last)


@dataclass
class LoadedRun:
    """A trained model with what it takes to evaluate it: its run ``folder``, ``cfg``, the model
    (eval mode, on ``device``) and the run's evaluation ``preset`` (:class:`skinlab.presets.EvalPreset`)."""

    folder: Path
    cfg: TrainConfig
    model: nn.Module
    device: torch.device
    preset: presets.EvalPreset

    def prepare_data(self) -> PreparedData:
        """The run's split and cached images (:func:`prepare_data` of its configuration)."""
        return prepare_data(self.cfg, log=None)


def predict_split(run: LoadedRun, data: PreparedData, name: str, tta: bool | None = None,
                  batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_prob)`` of ``run``'s model on split ``name`` of ``data``, each batch prepared by
    the run's evaluation preset; ``tta``: average with flipped images (None: as the run was
    trained, ``--tta``)."""
    preset = run.preset
    size = int(data.images.shape[-1])
    if size != preset.image_size or data.color_constancy != preset.color_constancy:
        raise ValueError(f"{run.folder}: the run evaluates {preset.image_size} px images with colour constancy "
                         f"{preset.color_constancy!r}; the data given holds {size} px images with "
                         f"{data.color_constancy!r} (prepare it from the run's configuration)")
    transform = preset.batch_transform().to(run.device)
    tta = preset.tta if tta is None else tta
    return engine.predict(run.model, data.loader(name, batch_size), run.device, batch_transform=transform,
                          tta_flip=tta)


def evaluate_split(run: LoadedRun, data: PreparedData, name: str, tta: bool | None = None,
                   batch_size: int = 256) -> dict:
    """The metrics of :func:`predict_split`, with the split's name and whether TTA was used."""
    tta = run.preset.tta if tta is None else tta
    y_true, y_prob = predict_split(run, data, name, tta=tta, batch_size=batch_size)
    return {"split": name, "tta": tta, **metrics.compute_metrics(y_true, y_prob)}


def summary_line(result: dict) -> str:
    base = result.get("majority_baseline", {})
    tag = " [synthetic sample, not HAM10000]" if result.get("synthetic") else ""
    return (
        f"{result.get('split', 'test')} (n={result['n']}): accuracy {result['accuracy']:.3f}, "
        f"balanced accuracy {result['balanced_accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}"
        + (f"; majority baseline accuracy {base['accuracy']:.3f}, balanced {base['balanced_accuracy']:.3f}" if base else "")
        + tag
    )


def _figures(out: Path, history, result) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from skinlab import plots
    except ImportError:  # plots are a convenience; the numbers are in metrics.json
        return
    figs = out / "figures"
    plots.save_figure(plots.training_curves(history), figs / "curves.png")
    plots.save_figure(plots.confusion_matrices(np.asarray(result["confusion_matrix"])), figs / "confusion.png")


def load_run(run_dir: str | os.PathLike, data: str | None = None, device="auto") -> LoadedRun:
    """A finished run read back (:class:`LoadedRun`): its best weights in eval mode on ``device``
    (channels-last where training would use it), its ``TrainConfig`` (``data`` replaces the dataset
    folder) and its evaluation preset, from the image size and normalisation its ``config.json``
    records. ``run.prepare_data()`` then gives the run's split and cached images."""
    run = Path(run_dir)
    cfg_file = run / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{run}: not a run folder (no config.json); train one with `skinlab train`")
    record = json.loads(cfg_file.read_text())
    # Every config.json holds the resolved image size and the normalisation (since the first
    # version); keys of options that no longer exist are ignored, new options take their defaults.
    missing = [key for key in ("image_size", "mean", "std") if key not in record]
    if missing:
        raise ValueError(f"{cfg_file}: no {', '.join(missing)}; not a config.json written by `skinlab train`")
    cfg = TrainConfig(**{k: v for k, v in record.items() if k in TrainConfig.__dataclass_fields__})
    if data is not None:
        cfg.data = data
    cfg.progress = False
    device = engine.select_device(device)
    model = models.build_model(cfg.model, num_classes=len(CLASSES), pretrained=False, allow_random_init=True)
    model.load_state_dict(engine.load_checkpoint(run / "best.pt", map_location=device)["model"])
    channels_last = models.prefers_channels_last(cfg.model, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.to(device).eval()
    return LoadedRun(run, cfg, model, device, eval_preset(cfg, record["mean"], record["std"], channels_last))
