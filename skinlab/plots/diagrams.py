"""Pictures drawn by code: the LeNet architecture (chapter 6) and dermoscopic examples (chapter 1).

Both are made when the book is built, from the model and the data themselves: the diagram's
shapes come from a forward pass through the model, the pictures from the dataset folder (whose
licence forbids copying its images into the repository).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from skinlab.data import CLASS_NAMES, CLASSES
from skinlab.plots._common import _check_dx, _image_axes_off, _require_columns, _to_display


def layer_shapes(model, input_size: int = 32) -> list[tuple[str, str, tuple[int, ...]]]:
    """``(name, kind, output shape without the batch)`` of each layer of ``model.features`` and
    ``model.classifier`` (a LeNet-like model), from a forward pass of one zero image; the first
    entry is the input."""
    import torch
    from torch import nn

    for part in ("features", "classifier"):
        if not isinstance(getattr(model, part, None), nn.Sequential):
            raise TypeError(f"layer_shapes: the model needs an nn.Sequential `{part}` "
                            f"(as skinlab.models.LeNet), got {type(model).__name__}")
    shapes = [("input", "input", (3, input_size, input_size))]
    with torch.no_grad():
        x = torch.zeros(1, 3, input_size, input_size)
        for name, layer in model.features.named_children():
            x = layer(x)
            shapes.append((name, type(layer).__name__, tuple(x.shape[1:])))
        x = torch.flatten(x, 1)
        shapes.append(("flatten", "Flatten", tuple(x.shape[1:])))
        for name, layer in model.classifier.named_children():
            x = layer(x)
            shapes.append((name, type(layer).__name__, tuple(x.shape[1:])))
    return shapes


def _describe(kind: str, layer) -> str:
    if kind == "Conv2d":
        k = layer.kernel_size
        return f"conv {k[0]}x{k[1]}\n+ ReLU"
    if kind == "MaxPool2d":
        k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
        return f"max-pool\n{k}x{k}"
    if kind == "Linear":
        return "fully\nconnected"
    return kind


def lenet_diagram(model=None, input_size: int = 32) -> Figure:
    """The architecture of ``model`` (default: a fresh ``skinlab.models.LeNet``) as blocks: each
    feature map as a stack of squares (side proportional to its size, labelled HxW and channels),
    each fully connected layer as a bar (labelled with its units), the operations on the arrows.
    ReLUs are folded into the layer before them."""
    if model is None:
        from skinlab.models import LeNet

        model = LeNet()
    shapes = layer_shapes(model, input_size)
    layers = dict(model.features.named_children()) | dict(model.classifier.named_children())
    # keep the tensors a reader thinks in: input, after each conv(+ReLU), pool, flatten, linear
    blocks, ops = [shapes[0]], []
    for name, kind, shape in shapes[1:]:
        if kind == "ReLU":
            blocks[-1] = (blocks[-1][0], blocks[-1][1], shape)
            continue
        ops.append("flatten" if kind == "Flatten" else _describe(kind, layers.get(name)))
        blocks.append((name, kind, shape))

    fig, ax = plt.subplots(figsize=(8.4, 3.3), layout="constrained")  # compact: legible when shrunk
    ax.set_xlim(0, len(blocks) * 1.3)
    ax.set_ylim(-1.95, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    biggest = max(s[1] for _, _, s in blocks if len(s) == 3)
    widest = max(s[0] for _, _, s in blocks if len(s) == 1)
    conv_color, fc_color = "#4c72b0", "#dd8452"
    for i, (name, kind, shape) in enumerate(blocks):
        cx = 0.55 + i * 1.3
        if len(shape) == 3:
            c, h, w = shape
            side = 0.3 + 0.6 * h / biggest
            n = min(c, 4)
            for j in range(n):  # a stack of maps
                off = 0.06 * (n - 1 - j)
                ax.add_patch(Rectangle((cx - side / 2 + off, -side / 2 + off), side, side,
                                       facecolor="#dddddd" if kind == "input" else conv_color,
                                       edgecolor="black", linewidth=0.8, alpha=0.9))
            label = f"{h}x{w}\n{c} {'channels' if kind == 'input' else 'maps'}"
        else:
            (units,) = shape
            height = 0.25 + 1.2 * np.sqrt(units / widest)
            ax.add_patch(Rectangle((cx - 0.12, -height / 2), 0.24, height, facecolor=fc_color,
                                   edgecolor="black", linewidth=0.8))
            label = f"{units}"
        title = "input" if kind == "input" else ("output\n(logits)" if i == len(blocks) - 1 else name)
        ax.text(cx, -1.22, label, ha="center", va="center", fontsize=11, fontweight="bold", linespacing=1.1)
        ax.text(cx, -1.72, title, ha="center", va="center", fontsize=10.5)
    for i, op in enumerate(ops):
        x0, x1 = 0.55 + i * 1.3 + 0.48, 0.55 + (i + 1) * 1.3 - 0.42
        ax.add_patch(FancyArrowPatch((x0, 0), (x1, 0), arrowstyle="-|>", mutation_scale=12, color="black"))
        ax.text((x0 + x1) / 2, 0.8, op, ha="center", va="bottom", fontsize=10)
    n_params = sum(p.numel() for p in model.parameters())
    fig.suptitle(f"{type(model).__name__}: {n_params:,} parameters\nblue: feature maps "
                 "(height x width, number of maps); orange: fully connected layers (units)", fontsize=11)
    return fig


def dermoscopic_example(metadata: pd.DataFrame, codes: Sequence[str] = ("nv", "mel"), seed: int = 0,
                        loader=None) -> Figure:
    """One dermoscopic image of each class in ``codes``, side by side, titled with the class and
    the image id (drawn with ``seed``). ``metadata`` needs ``dx`` and ``path``."""
    _require_columns(metadata, ["dx", "path"], "dermoscopic_example")
    _check_dx(metadata, "dermoscopic_example")
    if not codes:
        raise ValueError("dermoscopic_example: give at least one class code")
    unknown = [c for c in codes if c not in CLASSES]
    if unknown:
        raise ValueError(f"dermoscopic_example: unknown class codes {unknown}; expected some of {CLASSES}")
    if loader is None:
        from skinlab.plots.images import _default_loader as loader  # full resolution
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(1, len(codes), squeeze=False, figsize=(3.4 * len(codes), 2.9), layout="constrained")
    for ax, code in zip(axes[0], codes):
        rows = metadata[metadata["dx"] == code]
        if rows.empty:
            raise ValueError(f"dermoscopic_example: no image of class {code!r}")
        row = rows.iloc[int(rng.integers(len(rows)))]
        ax.imshow(_to_display(loader(row["path"]), name=str(row["path"])))
        _image_axes_off(ax)
        ident = f" ({row['image_id']})" if "image_id" in row.index else ""
        ax.set_title(f"{CLASS_NAMES[code]}{ident}", fontsize=9)
    fig.skinlab_photo = True
    return fig
