"""Tests for skinlab.heatmap: the jet colour map (OpenCV's as the oracle) and the blend
(pytorch-grad-cam's ``show_cam_on_image`` as the oracle)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from skinlab.heatmap import JET_LUT, overlay


def test_jet_lut_matches_opencv_within_one_level():
    cv2 = pytest.importorskip("cv2")
    levels = np.arange(256, dtype=np.uint8)[None]
    ref = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)[0]
    diff = np.abs(JET_LUT.astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff > 0).sum() <= 2


def test_overlay_matches_show_cam_on_image():
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rng = np.random.default_rng(0)
    rgb = rng.random((20, 30, 3)).astype(np.float32)
    cam = rng.random((20, 30)).astype(np.float32)
    for alpha in (0.5, 0.3):
        ours = overlay(rgb, cam, alpha=alpha)
        assert ours.shape == (20, 30, 3) and ours.dtype == np.float32
        assert ours.min() >= 0 and ours.max() == pytest.approx(1)
        ref = show_cam_on_image(rgb, cam, use_rgb=True, image_weight=1 - alpha)
        # The reference truncates to uint8 (< 1 level) and its LUT differs by <= 1 level once.
        assert np.abs(ours * 255 - ref.astype(np.float32)).max() < 2


def test_overlay_bad_input():
    rgb = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="float"):
        overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        overlay(rgb + 2, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="does not match"):
        overlay(rgb, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="alpha"):
        overlay(rgb, np.zeros((4, 4)), alpha=1.5)


def test_colouring_is_its_own_module_apart_from_the_cam_maths():
    """The colouring needs neither torch nor matplotlib, and the Grad-CAM module no longer holds it."""
    import skinlab.gradcam

    assert not hasattr(skinlab.gradcam, "overlay") and not hasattr(skinlab.gradcam, "JET_LUT")
    code = "import sys, skinlab.heatmap; print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
