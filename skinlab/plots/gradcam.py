"""Grad-CAM (chapter 10): heat maps over the images, with the lesion's outline."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from skinlab.plots._common import _image_axes_off, _to_display, _to_numpy


def _as_list(items, item_ndim: int) -> list:
    """A list/tuple of items, one item (``item_ndim`` dims) or a stacked array -> list."""
    if isinstance(items, (list, tuple)):
        return list(items)
    arr = _to_numpy(items)
    return [arr] if arr.ndim == item_ndim else list(arr)


def gradcam_overlays(images, cams, titles: Sequence[str] | None = None, masks=None,
                     alpha: float = 0.45, cmap: str = "jet") -> Figure:
    """One row per image: the image, then the Grad-CAM heatmap over it (``cmap``, ``alpha``).

    ``images``: HxWx3 float in [0, 1] or uint8 (one, or a list/array of them). ``cams``: HxW in
    [0, 1], any resolution (stretched over the image). ``masks``: optional lesion masks (any
    resolution, nonzero = lesion) drawn as a white contour on the overlay.
    """
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
                             figsize=(6.4, 2.6 * len(imgs) + 0.5))
    for i, (img, cam) in enumerate(zip(imgs, heat)):
        shown = _to_display(img, name=f"images[{i}]")
        cam = _to_numpy(cam).astype(float)
        if cam.ndim != 2:
            raise ValueError(f"gradcam_overlays: cams[{i}] must be HxW, got shape {cam.shape}")
        if not np.isfinite(cam).all() or cam.min() < -1e-6 or cam.max() > 1 + 1e-6:
            raise ValueError(f"gradcam_overlays: cams[{i}] must lie in [0, 1], got range "
                             f"[{np.nanmin(cam):.3g}, {np.nanmax(cam):.3g}]")
        h, w = shown.shape[:2]
        extent = (-0.5, w - 0.5, h - 0.5, -0.5)  # the image's own pixel extent
        ax_img, ax_cam = axes[i]
        ax_img.imshow(shown)
        ax_cam.imshow(shown)
        ax_cam.imshow(cam, cmap=cmap, alpha=alpha, vmin=0, vmax=1, extent=extent,
                      interpolation="bilinear")
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
    return fig
