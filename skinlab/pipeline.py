"""A whole training run, from dataset folder to run folder: what ``skinlab train`` does.

Kept apart from the engine (which knows nothing about files or HAM10000) and from the CLI
(which only parses flags), like torchvision's ``references/classification``. It is the only
training path: the CLI, the book's chapters (``skinlab.course.profile``) and the benchmarks all
train through :func:`train`, and read a run back with :func:`load_run` and :func:`predict_split`.

Run folder::

    config.json  split.csv  history.json  best.pt  last.pt  metrics.json  predictions.npz  figures/*.png
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skinlab import balance, distributed, engine, metrics, models, presets
from skinlab.atomic import atomic_write, write_json
from skinlab.data import CLASSES, SYNTHETIC_SAMPLE_SIZE, DataSource, load_metadata, resolve_data_dir
from skinlab.data.cache import TensorBatchLoader, load_resized
from skinlab.split import DEFAULT_FRACTIONS, SPLITS, assert_no_leak, load_split, split_by_lesion, stratified_subset

WEIGHTINGS = ("median", "sqrt", "none")
COLOR_CONSTANCY = ("none", "shades_of_gray")
SAMPLINGS = ("shuffle", "balanced")


@dataclass
class TrainConfig:
    """Every hyper-parameter of a run; each one is a ``skinlab train`` flag."""

    data: str | None = None
    model: str = "lenet"
    out: str = "runs/lenet"
    image_size: int | None = None  # None: the model's default (LeNet 32)
    # LeNet defaults chosen on the validation split of HAM10000 (docs/PERFORMANCE.md): lr 1e-3 for
    # 30 epochs plateaued at validation balanced accuracy ~0.48; 3e-3 for 60 epochs reached 0.535.
    epochs: int = 60
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"  # or "none"
    weighting: str = "median"
    # An explicit loss weight per label, in label order (``CLASSES``): overrides ``weighting``.
    # Chapter 4 trains with a list written in another class order to show what that mistake does.
    class_weights: tuple | None = None
    sampling: str = "shuffle"  # or "balanced": every class equally often in each epoch (with replacement)
    label_smoothing: float = 0.0
    rotation: float = presets.ROTATION_DEGREES  # training augmentation: random rotation within ±this
    flip: bool = True  # training augmentation: random horizontal flip (rotation 0, no flip: none at all)
    seed: int = 0  # the split, and the initialisation and batch order unless init_seed is given
    init_seed: int | None = None  # another initialisation and batch order on the same split (ensembles)
    split_file: str | None = None  # a given split (CSV: image_id, split) instead of the lesion-level one
    train_images: int | None = None  # train on a class-stratified subset of this many training images
    device: str = "auto"
    fractions: tuple = DEFAULT_FRACTIONS
    pretrained: bool = True
    allow_random_init: bool = False
    freeze_backbone: bool = False
    # Fine-tuning a pretrained model: the backbone (every parameter outside the new head) learns
    # at this rate while the head learns at ``lr`` (None: one rate for all); and, for
    # EfficientNet-Lite, only the last ``train_last_blocks`` blocks (plus the head convolution and
    # the head) train, the rest is frozen with its BatchNorm statistics (None: all of it trains).
    backbone_lr: float | None = None
    train_last_blocks: int | None = None
    # Inputs: "shades_of_gray" applies Shades of Gray colour constancy to every cached image
    # (presets.shades_of_gray); ``crop``: the cache holds ``image_size`` pixels, training takes a
    # random ``crop`` x ``crop`` window of each (after flip and rotation), evaluation the centre.
    color_constancy: str = "none"
    crop: int | None = None
    tta: bool = False
    resume: bool = False
    workers: int | None = None
    n_synthetic: int = SYNTHETIC_SAMPLE_SIZE
    progress: bool = True
    figures: bool = True
    extra: dict = field(default_factory=dict)

    def resolved_image_size(self) -> int:
        return int(self.image_size or models.default_input_size(self.model))


def check_class_weights(values) -> tuple[float, ...]:
    """``values`` as a tuple of one positive, finite weight per class (label order), or a
    ``ValueError`` that says what is wrong and what was expected."""
    expected = f"{len(CLASSES)} positive numbers, one per class in label order ({','.join(CLASSES)})"
    weights = []
    for v in values:
        try:
            weights.append(float(v))
        except (TypeError, ValueError):
            raise ValueError(f"--class-weights: {v!r} is not a number; expected {expected}") from None
    weights = tuple(weights)
    if len(weights) != len(CLASSES):
        raise ValueError(f"--class-weights: got {len(weights)} numbers, expected {expected}")
    bad = [f"{c}={w:g}" for c, w in zip(CLASSES, weights) if not (np.isfinite(w) and w > 0)]
    if bad:
        raise ValueError(f"--class-weights: {', '.join(bad)} is not a positive number; expected {expected}")
    return weights


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
    crop: int | None = None  # evaluation takes the centre crop x crop of each cached image

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
    if cfg.color_constancy not in COLOR_CONSTANCY:
        raise ValueError(f"color_constancy {cfg.color_constancy!r}: expected one of {', '.join(COLOR_CONSTANCY)}")
    if cfg.color_constancy == "shades_of_gray":
        images = presets.shades_of_gray(images)
    if cfg.crop is not None and not 0 < cfg.crop <= size:
        raise ValueError(f"--crop {cfg.crop}: must be between 1 and the image size {size}")
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
    return PreparedData(source, metadata, split, images, index, *stats, crop=cfg.crop)


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
    optimizer = torch.optim.AdamW(param_groups(model, cfg.lr, cfg.backbone_lr), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
                 if cfg.scheduler == "cosine" else None)
    val_loader = data.loader("val", 256)
    plain = presets.BatchAugment(data.mean, data.std, train=False, channels_last=channels_last, crop=data.crop)
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
                                       shard=(rank, world), channels_last=channels_last, crop=data.crop)
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
    y_true, y_prob = predict_split(model, data, "test", device, tta=cfg.tta)
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


def predict_split(model: nn.Module, data: PreparedData, name: str, device, tta: bool = False,
                  batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_prob)`` of ``model`` on split ``name``, batches prepared as in training
    (the run's normalisation, channels-last when the model is); ``tta`` adds flipped images."""
    plain = presets.BatchAugment(data.mean, data.std, train=False, channels_last=_is_channels_last(model),
                                 crop=data.crop).to(device)
    return engine.predict(model, data.loader(name, batch_size), device, batch_transform=plain, tta_flip=tta)


