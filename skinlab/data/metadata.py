"""Reading HAM10000: metadata, images, validation and the PyTorch dataset.

Where the data lives is decided by :func:`resolve_data_dir`: an explicit path, else the
``HAM10000_DIR`` environment variable, else an embedded synthetic sample generated on first use.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image, ImageFile, UnidentifiedImageError

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
IMAGE_FOLDERS = ("HAM10000_images_part_1", "HAM10000_images_part_2")
MASK_FOLDER = "HAM10000_segmentations_lesion_tschandl"
KAGGLE_COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
REQUIRED_COLUMNS = ("lesion_id", "image_id", "dx")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ENV_VAR = "HAM10000_DIR"
SYNTHETIC_NOTE = "synthetic sample"


class DataError(ValueError):
    """A problem with the user's data, worded to name the file, row or value at fault."""


# --------------------------------------------------------------------------- metadata


def _sniff_delimiter(text: str, path: Path) -> str:
    header = text.splitlines()[0] if text.strip() else ""
    # Dataverse serves an ingested tab-separated copy; spreadsheets write ';'. Accept all three.
    counts = {d: header.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        raise DataError(
            f"{path}: the header line {header[:80]!r} has no ',', ';' or tab delimiter; "
            f"expected columns {', '.join(KAGGLE_COLUMNS)}"
        )
    return best


def metadata_problems(df: pd.DataFrame, source: str = "metadata") -> list[str]:
    """Every problem in an already-parsed metadata table, one readable line each.

    Row numbers are csv line numbers (header = line 1), so a learner can open the file there.
    """
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        return [
            f"{source}: missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, df.columns))}"
        ]
    if len(df) == 0:
        return [f"{source}: has a header but no rows"]
    line = lambda i: int(i) + 2  # noqa: E731  (pandas index 0 is csv line 2)

    for col in REQUIRED_COLUMNS:
        empty = df.index[df[col].isna() | (df[col].astype(str).str.strip() == "")]
        for i in empty[:20]:
            problems.append(f"{source}, line {line(i)}: empty {col}")
        if len(empty) > 20:
            problems.append(f"{source}: … and {len(empty) - 20} more rows with an empty {col}")

    dx = df["dx"].astype(str).str.strip().str.lower()
    unknown = df.index[~dx.isin(CLASSES) & df["dx"].notna()]
    for i in unknown[:20]:
        problems.append(
            f"{source}, line {line(i)}: unknown dx {df.at[i, 'dx']!r} "
            f"(expected one of {', '.join(CLASSES)})"
        )
    if len(unknown) > 20:
        problems.append(f"{source}: … and {len(unknown) - 20} more rows with an unknown dx")

    dup = df["image_id"].duplicated(keep=False) & df["image_id"].notna()
    for image_id, rows in df[dup].groupby("image_id").groups.items():
        lines = ", ".join(str(line(i)) for i in rows)
        problems.append(f"{source}: image_id {image_id} appears more than once (lines {lines})")

    ok = df["lesion_id"].notna() & dx.isin(CLASSES)
    per_lesion = dx[ok].groupby(df.loc[ok, "lesion_id"]).agg(lambda s: sorted(set(s)))
    for lesion, labels in per_lesion.items():
        if len(labels) > 1:
            problems.append(
                f"{source}: lesion {lesion} has images with different diagnoses "
                f"({', '.join(labels)}); one lesion has one diagnosis"
            )

    if "age" in df.columns:
        age = pd.to_numeric(df["age"], errors="coerce")
        bad = df.index[age.isna() & df["age"].notna() & (df["age"].astype(str).str.strip() != "")]
        for i in bad[:20]:
            problems.append(f"{source}, line {line(i)}: age {df.at[i, 'age']!r} is not a number")
        out = df.index[(age < 0) | (age > 120)]
        for i in out[:20]:
            problems.append(f"{source}, line {line(i)}: age {df.at[i, 'age']!r} is out of range")
    return problems


def _parse_metadata_csv(csv_path: Path) -> pd.DataFrame:
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: metadata file not found")
    raw = csv_path.read_bytes()
    if not raw.strip():
        raise DataError(f"{csv_path}: the metadata file is empty")
    text = raw.decode("utf-8-sig", errors="replace")
    delimiter = _sniff_delimiter(text, csv_path)
    try:
        df = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=True)
    except (pd.errors.ParserError, csv.Error) as exc:
        raise DataError(f"{csv_path}: cannot parse as csv: {exc}") from None
    df.columns = [str(c).strip().strip('"') for c in df.columns]
    return df


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in ("lesion_id", "image_id", "dx"):
        df[col] = df[col].astype(str).str.strip()
    df["dx"] = df["dx"].str.lower()
    if "age" in df.columns:
        df["age"] = pd.to_numeric(df["age"], errors="coerce")  # missing ages are real (57 rows)
    else:
        df["age"] = np.nan
    for col in ("sex", "localization", "dx_type"):
        if col not in df.columns:
            df[col] = "unknown"
        df[col] = df[col].fillna("unknown").astype(str).str.strip().replace("", "unknown")
    df["label"] = df["dx"].map(CLASS_TO_INDEX).astype("int64")
    return df.reset_index(drop=True)


