"""What every figure shares: class colours, input checks and conversions, and saving."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from skinlab.atomic import atomic_write
from skinlab.data import CLASSES

SPLIT_COLORS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868", "overall": "#7f7f7f"}


def class_color(code: str):
    """The colour of one class (tab10, in ``CLASSES`` order), shared by all figures."""
    return plt.get_cmap("tab10")(CLASSES.index(code))


def _new_axes(ax, figsize):
    if ax is None:
        return plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def _require_columns(metadata: pd.DataFrame, columns: Sequence[str], func: str) -> None:
    if not isinstance(metadata, pd.DataFrame):
        raise TypeError(f"{func}: metadata must be a pandas DataFrame, "
                        f"got {type(metadata).__name__}")
    missing = [c for c in columns if c not in metadata.columns]
    if missing:
        raise ValueError(
            f"{func}: metadata lacks column(s) {missing}; it has {list(metadata.columns)}"
        )


def _check_dx(metadata: pd.DataFrame, func: str) -> None:
    bad = sorted(set(metadata["dx"].dropna().astype(str)) - set(CLASSES))
    if bad or metadata["dx"].isna().any():
        rows = metadata.index[~metadata["dx"].isin(CLASSES)][:5].tolist()
        raise ValueError(
            f"{func}: column 'dx' has values outside {CLASSES}: {bad or ['<missing>']} "
            f"(first rows: {rows})"
        )


def _dx_counts(metadata: pd.DataFrame) -> pd.Series:
    """Counts per class in ``CLASSES`` order, zeros included."""
    return metadata["dx"].value_counts().reindex(list(CLASSES), fill_value=0).astype(int)


def _to_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor, without importing torch
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _class_vector(values, name: str, class_names: Sequence[str] = CLASSES) -> np.ndarray:
    """A dict code -> value, or a sequence/array/tensor in class order -> float array."""
    if isinstance(values, Mapping):
        missing = [c for c in class_names if c not in values]
        if missing:
            raise ValueError(f"{name}: missing class(es) {missing}; got keys {list(values)}")
        return np.array([float(values[c]) for c in class_names], dtype=float)
    arr = _to_numpy(values).astype(float).ravel()
    if arr.shape != (len(class_names),):
        raise ValueError(
            f"{name}: expected {len(class_names)} values (one per class in {tuple(class_names)}), "
            f"got shape {_to_numpy(values).shape}"
        )
    return arr


def _to_display(image, mean=None, std=None, name: str = "image") -> np.ndarray:
    """PIL image, tensor (C,H,W) or array (H,W[,C]) -> float array in [0, 1] for ``imshow``.

    ``mean``/``std`` undo a ``Normalize`` on tensors/float arrays before clipping.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=float) / 255.0
    is_tensor = hasattr(image, "detach")
    arr = _to_numpy(image)
    if arr.ndim == 3 and is_tensor and arr.shape[0] in (1, 3):
        arr = np.transpose(arr, (1, 2, 0))  # C,H,W -> H,W,C
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"{name}: expected an HxW or HxWx3 image (or 3xHxW tensor), "
                         f"got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(float) / 255.0
    arr = arr.astype(float)
    if mean is not None or std is not None:
        mean_ = np.asarray(mean if mean is not None else 0.0, dtype=float)
        std_ = np.asarray(std if std is not None else 1.0, dtype=float)
        arr = arr * std_ + mean_  # broadcasts over the channel axis (last)
    return np.clip(arr, 0.0, 1.0)


def _image_axes_off(ax) -> None:
    """Hide ticks and frame but keep the y label (``axis('off')`` would hide it too)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def save_figure(fig: Figure, path) -> Path:
    """Write ``fig`` as PNG (dpi 120) atomically, creating parent folders; close the figure."""
    try:
        with atomic_write(path) as handle:
            fig.savefig(handle, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def _photo_jpeg(fig: Figure, quality: int = 82) -> bytes | None:
    if not getattr(fig, "skinlab_photo", False):
        return None
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    buf.seek(0)
    out = io.BytesIO()
    Image.open(buf).convert("RGB").save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def book_display(ipython=None) -> bool:
    """In a Jupyter kernel: show figures of photographs (those with ``fig.skinlab_photo = True``)
    as JPEG, and every other figure as PNG, so that no picture of the book weighs more than a few
    hundred kB. Returns whether a kernel was found to configure."""
    if ipython is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ipython = get_ipython()
    if ipython is None or not hasattr(ipython, "display_formatter"):
        return False
    import matplotlib

    if "inline" in str(matplotlib.get_backend()):  # let the inline backend register its formatters first
        import matplotlib_inline.backend_inline  # noqa: F401
    formatters = ipython.display_formatter.formatters
    png = formatters["image/png"]
    if getattr(png.type_printers.get(Figure), "_skinlab", False):
        return True
    default_png = png.lookup_by_type(Figure) if Figure in png.type_printers else None

    def as_png(fig):
        if getattr(fig, "skinlab_photo", False):
            return None
        if default_png is not None:
            return default_png(fig)
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()

    as_png._skinlab = True
    png.for_type(Figure, as_png)
    formatters["image/jpeg"].for_type(Figure, _photo_jpeg)
    return True
