"""Book profiles (``SKINLAB_PROFILE=quick|smoke|full``) and the data a chapter runs on.

What a chapter runs on is configuration, never an edit of the chapter:

* data: ``$HAM10000_DIR`` when set, else the embedded synthetic sample (:func:`data_source`);
* size of the experiments: the *quick* profile (default; small images, few epochs, a few
  minutes on a 2-core CPU, used by tests and CI) or the *full* profile (the guide's settings,
  meant for a GPU), read from ``$SKINLAB_PROFILE`` (:func:`current_profile`).

The rest of the course's chapter helpers: :mod:`.page` (the top of every page), :mod:`.configs`
(the models' training configurations), :mod:`.runcache` (the runs shared between chapters).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from skinlab.data.source import SYNTHETIC_SAMPLE_SIZE

PROFILE_ENV = "SKINLAB_PROFILE"
BOOK_BUILD_ENV = "SKINLAB_BOOK_BUILD"


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
    """True while ``python -m skinlab.course.bookbuild`` executes the chapters (progress bars off)."""
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
