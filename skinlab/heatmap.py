"""A heat map drawn over its image: the jet colour map and the blend (:func:`overlay`).

Kept apart from the Grad-CAM maths (:mod:`skinlab.gradcam`), as pytorch-grad-cam keeps
``utils/image.py`` (``show_cam_on_image``) apart from its CAM methods: any map in [0, 1] is
coloured the same way, and the figures (:mod:`skinlab.plots.gradcam`, the book's views) and the
``skinlab gradcam`` command draw the same colours for the same map. No torch, no matplotlib.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["JET_LUT", "overlay"]


def _jet_lut() -> np.ndarray:
    # The classic piecewise-linear jet on 256 levels; equals OpenCV's COLORMAP_JET (used by
    # pytorch_grad_cam.show_cam_on_image) to within 1/255. matplotlib's "jet" differs by up to
    # 33/255, so it is not used.
    i = np.arange(256)
    channels = [
        np.minimum(4 * i - lo, hi - 4 * i) for lo, hi in ((382, 1148), (128, 892), (-128, 638))
    ]
    return np.clip(np.stack(channels, axis=1), 0, 255).astype(np.uint8)


JET_LUT: np.ndarray = _jet_lut()
"""(256, 3) uint8 RGB jet colour map."""


def overlay(image_rgb01, cam: np.ndarray, alpha: float = 0.5, lut: np.ndarray | None = None) -> np.ndarray:
    """Jet heat map of ``cam`` blended over an RGB image: float32 (H, W, 3) in [0, 1].

    ``lut``: another colour map as a (256, 3) uint8 RGB table (default :data:`JET_LUT`), e.g. a
    colour-blind-safe one (``skinlab.plots.gradcam.colormap_lut("cividis")``).

    ``image_rgb01`` is a float array (H, W, 3) in [0, 1] (or a PIL image); ``alpha`` is the heat
    map's weight. Like ``pytorch_grad_cam.utils.image.show_cam_on_image(..., use_rgb=True,
    image_weight=1 - alpha)`` (which returns the same picture as uint8), the blend is rescaled so
    that its brightest value is 1.
    """
    if isinstance(image_rgb01, Image.Image):
        image_rgb01 = np.asarray(image_rgb01.convert("RGB"), dtype=np.float32) / 255
    image = np.asarray(image_rgb01)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image_rgb01 must have shape (H, W, 3); got {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"image_rgb01 must be a float array in [0, 1]; got dtype {image.dtype} "
            "(divide uint8 images by 255)"
        )
    if image.size and (image.min() < 0 or image.max() > 1):
        raise ValueError(
            f"image_rgb01 must lie in [0, 1]; got range [{image.min()}, {image.max()}]"
        )
    cam = np.asarray(cam)
    if cam.shape != image.shape[:2]:
        raise ValueError(f"cam shape {cam.shape} does not match image shape {image.shape[:2]}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    table = JET_LUT if lut is None else np.asarray(lut)
    if table.shape != (256, 3):
        raise ValueError(f"lut must be a (256, 3) RGB table; got shape {table.shape}")
    levels = np.uint8(255 * np.clip(cam, 0, 1))  # truncation, as show_cam_on_image does
    heatmap = table[levels].astype(np.float32) / 255
    blend = alpha * heatmap + (1 - alpha) * image.astype(np.float32)
    peak = blend.max()
    if peak > 0:
        blend = blend / peak
    return blend.astype(np.float32)
