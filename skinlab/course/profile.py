"""Book profiles (``SKINLAB_PROFILE=quick|full``) and the helpers every chapter shares.

What a chapter runs on is configuration, never an edit of the chapter:

* data: ``$HAM10000_DIR`` when set, else the embedded synthetic sample (:func:`data_source`);
* size of the experiments: the *quick* profile (default; small images, few epochs, a few
  minutes on a 2-core CPU, used by tests and CI) or the *full* profile (the guide's settings,
  meant for a GPU), read from ``$SKINLAB_PROFILE`` (:func:`current_profile`).

Heavy results shared between chapters (the trained LeNet, the transfer model...) are trained
once into ``_build/.skinlab-runs/<profile>-<data hash>/<name>/`` (:func:`runs_dir`) and reused:
a run folder with ``metrics.json`` is never trained again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROFILE_ENV = "SKINLAB_PROFILE"
RUNS_ENV = "SKINLAB_RUNS_DIR"
BOOK_BUILD_ENV = "SKINLAB_BOOK_BUILD"
REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_NOTE_CLASS = "skinlab-synthetic-note"


@dataclass(frozen=True)
class Profile:
    """The knobs that make a book build quick (CPU, CI) or full (the guide's settings, GPU)."""

    name: str
    description: str
    lenet_epochs: int  # the main LeNet (chapters 8-12) and the tips' variants
    lenet_lr: float
    lr_epochs: int  # each run of the learning-rate comparison (chapter 7)
    lr_values: tuple  # learning rates compared in chapter 7 (1e-5 is the guide's)
    leak_epochs: int  # each of the two runs of the leakage demonstration (chapter 3)
    transfer_model: str
    transfer_size: int  # image side for the transfer model
    transfer_epochs: int
    transfer_lr: float
    transfer_train_images: int | None  # None: the whole training split
    ensemble_size: int
    gradcam_images: int
    n_synthetic: int = 2000
    batch_size: int = 64

    def as_table(self) -> dict:
        return dataclasses.asdict(self)


PROFILES = {
    "quick": Profile(
        name="quick",
        description="small images and few epochs: the whole book runs in minutes on a CPU",
        lenet_epochs=12,
        lenet_lr=1e-3,
        lr_epochs=6,
        lr_values=(1e-5, 1e-4, 1e-3, 1e-2),
        leak_epochs=12,
        transfer_model="efficientnet_lite0",
        transfer_size=96,
        transfer_epochs=3,
        transfer_lr=1e-3,
        transfer_train_images=1600,
        ensemble_size=3,
        gradcam_images=4,
    ),
    # Only checks that every chapter runs (its numbers mean nothing): for developing the book.
    "smoke": Profile(
        name="smoke",
        description="a check that every chapter runs: 1-2 epochs, numbers meaningless",
        lenet_epochs=2,
        lenet_lr=1e-3,
        lr_epochs=1,
        lr_values=(1e-5, 1e-3),
        leak_epochs=2,
        transfer_model="efficientnet_lite0",
        transfer_size=64,
        transfer_epochs=1,
        transfer_lr=1e-3,
        transfer_train_images=300,
        ensemble_size=2,
        gradcam_images=2,
    ),
    "full": Profile(
        name="full",
        description="the guide's settings (224 px transfer learning, 30 LeNet epochs): meant for a GPU",
        lenet_epochs=30,
        lenet_lr=1e-3,
        lr_epochs=30,
        lr_values=(1e-5, 1e-4, 1e-3, 1e-2),
        leak_epochs=30,
        transfer_model="efficientnet_lite0",
        transfer_size=224,
        transfer_epochs=15,
        transfer_lr=1e-3,
        transfer_train_images=None,
        ensemble_size=5,
        gradcam_images=6,
    ),
}


def current_profile(name: str | None = None) -> Profile:
    """The profile named ``name``, else ``$SKINLAB_PROFILE``, else ``quick``."""
    chosen = (name or os.environ.get(PROFILE_ENV) or "quick").strip().lower()
    if chosen not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={chosen!r}: unknown profile; expected one of {', '.join(PROFILES)}"
        )
    return PROFILES[chosen]


def in_book_build() -> bool:
    """True while ``python -m skinlab.bookbuild`` executes the chapters (progress bars off)."""
    return os.environ.get(BOOK_BUILD_ENV, "") not in ("", "0")


def progress_enabled() -> bool:
    return not in_book_build()


def data_source(profile: Profile | None = None):
    """The dataset the book runs on: ``$HAM10000_DIR`` or the synthetic sample."""
    from skinlab.data import resolve_data_dir

    profile = profile or current_profile()
    return resolve_data_dir(None, n_synthetic=profile.n_synthetic, progress=progress_enabled())


