"""The runs the book's chapters share, trained once and reused.

Runs shared between chapters (the trained LeNet, the transfer model...) are trained by
``skinlab.pipeline.train`` into ``<course>/_build/.skinlab-runs/<profile>-<data>-<code key>/<name>/``
(:func:`runs_dir`) and reused: a run folder with ``metrics.json`` is never trained again
(:func:`cached_train`). The code key (:func:`code_key`) is the hash of every ``skinlab`` module
a run's result depends on, found by following the imports of the training path
(:mod:`skinlab.course.codekey`): change any of that code and every run is trained anew.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from skinlab.course import codekey, course_root
from skinlab.course.profile import Profile, current_profile, data_hash, data_source
from skinlab.data.layout import ENV_VAR

RUNS_ENV = "SKINLAB_RUNS_DIR"

# Where a run's code starts: the training path, this module (how a run is cached and read back)
# and the module that builds the chapters' configurations (a run is cached by its name, so the
# code that decides its settings keys it too). Everything they import is found from them.
RUN_CODE_ROOTS = ("skinlab.pipeline", "skinlab.course.runcache", "skinlab.course.configs")


def code_modules(package: Path | None = None) -> tuple[str, ...]:
    """The ``skinlab`` modules whose source keys a cached run: :data:`RUN_CODE_ROOTS` and all
    they import (of the package in the folder ``package``, default the one running)."""
    return codekey.imported_modules(RUN_CODE_ROOTS, package)


def code_key(package: Path | None = None) -> str:
    """Short hash of the source of :func:`code_modules`."""
    return codekey.code_hash(code_modules(package), package)


def runs_dir(profile: Profile | None = None, source=None) -> Path:
    """Folder of the runs shared between chapters for this profile, dataset and training code:
    under ``$SKINLAB_RUNS_DIR``, else the course folder's ``_build/.skinlab-runs``."""
    profile = profile or current_profile()
    source = source or data_source(profile)
    base = Path(os.environ.get(RUNS_ENV) or course_root() / "_build" / ".skinlab-runs")
    tag = "synthetic" if source.synthetic else "ham10000"
    return base / f"{profile.name}-{tag}-{data_hash(source)}-{code_key()}"


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


# TrainConfig fields that say how a run is carried out, not what it computes.
_NOT_SETTINGS = frozenset({"out", "resume", "progress", "figures", "workers", "extra", "device"})


def settings(cfg) -> dict:
    """What a run computes, as its ``config.json`` records it (JSON types, resolved image size)."""
    values = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    values["image_size"] = cfg.resolved_image_size()
    return {k: v for k, v in values.items() if k not in _NOT_SETTINGS}


def cached_train(name: str, cfg, profile: Profile | None = None, *, split=None) -> Run:
    """``pipeline.train(cfg)`` into ``runs_dir()/name``, skipped when that run already finished.

    ``split`` (a Series of "train"/"val"/"test" indexed like the metadata, e.g. the leaky
    image-level split of chapter 3) is saved in the run folder and trained on through
    ``cfg.split_file``.

    The book executes chapters side by side (:mod:`skinlab.course.execute`), and several ask for
    the same run (the main LeNet): it is trained under a lock on its folder, so the first trains
    it and the others wait, then read it. A finished run of that name with other settings is an
    error, never silently reused: two chapters would show different models under one name.
    """
    from skinlab.atomic import atomic_write, exclusive
    from skinlab.pipeline import train

    folder = runs_dir(profile) / name
    with exclusive(folder):
        given = None
        if split is not None:
            given = dataclasses.replace(cfg, split_file=str(folder / "given-split.csv"))
        if (folder / "metrics.json").is_file():
            _check_same_settings(name, folder, given or cfg)
        else:
            if given is not None:
                meta = prepared(cfg).metadata  # the metadata as the data gives it (no split file yet)
                with atomic_write(given.split_file, "w") as fh:
                    split.reindex(meta.index).to_frame("split").assign(image_id=meta["image_id"]).to_csv(fh, index=False)
            train(dataclasses.replace(given or cfg, out=str(folder), resume=False), log=None)
        return _read_run(name, folder)


def _check_same_settings(name: str, folder: Path, cfg) -> None:
    recorded = json.loads((folder / "config.json").read_text())
    wanted = settings(cfg)
    differ = sorted(k for k, v in wanted.items() if k in recorded and recorded[k] != v)
    if differ:
        shown = ", ".join(f"{k}={recorded[k]!r} there, {wanted[k]!r} asked" for k in differ)
        raise ValueError(f"cached run {name!r} ({folder}) was trained with other settings ({shown}): "
                         "give this configuration a run name of its own")


def load_run(run: Run, cfg=None):
    """``run``'s best model with its evaluation preset (:class:`skinlab.pipeline.LoadedRun`: ``.model``
    in eval mode, ``.preset.batch_transform()`` the transform its evaluation applies to cached images)."""
    from skinlab.pipeline import load_run as load

    return load(run.folder, device=cfg.device if cfg is not None else "auto")


def load_model(run: Run, cfg=None):
    """The best weights of ``run`` in a fresh model, in eval mode (:func:`load_run`'s ``.model``)."""
    return load_run(run, cfg).model


def test_predictions(run: Run, cfg=None):
    """``(y_true, y_prob)`` of ``run``'s best model on its test split (saved by the run, or
    predicted again for runs from before ``predictions.npz`` existed)."""
    import numpy as np

    saved = run.folder / "predictions.npz"
    if saved.is_file():
        with np.load(saved) as z:
            return z["y_true"], z["y_prob"]
    from skinlab.pipeline import load_run, predict_split

    loaded = load_run(run.folder)  # its evaluation preset: the same predictions as the run's own
    return predict_split(loaded, loaded.prepare_data(), "test")
