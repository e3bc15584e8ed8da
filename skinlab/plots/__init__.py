"""Figures for the course, one module per chapter topic; every name is also ``skinlab.plots.X``.

=========================  ==============================================================
``plots.eda``               chapters 2-4: class counts, metadata, age, split shares, weights
``plots.images``            chapter 5: sample grid per class, augmentation draws
``plots.training``          chapters 7, 8, 12: training curves, learning rates compared
``plots.evaluation``        chapters 9, 11, 12: confusion matrices, recall, models compared
``plots.gradcam``           chapter 10: Grad-CAM heat maps over the images
=========================  ==============================================================

Every function returns a matplotlib ``Figure`` and never calls ``plt.show()``: in Jupyter the
figure displays itself, in scripts pass it to :func:`save_figure`. Classes are always drawn in
the order of ``CLASSES`` and with one colour per class, the same in every figure.
"""

from __future__ import annotations

from skinlab.data import CLASS_NAMES, CLASSES
from skinlab.plots._common import book_display, class_color, save_figure
from skinlab.plots.eda import age_by_class, class_distribution, class_weights, metadata_overview, split_shares
from skinlab.plots.evaluation import compare_models, confusion_matrices, per_class_recall
from skinlab.plots import views
from skinlab.plots.diagrams import dermoscopic_example, lenet_diagram
from skinlab.plots.gradcam import COLORBLIND_SAFE, colormap_lut, gradcam_overlays
from skinlab.plots.images import augmentation_examples, image_grid
from skinlab.plots.training import lr_comparison, training_curves

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "class_color",
    "class_distribution",
    "metadata_overview",
    "age_by_class",
    "split_shares",
    "class_weights",
    "image_grid",
    "augmentation_examples",
    "training_curves",
    "confusion_matrices",
    "per_class_recall",
    "gradcam_overlays",
    "lr_comparison",
    "compare_models",
    "save_figure",
    "book_display",
    "colormap_lut",
    "COLORBLIND_SAFE",
    "lenet_diagram",
    "dermoscopic_example",
    "views",
]
