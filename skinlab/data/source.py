"""Where the data lives: an explicit folder, else ``$HAM10000_DIR``, else the synthetic sample."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from skinlab.data.layout import ENV_VAR, METADATA_FILE, SYNTHETIC_MARKER, DataError

SYNTHETIC_SAMPLE_SIZE = 2000
"""Images in the synthetic sample used when no dataset is given (CLI, pipeline and book)."""
SYNTHETIC_SAMPLE_SEED = 0
"""The sample's own seed: the same sample whatever seed a training run uses."""
SYNTHETIC_NOTE = "synthetic sample"


@dataclass(frozen=True)
class DataSource:
    root: Path
    synthetic: bool

    @property
    def description(self) -> str:
        if self.synthetic:
            return f"{SYNTHETIC_NOTE} at {self.root} (not HAM10000: numbers are for illustration only)"
        return f"HAM10000 at {self.root}"


def cache_dir() -> Path:
    return Path(os.environ.get("SKINLAB_CACHE", Path.home() / ".cache" / "skinlab"))


def resolve_data_dir(
    path: str | os.PathLike | None = None,
    n_synthetic: int = SYNTHETIC_SAMPLE_SIZE,
    progress: bool = True,
) -> DataSource:
    """Pick the dataset: ``path``, else ``$HAM10000_DIR``, else the embedded synthetic sample.

    The synthetic sample is generated once into the skinlab cache (``$SKINLAB_CACHE`` or
    ``~/.cache/skinlab``) from its own seed (:data:`SYNTHETIC_SAMPLE_SEED`), never a training
    seed: runs with different seeds train on the same data. It is marked by a ``SYNTHETIC`` file
    so it is never mistaken for HAM10000.
    """
    chosen = path or os.environ.get(ENV_VAR) or None
    if chosen:
        root = Path(chosen).expanduser()
        if not root.exists():
            source = "argument" if path else f"${ENV_VAR}"
            raise DataError(f"{root}: dataset folder from the {source} does not exist")
        return DataSource(root, synthetic=(root / SYNTHETIC_MARKER).exists())
    seed = SYNTHETIC_SAMPLE_SEED
    root = cache_dir() / f"synthetic-ham10000-n{n_synthetic}-seed{seed}"
    if not (root / METADATA_FILE).is_file():
        from skinlab.atomic import exclusive
        from skinlab.data.synthetic import make_synthetic_ham10000

        # Several processes may ask at once (test workers, the book's kernels): one makes it,
        # the others wait and find it made (overwrite=True would delete a sample half-written).
        with exclusive(root):
            if not (root / METADATA_FILE).is_file():
                make_synthetic_ham10000(root, n_images=n_synthetic, seed=seed, progress=progress, overwrite=True)
    (root / SYNTHETIC_MARKER).touch()  # folders made before the writer marked them itself
    return DataSource(root, synthetic=True)
