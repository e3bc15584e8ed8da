"""Book profiles (``SKINLAB_PROFILE=quick|full``) and the helpers every chapter shares.

What a chapter runs on is configuration, never an edit of the chapter:

* data: ``$HAM10000_DIR`` when set, else the embedded synthetic sample (:func:`data_source`);
* size of the experiments: the *quick* profile (default; small images, few epochs, a few
  minutes on a 2-core CPU, used by tests and CI) or the *full* profile (the guide's settings,
  meant for a GPU), read from ``$SKINLAB_PROFILE`` (:func:`current_profile`).

Every model of the book is trained by ``skinlab.pipeline.train``, the path ``skinlab train``
takes, from a ``TrainConfig`` (:func:`lenet_config`, :func:`transfer_config`, with the options of
each experiment as its fields). Runs shared between chapters (the trained LeNet, the transfer
model...) are trained once into ``<course>/_build/.skinlab-runs/<profile>-<data>-<code hash>/<name>/``
(:func:`runs_dir`) and reused: a run folder with ``metrics.json`` is never trained again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

from skinlab.course import course_root
from skinlab.data.layout import ENV_VAR
from skinlab.data.source import SYNTHETIC_SAMPLE_SIZE

PROFILE_ENV = "SKINLAB_PROFILE"
RUNS_ENV = "SKINLAB_RUNS_DIR"
BOOK_BUILD_ENV = "SKINLAB_BOOK_BUILD"
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
    transfer_backbone_lr: float | None  # learning rate outside the new head (None: transfer_lr for all)
    transfer_last_blocks: int | None  # train only the last N blocks (+ head); None: the whole network
    ensemble_size: int
    gradcam_images: int  # pictures shown and in the interactive view
    gradcam_scored_images: int = 200  # test images whose Grad-CAM is scored against the masks (ch. 10, 11)
    n_synthetic: int = SYNTHETIC_SAMPLE_SIZE
    batch_size: int = 64
    transfer_batch_size: int = 64

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
        # Chosen on validation balanced accuracy (docs/PERFORMANCE.md, "Chapter 11's run"): at 96 px
        # on 1,600 images for 3 epochs (75 steps) the whole network learned next to nothing (test
        # balanced accuracy 0.211); at 64 px, 3 epochs of the whole training split (600 steps of
        # 32) take about the same CPU time (validation 0.587; 2 epochs: 0.545), and frozen
        # BatchNorm statistics make so short a run work.
        transfer_model="efficientnet_lite0",
        transfer_size=64,
        transfer_epochs=3,
        transfer_lr=1e-3,
        transfer_train_images=None,
        transfer_backbone_lr=1e-4,
        transfer_last_blocks=16,
        ensemble_size=3,
        gradcam_images=4,
        transfer_batch_size=32,
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
        transfer_backbone_lr=1e-4,
        transfer_last_blocks=16,
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
        transfer_backbone_lr=1e-4,
        transfer_last_blocks=None,
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
                    "metrics", "cache", "atomic", "pipeline", "course.profile")


def _source_files(module: str, package: Path | None = None) -> list[Path]:
    """The source of ``skinlab.<module>`` (dotted names for subpackages' modules): its file, or
    every ``.py`` under it for a package; none when it does not exist. ``package``: the folder of
    the installed ``skinlab`` package (default), wherever that is."""
    package = Path(package) if package is not None else Path(__file__).resolve().parents[1]
    path = package.joinpath(*module.split("."))
    if path.is_dir():
        return sorted(path.rglob("*.py"))
    return [path.with_suffix(".py")] if path.with_suffix(".py").is_file() else []


def code_hash(modules=TRAINING_MODULES, package: Path | None = None) -> str:
    """Short hash of the source of ``skinlab.<module>`` (a module or every file of a subpackage)
    for each of ``modules``."""
    package = Path(package) if package is not None else Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for name in modules:
        for path in _source_files(name, package):
            h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:8]


def runs_dir(profile: Profile | None = None, source=None) -> Path:
    """Folder of the runs shared between chapters for this profile, dataset and training code:
    under ``$SKINLAB_RUNS_DIR``, else the course folder's ``_build/.skinlab-runs``."""
    profile = profile or current_profile()
    source = source or data_source(profile)
    base = Path(os.environ.get(RUNS_ENV) or course_root() / "_build" / ".skinlab-runs")
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
            f"in the HAM10000 layout), because <code>{ENV_VAR}</code> was not set. Its figures "
            "and numbers illustrate the method only: they say nothing about skin lesions. "
            f"Set <code>{ENV_VAR}</code> to the real dataset and rebuild to see real results.</p>"
            f"<p>Profile: <b>{html.escape(profile.name)}</b> ({html.escape(profile.description)}).</p>"
            "</div>"
        )
    return (
        '<div class="admonition note skinlab-run-note">'
        '<p class="admonition-title">What this page ran on</p>'
        # the folder is named by its variable, never by its path: a machine path means nothing to
        # a reader and tells where the builder keeps its files
        f"<p>Data: <b>HAM10000</b>, the folder named by <code>{ENV_VAR}</code>. "
        f"Profile: <b>{html.escape(profile.name)}</b> ({html.escape(profile.description)}).</p>"
        "</div>"
    )


