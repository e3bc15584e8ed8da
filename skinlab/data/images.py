"""Reading HAM10000's pictures: finding them, decoding them safely, masks, the PyTorch dataset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image, ImageFile, UnidentifiedImageError

from skinlab.data.layout import IMAGE_FOLDERS, IMAGE_SUFFIXES, DataError


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
    """A HAM10000 segmentation mask (white = lesion) as a boolean array (H, W).

    A missing file is a :class:`FileNotFoundError`; one that cannot be decoded a :class:`DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"segmentation mask not found: {path}")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L")) > 127
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: cannot read mask ({exc})") from None


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

