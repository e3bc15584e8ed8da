"""skinlab: the reference package of the skinlab course (HAM10000 skin-lesion classification).

One module per step of the course: ``data``, ``split``, ``balance``, ``presets``, ``models``,
``engine``, ``metrics``, ``gradcam``, ``plots``; ``pipeline`` and ``cli`` tie them together.
"""

__version__ = "0.1.0"

from skinlab.data import CLASS_NAMES, CLASSES, NUM_CLASSES  # noqa: E402,F401
