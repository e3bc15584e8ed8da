"""HAM10000: its layout, metadata, images, the image cache, the download and a synthetic sample.

Where the data lives is decided by :func:`resolve_data_dir`: an explicit path, else the
``HAM10000_DIR`` environment variable (:data:`ENV_VAR`), else an embedded synthetic sample
generated on first use.

One module per concern; the names the book, the exercises and the CLI use are all importable
from here (``from skinlab import data; data.load_metadata(...)``):

* :mod:`skinlab.data.layout`: class codes, file and folder names, csv columns, :class:`DataError`;
* :mod:`skinlab.data.metadata`: reading and validating ``HAM10000_metadata.csv``;
* :mod:`skinlab.data.images`: finding and decoding images and masks, :class:`HAM10000Dataset`;
* :mod:`skinlab.data.check`: every problem of a dataset folder (``skinlab data check``);
* :mod:`skinlab.data.source`: which dataset to use, the synthetic sample's size and seed;
* :mod:`skinlab.data.cache`: images decoded once into a uint8 cache (imports torch);
* :mod:`skinlab.data.download`: fetching HAM10000 from Harvard Dataverse (on pooch);
* :mod:`skinlab.data.synthetic`: the synthetic HAM10000 (statistics, drawing, writing).
"""

from skinlab.data.check import check_dataset
from skinlab.data.images import HAM10000Dataset, find_images, load_image, load_mask
from skinlab.data.layout import (
    ARCHIVES,
    CLASS_NAMES,
    CLASS_TO_INDEX,
    CLASSES,
    ENV_VAR,
    IMAGE_FOLDERS,
    IMAGE_SUFFIXES,
    KAGGLE_COLUMNS,
    MASK_FOLDER,
    MASK_SUFFIX,
    METADATA_FILE,
    NUM_CLASSES,
    REQUIRED_COLUMNS,
    SYNTHETIC_MARKER,
    DataError,
    mask_path,
)
from skinlab.data.metadata import (
    labels_of,
    load_metadata,
    metadata_csv_path,
    metadata_problems,
    read_metadata,
    subset,
    summarize,
)
from skinlab.data.source import (
    SYNTHETIC_NOTE,
    SYNTHETIC_SAMPLE_SEED,
    SYNTHETIC_SAMPLE_SIZE,
    DataSource,
    cache_dir,
    resolve_data_dir,
)
from skinlab.data.synthetic import make_synthetic_ham10000

__all__ = [
    "ARCHIVES", "CLASS_NAMES", "CLASS_TO_INDEX", "CLASSES", "ENV_VAR", "IMAGE_FOLDERS",
    "IMAGE_SUFFIXES", "KAGGLE_COLUMNS", "MASK_FOLDER", "MASK_SUFFIX", "METADATA_FILE",
    "NUM_CLASSES", "REQUIRED_COLUMNS", "SYNTHETIC_MARKER", "SYNTHETIC_NOTE", "SYNTHETIC_SAMPLE_SEED",
    "SYNTHETIC_SAMPLE_SIZE", "DataError", "DataSource", "HAM10000Dataset", "cache_dir",
    "check_dataset", "find_images", "labels_of", "load_image", "load_mask", "load_metadata",
    "make_synthetic_ham10000", "mask_path", "metadata_csv_path", "metadata_problems",
    "read_metadata", "resolve_data_dir", "subset", "summarize",
]