def data_hash(source) -> str:
    """Short hash identifying the dataset (folder, metadata file size and time, synthetic or not)."""
    from skinlab.data import metadata_csv_path

    csv_path = metadata_csv_path(source.root)
    st = csv_path.stat()
    key = f"{Path(source.root).resolve()}|{st.st_size}|{st.st_mtime_ns}|{source.synthetic}"
    return hashlib.sha256(key.encode()).hexdigest()[:10]


# The modules whose code changes a run's result: runs are cached per hash of their sources.
TRAINING_MODULES = ("data", "synthetic", "split", "balance", "presets", "models", "engine",
                    "metrics", "cache", "pipeline", "profile")


def code_hash(modules=TRAINING_MODULES) -> str:
    """Short hash of the source of ``skinlab.<module>`` for each of ``modules``."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for name in modules:
        h.update(name.encode() + b"\0" + (package / f"{name}.py").read_bytes())
    return h.hexdigest()[:8]


def runs_dir(profile: Profile | None = None, source=None) -> Path:
    """Folder of the runs shared between chapters for this profile, dataset and training code."""
    profile = profile or current_profile()
    source = source or data_source(profile)
    base = Path(os.environ.get(RUNS_ENV) or REPO_ROOT / "_build" / ".skinlab-runs")
    tag = "synthetic" if source.synthetic else "ham10000"
    return base / f"{profile.name}-{tag}-{data_hash(source)}-{code_hash()}"


# --------------------------------------------------------------------------- the banner


def banner_html(profile: Profile | None = None, source=None) -> str:
    """HTML admonition naming the profile and data; a warning when on the synthetic sample."""
    profile = profile or current_profile()
    source = source or data_source(profile)
    if source.synthetic:
        return (
            f'<div class="admonition warning {SYNTHETIC_NOTE_CLASS}">'
            '<p class="admonition-title">Synthetic sample, not HAM10000</p>'
            "<p>This page was executed on the <b>embedded synthetic sample</b> (generated images "
            "in the HAM10000 layout), because <code>HAM10000_DIR</code> was not set. Its figures "
            "and numbers illustrate the method only: they say nothing about skin lesions. "
            "Set <code>HAM10000_DIR</code> to the real dataset and rebuild to see real results.</p>"
            f"<p>Profile: <b>{html.escape(profile.name)}</b> ({html.escape(profile.description)}).</p>"
            "</div>"
        )
    return (
        '<div class="admonition note skinlab-run-note">'
        '<p class="admonition-title">What this page ran on</p>'
        f"<p>Data: <b>HAM10000</b> at <code>{html.escape(str(source.root))}</code>. "
        f"Profile: <b>{html.escape(profile.name)}</b> ({html.escape(profile.description)}).</p>"
        "</div>"
    )


class _Banner:
    """Shows as an admonition in Jupyter and in the built book, as plain text elsewhere."""

    def __init__(self, profile, source):
        self.profile, self.source = profile, source

    def _repr_html_(self) -> str:
        return banner_html(self.profile, self.source)

    def __repr__(self) -> str:
        what = "synthetic sample (NOT HAM10000)" if self.source.synthetic else f"HAM10000 at {self.source.root}"
        return f"data: {what}; profile: {self.profile.name}"


def banner(profile: Profile | None = None, source=None) -> _Banner:
    """The "what this page ran on" note every chapter displays first."""
    profile = profile or current_profile()
    return _Banner(profile, source or data_source(profile))


# --------------------------------------------------------------------------- configurations


def lenet_config(profile: Profile | None = None, **overrides):
    """``TrainConfig`` of the book's LeNet (the same as ``skinlab train --model lenet``)."""
    from skinlab.pipeline import TrainConfig

    profile = profile or current_profile()
    cfg = TrainConfig(model="lenet", epochs=profile.lenet_epochs, lr=profile.lenet_lr,
                      batch_size=profile.batch_size, n_synthetic=profile.n_synthetic,
                      progress=progress_enabled(), figures=False)
    return dataclasses.replace(cfg, **overrides)


def transfer_config(profile: Profile | None = None, **overrides):
    """``TrainConfig`` of the book's transfer model (EfficientNet-Lite0, ImageNet weights)."""
    from skinlab.pipeline import TrainConfig

    profile = profile or current_profile()
    cfg = TrainConfig(model=profile.transfer_model, image_size=profile.transfer_size,
                      epochs=profile.transfer_epochs, lr=profile.transfer_lr,
                      batch_size=profile.batch_size, n_synthetic=profile.n_synthetic,
                      progress=progress_enabled(), figures=False)
    return dataclasses.replace(cfg, **overrides)


