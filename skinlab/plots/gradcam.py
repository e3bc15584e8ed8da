"""Grad-CAM (chapter 10): heat maps over the images, with the lesion's outline.

The picture itself is :func:`skinlab.heatmap.overlay` (its jet colour map, as
``pytorch_grad_cam.show_cam_on_image``), so the book and the ``skinlab gradcam`` command draw
the same colours for the same heat map.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from skinlab.heatmap import JET_LUT, overlay
from skinlab.plots._common import _image_axes_off, _to_display, _to_numpy

# Colour maps a heat map may use: "jet" (pytorch-grad-cam's, the default) and matplotlib's
# perceptually uniform maps, which stay readable with colour-vision deficiencies.
COLORBLIND_SAFE = ("cividis", "viridis", "magma", "inferno", "plasma")


def colormap_lut(cmap: str = "jet") -> np.ndarray:
    """(256, 3) uint8 RGB table of a heat-map colour map: ``"jet"`` (OpenCV's, as
    :data:`skinlab.heatmap.JET_LUT`) or one of :data:`COLORBLIND_SAFE`."""
    if cmap == "jet":
        return JET_LUT
    if cmap not in COLORBLIND_SAFE:
        raise ValueError(f"unknown heat-map colour map {cmap!r}: expected 'jet' or one of {COLORBLIND_SAFE}")
    table = plt.get_cmap(cmap)(np.linspace(0, 1, 256))[:, :3]
    return (table * 255).round().astype(np.uint8)


def _colorbar(fig, axes, cmap: str, label: str = "Grad-CAM heat (0 low, 1 high)"):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    mappable = ScalarMappable(Normalize(0, 1), ListedColormap(colormap_lut(cmap) / 255.0))
    bar = fig.colorbar(mappable, ax=axes, shrink=0.9, pad=0.02)
    bar.set_label(label, fontsize=9)
    return bar


def _as_list(items, item_ndim: int) -> list:
    """A list/tuple of items, one item (``item_ndim`` dims) or a stacked array -> list."""
    if isinstance(items, (list, tuple)):
        return list(items)
    arr = _to_numpy(items)
    return [arr] if arr.ndim == item_ndim else list(arr)


def _stretch(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """``cam`` resized to the image, bilinear with half-pixel centres."""
    if cam.shape == (height, width):
        return cam
    resized = Image.fromarray(cam.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def gradcam_overlays(images, cams, titles: Sequence[str] | None = None, masks=None,
                     alpha: float = 0.45, cmap: str = "jet", colorbar: bool = True) -> Figure:
    """One row per image: the image, then the Grad-CAM heatmap over it.

    ``images``: HxWx3 float in [0, 1] or uint8 (one, or a list/array of them). ``cams``: HxW in
    [0, 1], any resolution (stretched bilinearly over the image), drawn with
    :func:`skinlab.heatmap.overlay` at weight ``alpha``. ``masks``: optional lesion masks (any
    resolution, nonzero = lesion) drawn as a white contour on the overlay. ``cmap``: ``"jet"``
    or a colour-blind-safe map (:data:`COLORBLIND_SAFE`); ``colorbar`` adds its scale, as the last
    axes of the figure.
    """
    lut = colormap_lut(cmap)
    imgs = _as_list(images, 3)
    heat = _as_list(cams, 2)
    mask_list = _as_list(masks, 2) if masks is not None else None
    if not imgs:
        raise ValueError("gradcam_overlays: no images given")
    if len(heat) != len(imgs):
        raise ValueError(f"gradcam_overlays: {len(imgs)} images but {len(heat)} cams")
    if mask_list is not None and len(mask_list) != len(imgs):
        raise ValueError(f"gradcam_overlays: {len(imgs)} images but {len(mask_list)} masks")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"gradcam_overlays: {len(imgs)} images but {len(titles)} titles")

    fig, axes = plt.subplots(len(imgs), 2, squeeze=False, layout="constrained",
                             figsize=(6.6, 2.4 * len(imgs) + 0.5))
    for i, (img, cam) in enumerate(zip(imgs, heat)):
        shown = _to_display(img, name=f"images[{i}]")
        cam = _to_numpy(cam).astype(float)
        if cam.ndim != 2:
            raise ValueError(f"gradcam_overlays: cams[{i}] must be HxW, got shape {cam.shape}")
        if not np.isfinite(cam).all() or cam.min() < -1e-6 or cam.max() > 1 + 1e-6:
            raise ValueError(f"gradcam_overlays: cams[{i}] must lie in [0, 1], got range "
                             f"[{np.nanmin(cam):.3g}, {np.nanmax(cam):.3g}]")
        h, w = shown.shape[:2]
        rgb = np.dstack([shown] * 3) if shown.ndim == 2 else shown[..., :3]
        ax_img, ax_cam = axes[i]
        ax_img.imshow(shown)
        ax_cam.imshow(overlay(rgb, _stretch(cam, h, w), alpha=alpha, lut=lut))
        if mask_list is not None:
            mask = _to_numpy(mask_list[i]).astype(float)
            if mask.ndim == 3:
                mask = mask[..., 0]
            mh, mw = mask.shape
            # pixel centres of the mask in image coordinates, whatever its resolution
            xs = (np.arange(mw) + 0.5) * w / mw - 0.5
            ys = (np.arange(mh) + 0.5) * h / mh - 0.5
            if (mask > 0).any() and (mask <= 0).any():
                ax_cam.contour(xs, ys, (mask > 0).astype(float), levels=[0.5],
                               colors="white", linewidths=1.5)
        ax_img.set_title(titles[i] if titles is not None else "image", fontsize=9)
        ax_cam.set_title("Grad-CAM" + (" + lesion mask" if mask_list is not None else ""),
                         fontsize=9)
        for ax in (ax_img, ax_cam):
            _image_axes_off(ax)
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
    if colorbar:
        _colorbar(fig, axes[:, 1].tolist(), cmap)
    fig.skinlab_photo = True  # shown as JPEG in the book (see skinlab.plots.book_display)
    return fig
