"""The runs the book's chapters share, trained once and reused.

Runs shared between chapters (the trained LeNet, the transfer model...) are trained by
``skinlab.pipeline.train`` into ``<course>/_build/.skinlab-runs/<profile>-<data>-<code key>/<name>-<settings key>/``
(:func:`runs_dir`, :func:`run_folder`) and reused: a run folder with ``metrics.json`` is never
trained again (:func:`cached_train`). The code key (:func:`code_key`) is the hash of every ``skinlab`` module
a run's result depends on, found by following the imports of the training path
(:mod:`skinlab.course.codekey`): change any of that code and every run is trained anew.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
    """``pipeline.prepare_data(cfg)`` (split, cached images, statistics), memoised in this kernel
    by what decides it: the options declared ``data=True`` (:func:`skinlab.config.data_options`)
    and the dataset folder of the environment."""
    from skinlab.config import data_options
    from skinlab.pipeline import prepare_data

    key = (os.environ.get(ENV_VAR), json.dumps(data_options(cfg), sort_keys=True, default=str))
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


def settings(cfg) -> dict:
    """What a run computes: its run options (:func:`skinlab.config.run_options`, the options the
    printed command holds) as JSON gives them back, the image size resolved. The dataset is
    not among them: it keys the whole :func:`runs_dir`."""
    from skinlab.config import run_options

    values = json.loads(json.dumps(run_options(cfg), default=str))
    values["image_size"] = cfg.resolved_image_size()
    return values


def run_folder(name: str, cfg, profile: Profile | None = None, split_csv: str | None = None) -> Path:
    """Where the run ``name`` of ``cfg`` lives: ``runs_dir()/<name>-<key>``, the key a hash of its
    :func:`settings` and, for a given split, of that split (``split_csv``: its CSV text). Other
    settings or another split are another folder, so a changed chapter never reads a stale run."""
    values = settings(cfg)
    if split_csv is not None:
        values.pop("split_file", None)  # a path inside the folder: the split's content keys it instead
        values["given_split"] = hashlib.sha256(split_csv.encode()).hexdigest()
    key = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    return runs_dir(profile) / f"{name}-{key}"


def cached_train(name: str, cfg, profile: Profile | None = None, *, split=None) -> Run:
    """``pipeline.train(cfg)`` into :func:`run_folder`, skipped when that run already finished.

    ``split`` (a Series of "train"/"val"/"test" indexed like the metadata, e.g. the leaky
    image-level split of chapter 3) is saved in the run folder and trained on through
    ``cfg.split_file``.

    The book executes chapters side by side (:mod:`skinlab.course.execute`), and several ask for
    the same run (the main LeNet): it is trained under a lock on its folder, so the first trains
    it and the others wait, then read it.
    """
    from skinlab.atomic import atomic_write, exclusive
    from skinlab.pipeline import train

    split_csv = None
    if split is not None:
        meta = prepared(cfg).metadata  # the metadata as the data gives it
        split_csv = split.reindex(meta.index).to_frame("split").assign(image_id=meta["image_id"]).to_csv(index=False)
    folder = run_folder(name, cfg, profile, split_csv)
    with exclusive(folder):
        if not (folder / "metrics.json").is_file():
            if split_csv is not None:
                cfg = dataclasses.replace(cfg, split_file=str(folder / "given-split.csv"))
                with atomic_write(cfg.split_file, "w") as fh:
                    fh.write(split_csv)
            train(dataclasses.replace(cfg, out=str(folder), resume=False), log=None)
        return _read_run(name, folder)


def load_best(run: Run, cfg=None):
    """``run``'s best model with its evaluation preset (:class:`skinlab.pipeline.LoadedRun`: ``.model``
    in eval mode, ``.preset.batch_transform()`` the transform its evaluation applies to cached images)."""
    from skinlab.pipeline import load_run

    return load_run(run.folder, device=cfg.device if cfg is not None else "auto")


def test_predictions(run: Run):
    """``(y_true, y_prob)`` of ``run``'s best model on its test split, as the run saved them
    (``predictions.npz``: every run of this cache has it, since runs are keyed by the current code)."""
    import numpy as np

    with np.load(run.folder / "predictions.npz") as z:
        return z["y_true"], z["y_prob"]
