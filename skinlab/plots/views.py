"""Interactive views that work in the static book: every state precomputed, switched in the browser.

A :class:`View` is a set of pictures (*frames*) and one ``<select>`` per control; choosing a
value shows the frame of the chosen combination. Its HTML holds every frame (compressed JPEG or
PNG, embedded) and no code: the switching is done by :data:`VIEW_JS`, which the book serves as a
static file (``book/_ext/skinlab_pages.py``) and which a live notebook gets inline. So the view
responds in the rendered HTML with no Python kernel and no CDN, unlike an ``ipywidgets.interact``
(whose saved state holds the controls but not the pictures a callback would draw).

Two views of the course are built here: :func:`class_browser` (chapter 5: a class's images) and
:func:`gradcam_browser` (chapter 10: Grad-CAM per image and class, with a colour-blind-safe map).
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from skinlab.data import CLASS_NAMES, CLASSES
from skinlab.plots._common import _check_dx, _require_columns, _to_display

MAX_FRAME_BYTES = 300_000  # the book's limit for any one picture
VIEW_CLASS = "skinlab-view"

# The browser side of every view (no dependencies). Kept here so that the book's static file and a
# live notebook run the same code.
VIEW_JS = r"""
(function () {
  function setup(view) {
    if (view.dataset.skinlabReady) return;
    view.dataset.skinlabReady = "1";
    var selects = Array.prototype.slice.call(view.querySelectorAll("select[data-axis]"));
    var frames = Array.prototype.slice.call(view.querySelectorAll("[data-key]"));
    var status = view.querySelector(".skinlab-view-status");
    function show() {
      var key = selects.map(function (s) { return s.value; }).join("|");
      var shown = null;
      frames.forEach(function (f) {
        var on = f.getAttribute("data-key") === key;
        f.hidden = !on;
        if (on) shown = f;
      });
      if (status && shown) status.textContent = shown.getAttribute("data-note") || "";
    }
    selects.forEach(function (s) { s.addEventListener("change", show); s.disabled = false; });
    show();
  }
  function all() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-skinlab-view]"), setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all);
  else all();
})();
"""


@dataclass(repr=False)
class Frame:
    """One picture of a view: encoded bytes, its MIME type, its alt text and a one-line note."""

    data: bytes
    mime: str
    alt: str
    note: str = ""

    def __repr__(self) -> str:
        return f"Frame({self.mime}, {len(self.data):,} bytes, alt={self.alt!r})"

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def encode_image(picture, fmt: str = "jpeg", quality: int = 80, max_side: int | None = None,
                 dpi: int = 100) -> tuple[bytes, str]:
    """A matplotlib figure (closed afterwards), PIL image or array -> (bytes, MIME type).

    ``fmt`` is ``"jpeg"`` (photographs) or ``"png"`` (drawings); ``max_side`` downscales so that
    neither side exceeds it.
    """
    if fmt not in ("jpeg", "png"):
        raise ValueError(f"encode_image: fmt must be 'jpeg' or 'png', got {fmt!r}")
    if isinstance(picture, Figure):
        buf = io.BytesIO()
        try:
            picture.savefig(buf, format="png", dpi=dpi)
        finally:
            plt.close(picture)
        buf.seek(0)
        image = Image.open(buf).convert("RGB")
    elif isinstance(picture, Image.Image):
        image = picture.convert("RGB")
    else:
        image = Image.fromarray((_to_display(picture) * 255).round().astype(np.uint8)).convert("RGB")
    if max_side is not None and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, format="JPEG", quality=quality, optimize=True)
    else:
        image.save(out, format="PNG", optimize=True)
    return out.getvalue(), f"image/{fmt}"


@dataclass(repr=False)
class View:
    """Controls (``[(label, [(value, text), ...]), ...]``) and one :class:`Frame` per combination
    of their values (keys: tuples of values, in the controls' order)."""

    controls: list[tuple[str, list[tuple[str, str]]]]
    frames: dict[tuple[str, ...], Frame]
    caption: str = ""
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def __post_init__(self):
        if not self.controls:
            raise ValueError("View: at least one control is needed")
        for label, options in self.controls:
            if not options:
                raise ValueError(f"View: control {label!r} has no options")
            values = [str(v) for v, _ in options]
            if len(set(values)) != len(values) or any("|" in v for v in values):
                raise ValueError(f"View: the values of control {label!r} must be distinct and hold no '|'")
        wanted = set(itertools.product(*[[str(v) for v, _ in opts] for _, opts in self.controls]))
        got = {tuple(str(k) for k in key) for key in self.frames}
        if wanted != got:
            missing, extra = sorted(wanted - got)[:3], sorted(got - wanted)[:3]
            raise ValueError(f"View: one frame per combination of the controls is needed; "
                             f"missing {missing}, unexpected {extra}")
        for key, frame in self.frames.items():
            if not frame.alt.strip():
                raise ValueError(f"View: frame {key} has no alt text")
            if len(frame.data) > MAX_FRAME_BYTES:
                raise ValueError(f"View: frame {key} is {len(frame.data):,} bytes, over the "
                                 f"{MAX_FRAME_BYTES:,}-byte limit: downscale or compress it")

    def __repr__(self) -> str:
        # the text a notebook shows without HTML: what the view holds, not its pictures' bytes
        controls = ", ".join(f"{label} ({len(options)})" for label, options in self.controls)
        return f"<View: {len(self.frames)} pictures, {self.nbytes:,} bytes; controls {controls}>"

    @property
    def nbytes(self) -> int:
        return sum(len(f.data) for f in self.frames.values())

    def to_html(self, inline_script: bool | None = None) -> str:
        """The view's HTML. ``inline_script`` (default: not in a book build) adds :data:`VIEW_JS`
        for a live notebook; the book serves it once as a static file instead."""
        if inline_script is None:
            inline_script = os.environ.get("SKINLAB_BOOK_BUILD") != "1"
        first = tuple(str(opts[0][0]) for _, opts in self.controls)
        parts = [f'<figure class="{VIEW_CLASS}" id="{VIEW_CLASS}-{self.uid}" data-skinlab-view="1">',
                 '<div class="skinlab-view-controls">']
        for axis, (label, options) in enumerate(self.controls):
            sid = f"{VIEW_CLASS}-{self.uid}-{axis}"
            opts = "".join(f'<option value="{html.escape(str(v))}">{html.escape(str(t))}</option>'
                           for v, t in options)
            # disabled until the script runs: without it, a control that does nothing is not offered
            parts.append(f'<label for="{sid}">{html.escape(label)}</label>'
                         f'<select id="{sid}" data-axis="{axis}" disabled>{opts}</select>')
        parts.append("</div>")
        parts.append('<div class="skinlab-view-frames">')
        for key, frame in self.frames.items():
            key = tuple(str(k) for k in key)
            hidden = "" if key == first else " hidden"
            parts.append(f'<img data-key="{html.escape("|".join(key))}" '
                         f'data-note="{html.escape(frame.note)}" alt="{html.escape(frame.alt)}" '
                         f'src="{frame.data_uri()}"{hidden}>')
        parts.append("</div>")
        note = self.frames[next(k for k in self.frames if tuple(map(str, k)) == first)].note
        parts.append(f'<p class="skinlab-view-status" aria-live="polite">{html.escape(note)}</p>')
        if self.caption:
            parts.append(f"<figcaption>{html.escape(self.caption)}</figcaption>")
        parts.append("</figure>")
        if inline_script:
            parts.append(f"<script>{VIEW_JS}</script>")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()


# --------------------------------------------------------------------------- chapter 5


def _load_rgb(path) -> Image.Image:
    with Image.open(path) as img:
        img.draft("RGB", (300, 225))  # JPEG: decode at a reduced scale, much faster
        return img.convert("RGB")


def class_browser(metadata: pd.DataFrame, n_images: int = 4, draws: int = 3, seed: int = 0,
                  thumb: tuple[int, int] = (160, 120), classes: Sequence[str] = CLASSES,
                  loader: Callable | None = None, quality: int = 78) -> View:
    """Browse a class's images: controls *class* and *draw*; each frame is a strip of
    ``n_images`` images of that class drawn at random (seed ``seed + draw``), ``thumb`` pixels each.

    ``metadata`` needs the columns ``dx`` and ``path`` (``image_id`` is used in the alt text).
    """
    if n_images < 1 or draws < 1:
        raise ValueError(f"class_browser: n_images and draws must be >= 1, got {n_images}, {draws}")
    _require_columns(metadata, ["dx", "path"], "class_browser")
    _check_dx(metadata, "class_browser")
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise ValueError(f"class_browser: unknown classes {unknown}; expected codes of {CLASSES}")
    load = loader or _load_rgb
    w, h = thumb
    frames = {}
    for code in classes:
        rows = metadata[metadata["dx"] == code]
        if rows.empty:
            raise ValueError(f"class_browser: no image of class {code!r} in the metadata")
        for d in range(draws):
            k = min(n_images, len(rows))
            picks = rows.sample(n=k, random_state=seed + d)
            strip = Image.new("RGB", (k * w + (k - 1) * 4, h), "white")
            for j, (_, row) in enumerate(picks.iterrows()):
                try:
                    img = load(row["path"])
                except Exception as err:
                    raise ValueError(f"class_browser: cannot load {row['path']}: {err}") from err
                if not isinstance(img, Image.Image):
                    img = Image.fromarray((_to_display(img) * 255).round().astype(np.uint8))
                strip.paste(img.convert("RGB").resize((w, h), Image.Resampling.LANCZOS), (j * (w + 4), 0))
            ids = ", ".join(str(i) for i in picks.get("image_id", picks.index))
            data, mime = encode_image(strip, "jpeg", quality=quality)
            frames[(code, str(d))] = Frame(
                data, mime,
                alt=f"{k} dermoscopic images of class {code} ({CLASS_NAMES[code]}), draw {d + 1}: {ids}",
                note=f"{code}, {CLASS_NAMES[code]}: {len(rows):,} images in this split; draw {d + 1} shows {ids}")
    controls = [("class", [(c, f"{c}: {CLASS_NAMES[c]}") for c in classes]),
                ("draw", [(str(d), f"draw {d + 1}") for d in range(draws)])]
    return View(controls, frames, caption=(
        f"Browse the training images by class: choose a class and one of {draws} random draws of "
        f"{n_images} images (precomputed when the book was built)."))


# --------------------------------------------------------------------------- chapter 10


def _outline(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) border of a mask resized to ``size`` (W, H)."""
    m = np.asarray(Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255).resize(size)) > 127
    edge = np.zeros_like(m)
    edge[1:, :] |= m[1:, :] != m[:-1, :]
    edge[:, 1:] |= m[:, 1:] != m[:, :-1]
    return edge


def heatmap_frame(image, cam, cmap: str = "jet", mask=None, alpha: float = 0.45,
                  size: tuple[int, int] = (224, 168)) -> Image.Image:
    """The overlay of :func:`skinlab.heatmap.overlay` (``cmap``: ``"jet"`` or a colour-blind-safe
    matplotlib map such as ``"cividis"``), the lesion outline in white, and a colour bar."""
    from skinlab.heatmap import overlay
    from skinlab.plots.gradcam import _stretch, colormap_lut

    w, h = size
    shown = np.asarray(Image.fromarray((_to_display(image) * 255).round().astype(np.uint8)).convert("RGB")
                       .resize((w, h), Image.Resampling.LANCZOS), dtype=np.float32) / 255
    cam = np.asarray(cam, dtype=np.float32)
    picture = overlay(shown, _stretch(cam, h, w), alpha=alpha, lut=colormap_lut(cmap))
    rgb = (picture * 255).round().astype(np.uint8)
    if mask is not None:
        rgb[_outline(mask, (w, h))] = 255
    bar_w, pad, label_w = 12, 6, 34
    canvas = Image.new("RGB", (w + pad + bar_w + label_w, h), "white")
    canvas.paste(Image.fromarray(rgb), (0, 0))
    lut = colormap_lut(cmap)
    ramp = lut[np.linspace(255, 0, h - 16).astype(int)]  # top = 1
    bar = np.repeat(ramp[:, None, :], bar_w, axis=1)
    canvas.paste(Image.fromarray(bar.astype(np.uint8)), (w + pad, 8))
    draw = ImageDraw.Draw(canvas)
    x = w + pad + bar_w + 3
    draw.text((x, 2), "1 high", fill="black")
    draw.text((x, h - 14), "0 low", fill="black")
    return canvas


def gradcam_browser(items: Sequence[Mapping], explain: Callable[[int, int], np.ndarray],
                    probability: Callable[[int, int], float] | None = None,
                    cmaps: Sequence[str] = ("jet", "cividis"), classes: Sequence[str] = CLASSES,
                    quality: int = 75, size: tuple[int, int] = (224, 168)) -> View:
    """Grad-CAM per image and class: controls *image*, *class* and *colour map*.

    ``items``: one mapping per image with ``key`` (passed to ``explain``), ``label`` (shown in the
    menu, e.g. the image id and true class), ``image`` (H x W x 3 in [0, 1] or uint8) and
    optionally ``mask``. ``explain(key, class_index)`` returns the heat map in [0, 1];
    ``probability(key, class_index)`` the model's probability of the class (shown in the note).
    """
    if not items:
        raise ValueError("gradcam_browser: no images given")
    for i, item in enumerate(items):
        missing = [k for k in ("key", "label", "image") if k not in item]
        if missing:
            raise ValueError(f"gradcam_browser: items[{i}] lacks {missing}")
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise ValueError(f"gradcam_browser: unknown classes {unknown}")
    from skinlab.plots.gradcam import colormap_lut

    for cmap in cmaps:
        colormap_lut(cmap)  # fails early on an unknown map
    frames = {}
    for n, item in enumerate(items):
        for code in classes:
            c = CLASSES.index(code)
            cam = np.asarray(explain(item["key"], c), dtype=np.float32)
            p = probability(item["key"], c) if probability is not None else None
            said = f", the model gives it probability {p:.2f}" if p is not None else ""
            for cmap in cmaps:
                picture = heatmap_frame(item["image"], cam, cmap=cmap, mask=item.get("mask"), size=size)
                data, mime = encode_image(picture, "jpeg", quality=quality)
                frames[(str(n), code, cmap)] = Frame(
                    data, mime,
                    alt=(f"Grad-CAM heat map ({cmap} colour map, colour bar from 0 low to 1 high) for "
                         f"class {code} ({CLASS_NAMES[code]}) over image {item['label']}"
                         + (", lesion outlined in white" if item.get("mask") is not None else "") + said),
                    note=f"{item['label']}: heat for class {code} ({CLASS_NAMES[code]}){said}.")
    controls = [("image", [(str(n), str(item["label"])) for n, item in enumerate(items)]),
                ("class", [(c, f"{c}: {CLASS_NAMES[c]}") for c in classes]),
                ("colour map", [(m, m + (" (colour-blind safe)" if m != "jet" else "")) for m in cmaps])]
    return View(controls, frames, caption=(
        "Grad-CAM of the trained network: choose an image, the class to explain and the colour map "
        "(all heat maps precomputed when the book was built). White outline: the lesion's mask."))