def train_command(cfg, train_images: int | None = None) -> str:
    """The ``skinlab train`` command line for a configuration (what to run for full results)."""
    parts = ["skinlab train", f"--model {cfg.model}", f"--epochs {cfg.epochs}", f"--lr {cfg.lr:g}"]
    if cfg.image_size:
        parts.append(f"--image-size {cfg.image_size}")
    if cfg.weighting != "median":
        parts.append(f"--weighting {cfg.weighting}")
    if cfg.seed:
        parts.append(f"--seed {cfg.seed}")
    parts.append(f"--out runs/{cfg.model}")
    line = " ".join(parts)
    if train_images:
        line += f"   # the book used only {train_images} training images"
    return line


# --------------------------------------------------------------------------- cached runs

_PREPARED: dict = {}


def prepared(cfg):
    """``pipeline.prepare_data(cfg)``, memoised per dataset, model and image size in this kernel."""
    from skinlab.pipeline import prepare_data

    key = (cfg.data, os.environ.get("HAM10000_DIR"), cfg.model, cfg.resolved_image_size(), cfg.seed,
           tuple(cfg.fractions), cfg.n_synthetic)
    if key not in _PREPARED:
        _PREPARED[key] = prepare_data(cfg, log=None)
    return _PREPARED[key]


def _read_json(path: Path):
    return json.loads(Path(path).read_text())