class _Banner:
    """Shows as an admonition in Jupyter and in the built book, as plain text elsewhere."""

    def __init__(self, profile, source):
        self.profile, self.source = profile, source

    def _repr_html_(self) -> str:
        return banner_html(self.profile, self.source)

    def _ipython_display_(self):
        # every chapter shows the banner first: the place to set how the page shows its figures
        from IPython.display import display

        from skinlab.plots import book_display

        book_display()
        display({"text/html": self._repr_html_(), "text/plain": repr(self)}, raw=True)

    def __repr__(self) -> str:
        what = "synthetic sample (NOT HAM10000)" if self.source.synthetic else f"HAM10000 (${ENV_VAR})"
        return f"data: {what}; profile: {self.profile.name}"


def banner(profile: Profile | None = None, source=None) -> _Banner:
    """The "what this page ran on" note every chapter displays first. Every chapter calls it first,
    so it also sets the page's table display: pandas cuts cells at 50 characters ("…the whole book
    ru..."), and a learner must see the whole text."""
    import pandas as pd

    pd.set_option("display.max_colwidth", None)
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
    """``TrainConfig`` of the book's transfer model (EfficientNet-Lite0, ImageNet weights), on
    the profile's subset of the training images: the new head at ``transfer_lr``, the pretrained
    part at the smaller ``transfer_backbone_lr``, only its last ``transfer_last_blocks`` blocks
    trained (every BatchNorm on its ImageNet statistics); square-root class weights and label smoothing 0.1 (the recipe of the hour-long run
    in ``docs/PERFORMANCE.md``)."""
    from skinlab.pipeline import TrainConfig

    profile = profile or current_profile()
    cfg = TrainConfig(model=profile.transfer_model, image_size=profile.transfer_size,
                      epochs=profile.transfer_epochs, lr=profile.transfer_lr,
                      backbone_lr=profile.transfer_backbone_lr, train_last_blocks=profile.transfer_last_blocks,
                      weighting="sqrt", label_smoothing=0.1,
                      train_images=profile.transfer_train_images,
                      batch_size=profile.transfer_batch_size, n_synthetic=profile.n_synthetic,
                      progress=progress_enabled(), figures=False)
    return dataclasses.replace(cfg, **overrides)


# ``skinlab train`` flags of the TrainConfig fields a chapter may change, in the order shown.
_FLAGS = (("image_size", "--image-size"), ("batch_size", "--batch-size"), ("weighting", "--weighting"),
          ("class_weights", "--class-weights"), ("sampling", "--sampling"),
          ("label_smoothing", "--label-smoothing"), ("rotation", "--rotation"), ("flip", "--no-flip"),
          ("seed", "--seed"), ("init_seed", "--init-seed"), ("split_file", "--split-file"),
          ("train_images", "--train-images"), ("backbone_lr", "--backbone-lr"),
          ("train_last_blocks", "--train-last-blocks"), ("color_constancy", "--color-constancy"), ("crop", "--crop"))


