"""Every problem with a dataset folder at once, as readable lines (``skinlab data check``)."""

from __future__ import annotations

import os
from pathlib import Path

from skinlab.data.images import find_images, load_image
from skinlab.data.layout import METADATA_FILE, DataError
from skinlab.data.metadata import _parse_metadata_csv, metadata_csv_path, metadata_problems


def check_dataset(root: str | os.PathLike, verify_images: bool = True, progress: bool = False) -> list[str]:
    """Every problem with a dataset folder, as readable lines (an empty list means it is fine).

    Checks the metadata (columns, dx values, duplicates, lesions with two diagnoses, ages),
    listed images that are missing, images with no metadata row and, with ``verify_images``,
    images that cannot be decoded.
    """
    root = Path(root)
    if not root.exists():
        return [f"{root}: folder does not exist"]
    problems: list[str] = []
    ids: set[str] | None = None  # None: the csv is unreadable, so only the images can be checked
    try:
        csv_path = metadata_csv_path(root)
        df = _parse_metadata_csv(csv_path)
    except DataError as exc:
        problems.append(str(exc))
        csv_path = (root if root.is_dir() else root.parent) / METADATA_FILE
    else:
        problems += metadata_problems(df, str(csv_path))
        if "image_id" in df.columns:
            ids = set(df["image_id"].dropna().astype(str).str.strip())
    images = find_images(csv_path.parent)
    if ids:  # (a header-only csv is one problem, not one per image)
        missing = sorted(ids - images.keys())
        for image_id in missing[:50]:
            problems.append(f"{image_id}: listed in {csv_path.name} but no image file found")
        if len(missing) > 50:
            problems.append(f"… and {len(missing) - 50} more listed images missing")
        extra = sorted(images.keys() - ids)
        for image_id in extra[:50]:
            problems.append(f"{images[image_id]}: image has no row in {csv_path.name}")
        if len(extra) > 50:
            problems.append(f"… and {len(extra) - 50} more images without a metadata row")
    if verify_images:
        from tqdm.auto import tqdm

        present = [images[i] for i in sorted(images.keys() if ids is None else ids & images.keys())]
        for p in tqdm(present, desc="checking images", unit="img", disable=not progress):
            try:
                load_image(p)
            except DataError as exc:
                problems.append(str(exc))
    return problems