def _write_json(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


@dataclass
class Run:
    """A finished run folder: its test metrics, per-epoch history and folder."""

    name: str
    folder: Path
    metrics: dict
    history: list

    def summary(self) -> str:
        from skinlab.pipeline import summary_line

        return f"{self.name}: {summary_line(self.metrics)}"


def _load_run(name: str, folder: Path) -> Run:
    history = _read_json(folder / "history.json") if (folder / "history.json").is_file() else []
    return Run(name, folder, _read_json(folder / "metrics.json"), history)


def cached_train(name: str, cfg, profile: Profile | None = None) -> Run:
    """``pipeline.train(cfg)`` into ``runs_dir()/name``, skipped when that run already finished."""
    from skinlab.pipeline import train

    folder = runs_dir(profile) / name
    if not (folder / "metrics.json").is_file():
        train(dataclasses.replace(cfg, out=str(folder), resume=False), log=None)
    return _load_run(name, folder)


def _stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Positions of ``n`` items keeping each class's share (at least one per present class)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    chosen = []
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        k = max(1, int(round(n * len(pos) / len(labels))))
        chosen.append(rng.choice(pos, size=min(k, len(pos)), replace=False))
    return np.sort(np.concatenate(chosen))


def run_experiment(
    name: str,
    cfg,
    *,
    split=None,
    train_images: int | None = None,
    augment=None,
    augmentation: bool = True,
    weighted_sampling: bool = False,
    init_seed: int | None = None,
    profile: Profile | None = None,
) -> Run:
    """A variant of ``pipeline.train`` for the book's experiments, cached like :func:`cached_train`.

    The same data preparation, loss, AdamW + cosine schedule, ``engine.fit`` and test metrics as
    ``skinlab train``, plus: another ``split`` (the leaky image-level one), a stratified subset of
    ``train_images`` training images, another ``augment`` (a ``BatchAugment``) or none at all
    (``augmentation=False``),
    ``weighted_sampling`` (rebalance by sampling instead of loss weights) and ``init_seed`` (a
    different initialisation on the same split, for ensembles). Test-set probabilities are saved
    as ``predictions.npz``.
    """
    import torch
    from torch import nn

    from skinlab import balance, engine, metrics, models, presets
    from skinlab.data import CLASSES
    from skinlab.split import SPLITS

    folder = runs_dir(profile) / name
    if (folder / "metrics.json").is_file():
        return _load_run(name, folder)
    data = prepared(cfg)
    index = dict(data.index)
    mean, std = data.mean, data.std
    if split is not None:
        index = {s: np.flatnonzero(split.reindex(data.metadata.index).to_numpy() == s) for s in SPLITS}
        if models.input_stats(cfg.model) is None:  # statistics of *this* training split
            mean, std = presets.measure_mean_std(data.images[index["train"]])
    if train_images:
        labels = data.metadata["label"].to_numpy()
        index["train"] = index["train"][_stratified_subset(labels[index["train"]], train_images, cfg.seed)]
    view = dataclasses.replace(data, index=index, mean=mean, std=std)

    engine.seed_everything(cfg.seed if init_seed is None else init_seed)
    device = engine.select_device(cfg.device)
    train_labels = view.labels("train")
    weights = None
    if cfg.weighting != "none" and not weighted_sampling:
        weights = balance.median_frequency_weights(train_labels, len(CLASSES))
        if cfg.weighting == "sqrt":
            weights = weights.sqrt()
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device),
                                    label_smoothing=cfg.label_smoothing)
    model = models.build_model(cfg.model, num_classes=len(CLASSES), pretrained=cfg.pretrained,
                               allow_random_init=cfg.allow_random_init, freeze_backbone=cfg.freeze_backbone)
    channels_last = models.prefers_channels_last(cfg.model, device)  # as skinlab train does
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
                 if cfg.scheduler == "cosine" else None)
    sampler = None
    if weighted_sampling:
        counts = balance.class_counts(train_labels, len(CLASSES))
        sampler = torch.utils.data.WeightedRandomSampler(
            torch.as_tensor(1.0 / counts[train_labels], dtype=torch.float64), num_samples=len(train_labels),
            replacement=True, generator=torch.Generator().manual_seed(cfg.seed))
    train_loader = view.loader("train", cfg.batch_size, shuffle=sampler is None,
                               generator=torch.Generator().manual_seed(cfg.seed), sampler=sampler)
    folder.mkdir(parents=True, exist_ok=True)
    history = engine.fit(
        model, train_loader, view.loader("val", 256), criterion, optimizer, cfg.epochs, device,
        scheduler=scheduler, out_dir=folder, seed=cfg.seed if init_seed is None else init_seed,
        train_transform=augment or presets.BatchAugment(mean, std, train=augmentation, channels_last=channels_last),
        eval_transform=presets.BatchAugment(mean, std, train=False, channels_last=channels_last),
        progress=cfg.progress, log=None,
    )
    best = engine.load_checkpoint(folder / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    plain = presets.BatchAugment(mean, std, train=False, channels_last=channels_last)
    y_true, y_prob = engine.predict(model, view.loader("test", 256), device, batch_transform=plain)
    # The metrics of these very predictions (what evaluate_split would compute, one pass fewer).
    result = {"split": "test", **metrics.compute_metrics(y_true, y_prob)}
    result.update({
        "model": cfg.model, "best_epoch": best["best"]["epoch"], "epochs": cfg.epochs,
        "train_images": int(len(index["train"])), "synthetic": data.source.synthetic,
        "majority_baseline": metrics.majority_baseline(train_labels, view.labels("test")),
    })
    np.savez(folder / "predictions.npz", y_true=y_true, y_prob=y_prob, test_index=index["test"])
    _write_json({**dataclasses.asdict(cfg), "image_size": cfg.resolved_image_size(), "mean": mean, "std": std,
                 "train_images": train_images, "weighted_sampling": weighted_sampling,
                 "augmentation": augmentation if augment is None else repr(augment),
                 "init_seed": init_seed}, folder / "config.json")
    _write_json(history, folder / "history.json")
    _write_json(result, folder / "metrics.json")
    return _load_run(name, folder)


def load_model(run: Run, cfg):
    """The best weights of ``run`` in a fresh model built from ``cfg`` (eval mode, CPU/GPU auto)."""
    from skinlab import engine, models
    from skinlab.data import CLASSES

    device = engine.select_device(cfg.device)
    model = models.build_model(cfg.model, num_classes=len(CLASSES), pretrained=False, allow_random_init=True)
    model.load_state_dict(engine.load_checkpoint(run.folder / "best.pt", map_location=device)["model"])
    return model.to(device).eval()


def test_predictions(run: Run, cfg):
    """``(y_true, y_prob)`` of ``run``'s best model on the test split (saved, or computed once)."""
    saved = run.folder / "predictions.npz"
    if saved.is_file():
        z = np.load(saved)
        return z["y_true"], z["y_prob"]
    from skinlab import engine, presets

    data = prepared(cfg)
    model = load_model(run, cfg)
    device = next(model.parameters()).device
    plain = presets.BatchAugment(data.mean, data.std, train=False)
    y_true, y_prob = engine.predict(model, data.loader("test", 256), device, batch_transform=plain)
    np.savez(saved, y_true=y_true, y_prob=y_prob, test_index=data.index["test"])
    return y_true, y_prob


def metrics_table(runs: dict, baseline: dict | None = None):
    """A DataFrame of the headline test metrics of ``{label: metrics dict}``, baseline first."""
    import pandas as pd

    rows = {}
    if baseline is not None:
        rows[f"majority baseline (always {baseline['class']})"] = {
            "accuracy": baseline["accuracy"], "balanced accuracy": baseline["balanced_accuracy"]}
    for label, m in runs.items():
        rows[label] = {"accuracy": m["accuracy"], "balanced accuracy": m["balanced_accuracy"],
                       "macro-F1": m.get("macro_f1"), "ROC AUC (OvR)": m.get("roc_auc_ovr")}
    return pd.DataFrame(rows).T.astype(float).round(3)