def train_command(cfg) -> str:
    """The ``skinlab train`` command line of a configuration (what to run for full results)."""
    from skinlab.pipeline import TrainConfig

    default = TrainConfig()
    parts = ["skinlab train", f"--model {cfg.model}", f"--epochs {cfg.epochs}", f"--lr {cfg.lr:g}"]
    for field, flag in _FLAGS:
        value = getattr(cfg, field)
        if value == getattr(default, field) or value is None:
            continue
        if isinstance(value, (tuple, list)):
            value = ",".join(f"{v:.3g}" for v in value)
        parts.append(flag if isinstance(value, bool) else f"{flag} {value:g}" if isinstance(value, float)
                     else f"{flag} {value}")
    parts.append(f"--out runs/{cfg.model}")
    return " ".join(parts)


# --------------------------------------------------------------------------- cached runs

_PREPARED: dict = {}


def prepared(cfg):
    """``pipeline.prepare_data(cfg)`` (split, cached images, statistics), memoised in this kernel."""
    from skinlab.pipeline import prepare_data

    key = (os.environ.get(ENV_VAR), cfg.data, cfg.model, cfg.resolved_image_size(), cfg.seed,
           tuple(cfg.fractions), cfg.n_synthetic, cfg.split_file, cfg.train_images, cfg.color_constancy, cfg.crop)
    if key not in _PREPARED:
        _PREPARED[key] = prepare_data(cfg, log=None)
    return _PREPARED[key]


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


def _read_run(name: str, folder: Path) -> Run:
    history_file = folder / "history.json"
    history = json.loads(history_file.read_text()) if history_file.is_file() else []
    return Run(name, folder, json.loads((folder / "metrics.json").read_text()), history)


def cached_train(name: str, cfg, profile: Profile | None = None, *, split=None) -> Run:
    """``pipeline.train(cfg)`` into ``runs_dir()/name``, skipped when that run already finished.

    ``split`` (a Series of "train"/"val"/"test" indexed like the metadata, e.g. the leaky
    image-level split of chapter 3) is saved in the run folder and trained on through
    ``cfg.split_file``.
    """
    from skinlab.atomic import atomic_write
    from skinlab.pipeline import train

    folder = runs_dir(profile) / name
    if not (folder / "metrics.json").is_file():
        if split is not None:
            meta = prepared(cfg).metadata
            split_file = folder / "given-split.csv"
            with atomic_write(split_file, "w") as fh:
                split.reindex(meta.index).to_frame("split").assign(image_id=meta["image_id"]).to_csv(fh, index=False)
            cfg = dataclasses.replace(cfg, split_file=str(split_file))
        train(dataclasses.replace(cfg, out=str(folder), resume=False), log=None)
    return _read_run(name, folder)


def load_model(run: Run, cfg=None):
    """The best weights of ``run`` in a fresh model, in eval mode (``pipeline.load_run``)."""
    from skinlab.pipeline import load_run

    return load_run(run.folder, device=cfg.device if cfg is not None else "auto")[0]


def test_predictions(run: Run, cfg=None):
    """``(y_true, y_prob)`` of ``run``'s best model on its test split (saved by the run, or
    predicted again for runs from before ``predictions.npz`` existed)."""
    import numpy as np

    saved = run.folder / "predictions.npz"
    if saved.is_file():
        with np.load(saved) as z:
            return z["y_true"], z["y_prob"]
    from skinlab.pipeline import load_run, predict_split, prepare_data

    model, run_cfg, device = load_run(run.folder)
    return predict_split(model, prepare_data(run_cfg, log=None), "test", device)


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
