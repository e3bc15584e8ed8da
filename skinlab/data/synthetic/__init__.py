"""A synthetic HAM10000: same files, same metadata statistics, procedurally drawn lesions.

`make_synthetic_ham10000(root)` writes a folder laid out exactly like the official download
(`HAM10000_metadata.csv`, `HAM10000_images_part_1/`, `HAM10000_images_part_2/`,
`HAM10000_segmentations_lesion_tschandl/`), so every chapter of the course runs without the
licensed data. The metadata follow the real data's statistics, measured once from the real
`HAM10000_metadata.csv` and embedded below (`REAL_STATS`); the images are dermoscopy-like
drawings whose colour, size, border and texture depend on the class, with enough jitter between
lesions that a small CNN learns them well but not perfectly. Because the lesion is drawn, its
segmentation mask is exact.

Everything is deterministic: the metadata come from `seed`, each lesion's look from
`(seed, lesion number)` and each picture's view from `(seed, image number)`, so `workers` does
not change a single byte.
"""

from skinlab.data.layout import KAGGLE_COLUMNS as CSV_COLUMNS
from skinlab.data.synthetic.folder import make_synthetic_ham10000
from skinlab.data.synthetic.lesions import LOOKS, MIMIC_RATE, MIMICS, render_lesion
from skinlab.data.synthetic.statistics import (
    IMAGE_ID_START,
    LESION_ID_START,
    MIN_LESIONS_PER_CLASS,
    REAL_STATS,
    synthetic_metadata_rows,
)

__all__ = [
    "make_synthetic_ham10000",
    "synthetic_metadata_rows",
    "render_lesion",
    "REAL_STATS",
    "CSV_COLUMNS",
    "IMAGE_ID_START",
    "LESION_ID_START",
    "MIN_LESIONS_PER_CLASS",
    "LOOKS",
    "MIMICS",
    "MIMIC_RATE",
]