def evaluate_split(model, data: PreparedData, name: str, device, tta: bool = False, batch_size: int = 256) -> dict:
    y_true, y_prob = predict_split(model, data, name, device, tta=tta, batch_size=batch_size)
    return {"split": name, **metrics.compute_metrics(y_true, y_prob)}


def _is_channels_last(model: nn.Module) -> bool:
    """Whether the model was made channels-last (then its input batches should be too)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return conv is not None and conv.weight.is_contiguous(memory_format=torch.channels_last)


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


def load_run(run_dir: str | os.PathLike, data: str | None = None, device="auto"):
    """``(model, cfg, device)`` of a finished run: its best weights in eval mode on ``device``
    (channels-last where training would use it) and its ``TrainConfig`` (``data`` replaces the
    dataset folder); ``prepare_data(cfg)`` then gives the run's split and normalisation."""
    run = Path(run_dir)
    cfg_file = run / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{run}: not a run folder (no config.json); train one with `skinlab train`")
    raw = json.loads(cfg_file.read_text())
    known = {k: v for k, v in raw.items() if k in TrainConfig.__dataclass_fields__}
    cfg = TrainConfig(**known)
    if cfg.class_weights is not None:  # JSON gave a list back
        cfg.class_weights = tuple(cfg.class_weights)
    if data is not None:
        cfg.data = data
    cfg.progress = False
    device = engine.select_device(device)
    model = models.build_model(cfg.model, num_classes=len(CLASSES), pretrained=False, allow_random_init=True)
    model.load_state_dict(engine.load_checkpoint(run / "best.pt", map_location=device)["model"])
    if models.prefers_channels_last(cfg.model, device):
        model = model.to(memory_format=torch.channels_last)
    model.to(device).eval()
    return model, cfg, device
