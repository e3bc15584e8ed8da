"""What HAM10000 looks like on disk: the classes, the file and folder names, the csv columns.

Every other module (reading, checking, downloading, the synthetic sample) takes these names from
here, so the layout is written once.
"""

from __future__ import annotations

import os
from pathlib import Path

CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
"""The one class order used everywhere (ImageFolder's alphabetical order, DermaMNIST's too)."""

CLASS_NAMES: dict[str, str] = {
    "akiec": "Actinic keratoses and intraepithelial carcinoma (Bowen's disease)",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis-like lesions",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevi",
    "vasc": "Vascular lesions",
}
NUM_CLASSES = len(CLASSES)
CLASS_TO_INDEX = {c: i for i, c in enumerate(CLASSES)}

METADATA_FILE = "HAM10000_metadata.csv"
METADATA_STEM = METADATA_FILE.removesuffix(".csv")  # Dataverse also serves it as a .tab
IMAGE_FOLDERS = ("HAM10000_images_part_1", "HAM10000_images_part_2")
MASK_FOLDER = "HAM10000_segmentations_lesion_tschandl"
MASK_SUFFIX = "_segmentation.png"  # ISIC_0024306.jpg -> ISIC_0024306_segmentation.png
ARCHIVES = tuple(f"{folder}.zip" for folder in (*IMAGE_FOLDERS, MASK_FOLDER))
"""The official download: one zip per folder, each unpacking into the folder of its name."""

KAGGLE_COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
REQUIRED_COLUMNS = ("lesion_id", "image_id", "dx")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

ENV_VAR = "HAM10000_DIR"
"""The environment variable naming the dataset folder (else the synthetic sample is used)."""
SYNTHETIC_MARKER = "SYNTHETIC"
"""A file of this name marks a synthetic folder, so it is never mistaken for HAM10000."""


class DataError(ValueError):
    """A problem with the user's data, worded to name the file, row or value at fault."""

    __module__ = "skinlab.data"  # its public name, as tracebacks print it


def mask_path(root: str | os.PathLike, image_id: str) -> Path:
    """Where the segmentation mask of ``image_id`` lives in a dataset folder."""
    return Path(root) / MASK_FOLDER / f"{image_id}{MASK_SUFFIX}"