def read_metadata(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a HAM10000 metadata csv (Kaggle 7-column or Dataverse form).

    Adds a ``label`` column (index into :data:`CLASSES`). Raises :class:`DataError` naming the
    file and line of the first problems found.
    """
    csv_path = Path(csv_path)
    df = _parse_metadata_csv(csv_path)
    problems = metadata_problems(df, str(csv_path))
    if problems:
        more = f" (and {len(problems) - 1} more problems; run `skinlab data check`)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    return _normalise(df)


# --------------------------------------------------------------------------- images


def find_images(root: str | os.PathLike) -> dict[str, Path]:
    """Map image_id → file for images in the official part folders, ``images/`` or ``root``."""
    root = Path(root)
    found: dict[str, Path] = {}
    for folder in (*IMAGE_FOLDERS, "images", ""):
        d = root / folder
        if not d.is_dir():
            continue
        for entry in os.scandir(d):
            p = Path(entry.path)
            if entry.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                found.setdefault(p.stem, p)
    return found


def metadata_csv_path(root: str | os.PathLike) -> Path:
    root = Path(root)
    if root.is_file():
        return root
    candidate = root / METADATA_FILE
    if candidate.is_file():
        return candidate
    others = sorted(root.glob("*metadata*.csv")) + sorted(root.glob("*metadata*.tab"))
    if others:
        return others[0]
    raise DataError(
        f"{root}: no {METADATA_FILE} here. Point to a HAM10000 folder (see `skinlab data check`) "
        f"or set {ENV_VAR}."
    )


def load_metadata(root: str | os.PathLike, check_images: bool = True) -> pd.DataFrame:
    """Validated metadata of the dataset in ``root`` with ``label`` and ``path`` columns.

    With ``check_images`` every listed image must exist; a missing one is a :class:`DataError`.
    """
    root = Path(root)
    csv_path = metadata_csv_path(root)
    df = read_metadata(csv_path)
    images = find_images(csv_path.parent)
    df["path"] = df["image_id"].map(lambda i: str(images[i]) if i in images else None)
    if check_images:
        missing = df.loc[df["path"].isna(), "image_id"].tolist()
        if missing:
            shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
            raise DataError(
                f"{csv_path}: {len(missing)} image(s) listed in the metadata are missing "
                f"from {', '.join(IMAGE_FOLDERS)}: {shown}"
            )
    return df


def load_image(path: str | os.PathLike, draft: int | None = None) -> Image.Image:
    """Open an image as RGB; grayscale, CMYK, palette and RGBA are converted, not rejected.

    ``draft`` lets a JPEG decode at a reduced scale that still covers ``draft`` x ``draft``
    pixels, several times faster when the image is shrunk afterwards anyway.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            if draft:
                im.draft("RGB", (draft, draft))
            im.load()
            if im.format == "JPEG" and ImageFile.LOAD_TRUNCATED_IMAGES:
                _check_jpeg_end(path)
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                # Composite on white so transparent areas don't turn black.
                im = im.convert("RGBA")
                bg = Image.new("RGB", im.size, (255, 255, 255))
                bg.paste(im, mask=im.getchannel("A"))
                return bg
            return im.convert("RGB")
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: image is too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        size = path.stat().st_size if path.exists() else 0
        what = "is empty (0 bytes)" if size == 0 else "is not an image PIL can read"
        raise DataError(f"{path}: {what}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or truncated image ({exc})") from None


def _check_jpeg_end(path: Path) -> None:
    """Raise unless the JPEG ends with its end-of-image marker (FF D9).

    PIL raises on a truncated JPEG by itself, except when ``ImageFile.LOAD_TRUNCATED_IMAGES``
    has been switched on (by a notebook or another library): then it pads the missing part with
    grey silently. Every HAM10000 image ends with the marker, so its absence means truncation.
    """
    with open(path, "rb") as fp:
        fp.seek(max(0, os.path.getsize(path) - 16))
        tail = fp.read()
    if b"\xff\xd9" not in tail.rstrip(b"\x00\r\n "):
        raise DataError(f"{path}: corrupt or truncated image (no JPEG end-of-image marker)")


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """A HAM10000 segmentation mask (white = lesion) as a boolean array."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L")) > 127
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: cannot read mask ({exc})") from None


def mask_path(root: str | os.PathLike, image_id: str) -> Path:
    return Path(root) / MASK_FOLDER / f"{image_id}_segmentation.png"


class HAM10000Dataset:
    """``torch.utils.data.Dataset`` over metadata rows → ``(transform(image), label)``.

    ``metadata`` needs ``path`` and ``label`` columns (as :func:`load_metadata` returns).
    """

    def __init__(self, metadata: pd.DataFrame, transform: Callable | None = None):
        for col in ("path", "label"):
            if col not in metadata.columns:
                raise DataError(f"metadata has no {col!r} column; load it with skinlab.data.load_metadata")
        self.paths = metadata["path"].tolist()
        self.labels = metadata["label"].astype("int64").to_numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        image = load_image(self.paths[i])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[i])


# --------------------------------------------------------------------------- where data lives


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
    n_synthetic: int = 2000,
    seed: int = 0,
    progress: bool = True,
) -> DataSource:
    """Pick the dataset: ``path``, else ``$HAM10000_DIR``, else the embedded synthetic sample.

    The synthetic sample is generated once into the skinlab cache (``$SKINLAB_CACHE`` or
    ``~/.cache/skinlab``); it is marked by a ``SYNTHETIC`` file so it is never mistaken for HAM10000.
    """
    chosen = path or os.environ.get(ENV_VAR) or None
    if chosen:
        root = Path(chosen).expanduser()
        if not root.exists():
            source = "argument" if path else f"${ENV_VAR}"
            raise DataError(f"{root}: dataset folder from the {source} does not exist")
        return DataSource(root, synthetic=(root / "SYNTHETIC").exists())
    root = cache_dir() / f"synthetic-ham10000-n{n_synthetic}-seed{seed}"
    if not (root / METADATA_FILE).is_file():
        from skinlab.synthetic import make_synthetic_ham10000

        make_synthetic_ham10000(root, n_images=n_synthetic, seed=seed, progress=progress, overwrite=True)
    (root / "SYNTHETIC").touch()
    return DataSource(root, synthetic=True)


def make_synthetic_ham10000(root, n_images: int = 1000, seed: int = 0, **kwargs) -> Path:
    """Write a synthetic HAM10000-format dataset (see :mod:`skinlab.synthetic`)."""
    from skinlab.synthetic import make_synthetic_ham10000 as _make

    out = Path(_make(root, n_images=n_images, seed=seed, **kwargs))
    (out / "SYNTHETIC").touch()
    return out


# --------------------------------------------------------------------------- checking a folder


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


def summarize(metadata: pd.DataFrame) -> dict:
    """Counts a learner wants first: images, lesions and images per class in class order."""
    counts = metadata["dx"].value_counts()
    return {
        "images": int(len(metadata)),
        "lesions": int(metadata["lesion_id"].nunique()),
        "classes": {c: int(counts.get(c, 0)) for c in CLASSES},
    }


def labels_of(metadata: pd.DataFrame) -> np.ndarray:
    return metadata["label"].to_numpy(dtype=np.int64)


def subset(metadata: pd.DataFrame, split: pd.Series, name: str) -> pd.DataFrame:
    """Rows of ``metadata`` whose split is ``name`` (index reset)."""
    return metadata[split.reindex(metadata.index) == name].reset_index(drop=True)
