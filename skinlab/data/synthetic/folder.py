"""Writing the synthetic sample: a folder laid out exactly like the official HAM10000 download."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from skinlab.data.layout import (
    CLASSES,
    IMAGE_FOLDERS,
    KAGGLE_COLUMNS,
    MASK_FOLDER,
    MASK_SUFFIX,
    METADATA_FILE,
    SYNTHETIC_MARKER,
    mask_path,
)
from skinlab.data.synthetic.lesions import _check_size, render_lesion
from skinlab.data.synthetic.statistics import (
    IMAGE_ID_START,
    MIN_LESIONS_PER_CLASS,
    SYNTHETIC_ID,
    _check_int,
    synthetic_metadata_rows,
)

# Files of this writer (ids from ISIC_1000000): the only ones it ever deletes.
SYNTHETIC_FILE = re.compile(rf"ISIC_1\d{{6}}(\.jpg|{re.escape(MASK_SUFFIX)})")


def _render_job(job) -> int:
    """Worker: draw and save one image and its mask (job = tuple, picklable)."""
    dx, seed, lesion_index, image_number, size, image_path, mask_file = job
    rgb, mask = render_lesion(dx, (seed, 1, lesion_index), (seed, 2, image_number), size)
    # Same bytes on every run: no timestamps or metadata in JPEG or PNG.
    Image.fromarray(rgb).save(image_path, "JPEG", quality=90)
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_file, "PNG")
    return image_number


def _prepare_root(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root} exists and is not a folder")
    csv_path = root / METADATA_FILE
    if csv_path.exists():
        if not overwrite:
            raise FileExistsError(
                f"{root} already holds {METADATA_FILE}; pass overwrite=True to replace it")
        with open(csv_path, newline="") as f:
            foreign = [r.get("image_id") for r in csv.DictReader(f)
                       if not SYNTHETIC_ID.fullmatch(r.get("image_id") or "")]
        if foreign:
            raise FileExistsError(
                f"{csv_path} lists non-synthetic images (e.g. {foreign[0]!r}); refusing to "
                "overwrite what may be the real data")
        csv_path.unlink()  # first, so an interrupted rewrite never looks complete
    root.mkdir(parents=True, exist_ok=True)
    # Files of an earlier or interrupted synthetic run would linger as images without metadata;
    # only our own id range is removed, anything else in the folders is left alone.
    for name in (*IMAGE_FOLDERS, MASK_FOLDER):
        folder = root / name
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            if SYNTHETIC_FILE.fullmatch(old.name):
                old.unlink()


def make_synthetic_ham10000(root, n_images: int = 1000, seed: int = 0,
                            image_size=(200, 150), progress: bool = True, workers: int = 1,
                            overwrite: bool = False) -> Path:
    """Write a synthetic HAM10000 (official layout, real-like metadata) into `root`.

    Writes JPEGs `ISIC_1xxxxxx.jpg` (the first half of the ids in `HAM10000_images_part_1/`, the
    rest in `_part_2/`), exact lesion masks `HAM10000_segmentations_lesion_tschandl/
    ISIC_x_segmentation.png` (white = lesion, image size), a README, the `SYNTHETIC` marker and,
    last, the 7-column `HAM10000_metadata.csv`. `image_size` is (width, height); `workers` > 1 draws in parallel
    processes with identical output. Refuses a folder that already holds a metadata csv unless
    `overwrite=True` (and then only one made by this function). Returns `root` as a Path.
    """
    from tqdm.auto import tqdm

    _check_int("n_images", n_images, minimum=MIN_LESIONS_PER_CLASS * len(CLASSES))
    _check_int("seed", seed, minimum=0)
    _check_int("workers", workers, minimum=1)
    size = _check_size(image_size)
    root = Path(root)
    rows = synthetic_metadata_rows(n_images, seed)
    _prepare_root(root, overwrite)

    split_at = (n_images + 1) // 2  # real: 5,000 / 5,015, by image id order
    jobs = []
    for row in sorted(rows, key=lambda r: r["image_id"]):
        number = int(row["image_id"][5:]) - IMAGE_ID_START
        folder = IMAGE_FOLDERS[0] if number < split_at else IMAGE_FOLDERS[1]
        jobs.append((row["dx"], seed, row["lesion_index"], number, size,
                     str(root / folder / f"{row['image_id']}.jpg"),
                     str(mask_path(root, row["image_id"]))))

    with tqdm(total=len(jobs), desc="synthetic HAM10000", unit="img",
              disable=not progress) as bar:
        if workers == 1:
            for job in jobs:
                _render_job(job)
                bar.update()
        else:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(_render_job, jobs, chunksize=16):
                    bar.update()

    counts = {c: sum(r["dx"] == c for r in rows) for c in CLASSES}
    (root / "README.md").write_text(
        "# Synthetic HAM10000 sample (not real patients)\n\n"
        "Made by `skinlab.data.make_synthetic_ham10000` for teaching and tests: "
        "procedurally drawn dermoscopy-like images with exact lesion masks, and metadata that "
        "follow the statistics of the real HAM10000.\n\n"
        f"- seed: {seed}\n- images: {n_images}\n"
        f"- lesions: {len({r['lesion_id'] for r in rows})}\n"
        f"- image size: {size[0]}x{size[1]}\n"
        f"- per class: {', '.join(f'{c} {counts[c]}' for c in CLASSES)}\n\n"
        "Ids start at ISIC_1000000 / HAM_1000000, outside the real ranges. Do not use these "
        "images to draw any medical conclusion.\n")

    (root / SYNTHETIC_MARKER).touch()  # never to be mistaken for HAM10000

    # The csv last, atomically: its presence means the dataset is complete.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(KAGGLE_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in KAGGLE_COLUMNS])
    tmp = root / (METADATA_FILE + ".tmp")
    tmp.write_text(buffer.getvalue())
    os.replace(tmp, root / METADATA_FILE)
    return root
