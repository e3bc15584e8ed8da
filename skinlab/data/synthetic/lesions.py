"""Drawing the synthetic sample's pictures: a dermoscopy-like lesion per class, with its exact mask.

Each class has a look (`LOOKS`, after the textbook dermoscopic patterns) from which every lesion
draws its own shape, colours and structures; some lesions borrow a look-alike class's shape and
colours (`MIMICS`), so the classes overlap as in the clinic. The lesion is drawn, so its
segmentation mask is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from skinlab.data.layout import CLASSES

@dataclass(frozen=True)
class _ClassLook:
    """Ranges (low, high) from which each lesion of a class draws its look."""
    radius: tuple[float, float]          # mean radius, as a share of half the short image side
    aspect: tuple[float, float]          # long/short axis
    asymmetry: tuple[float, float]       # amplitude of the 1st-3rd border harmonics
    irregularity: tuple[float, float]    # amplitude of the 4th-16th border harmonics
    edge: tuple[float, float]            # width of the soft border, in lesion radii
    opacity: tuple[float, float]         # how much the lesion hides the skin
    palette: tuple[tuple[int, int, int], ...]  # colours mixed by noise blotches
    palette_bias: tuple[float, ...] = ()  # head start of each colour's blotch noise (0..1 scale)
    blotchiness: tuple[float, float] = (1.0, 2.0)  # 0: colours blend smoothly, high: blotches
    center: tuple[int, int, int] | None = None  # central patch colour (df scar, nv dark centre)
    center_size: tuple[float, float] = (0.0, 0.0)
    network: tuple[float, float] = (0.0, 0.0)   # pigment network strength
    ridges: tuple[float, float] = (0.0, 0.0)    # cerebriform / lobule septa strength
    scale: tuple[float, float] = (0.0, 0.0)     # white keratin flecks
    vessels: tuple[int, int] = (0, 0)           # arborising red vessels
    dots: tuple[int, int] = (0, 0)              # dots / globules / milia
    dot_colours: tuple[tuple[int, int, int], ...] = ()


# Class looks after the textbook dermoscopic patterns, with ranges wide enough to overlap.
LOOKS = {
    "nv": _ClassLook(radius=(0.3, 0.7), aspect=(1.0, 1.3), asymmetry=(0.0, 0.06),
                     irregularity=(0.01, 0.04), edge=(0.06, 0.2), opacity=(0.75, 0.95),
                     palette=((130, 85, 60), (105, 65, 45)), blotchiness=(0.5, 2.0),
                     center=(80, 50, 38), center_size=(0.0, 0.55), network=(0.0, 0.5),
                     dots=(0, 6), dot_colours=((70, 45, 35),)),
    "mel": _ClassLook(radius=(0.5, 0.9), aspect=(1.0, 1.6), asymmetry=(0.06, 0.2),
                      irregularity=(0.03, 0.08), edge=(0.04, 0.15), opacity=(0.8, 0.97),
                      palette=((90, 55, 40), (45, 32, 30), (115, 118, 135), (150, 105, 80),
                               (195, 180, 178)),
                      palette_bias=(0.3, 0.15, 0.0, 0.05, -0.2), blotchiness=(2.5, 6.0),
                      network=(0.1, 0.5), dots=(4, 14),
                      dot_colours=((30, 22, 22), (60, 40, 35), (100, 105, 125))),
    "bkl": _ClassLook(radius=(0.35, 0.75), aspect=(1.0, 1.5), asymmetry=(0.02, 0.12),
                      irregularity=(0.03, 0.07), edge=(0.02, 0.08), opacity=(0.65, 0.9),
                      palette=((165, 120, 85), (140, 100, 70), (185, 150, 115)),
                      blotchiness=(1.0, 3.0), ridges=(0.2, 0.55), network=(0.0, 0.3),
                      dots=(2, 10), dot_colours=((235, 225, 205), (80, 55, 40))),
    "bcc": _ClassLook(radius=(0.3, 0.65), aspect=(1.0, 1.5), asymmetry=(0.03, 0.12),
                      irregularity=(0.02, 0.07), edge=(0.08, 0.25), opacity=(0.45, 0.75),
                      palette=((215, 150, 150), (230, 185, 180), (200, 130, 135)),
                      blotchiness=(0.5, 2.0), vessels=(2, 6),
                      dots=(0, 4), dot_colours=((95, 100, 120),)),
    "akiec": _ClassLook(radius=(0.35, 0.75), aspect=(1.0, 1.5), asymmetry=(0.03, 0.14),
                        irregularity=(0.03, 0.08), edge=(0.12, 0.3), opacity=(0.55, 0.85),
                        palette=((195, 105, 95), (210, 130, 115), (175, 95, 85)),
                        blotchiness=(1.0, 3.0), scale=(0.2, 0.55), vessels=(0, 2),
                        dots=(0, 10), dot_colours=((170, 40, 45),)),
    "df": _ClassLook(radius=(0.22, 0.45), aspect=(1.0, 1.3), asymmetry=(0.0, 0.06),
                     irregularity=(0.01, 0.04), edge=(0.12, 0.3), opacity=(0.7, 0.9),
                     palette=((145, 100, 75), (125, 85, 65)), blotchiness=(0.5, 1.5),
                     center=(225, 205, 195), center_size=(0.25, 0.6), network=(0.1, 0.4)),
    "vasc": _ClassLook(radius=(0.22, 0.55), aspect=(1.0, 1.4), asymmetry=(0.02, 0.1),
                       irregularity=(0.04, 0.1), edge=(0.02, 0.07), opacity=(0.8, 0.97),
                       palette=((165, 35, 60), (115, 30, 75), (190, 60, 70)),
                       blotchiness=(2.0, 5.0), ridges=(0.3, 0.7)),
}

# Clinical look-alikes (atypical nevus / featureless melanoma, lichenoid keratosis, pigmented
# bcc, thrombosed angioma, ...) and the share of lesions that look like theirs.
MIMICS = {"nv": "mel", "mel": "nv", "bkl": "mel", "bcc": "mel", "akiec": "bkl", "df": "nv",
          "vasc": "mel"}
MIMIC_RATE = 0.15

_BORDER_TABLE = 720  # border radius is tabulated over angle, then looked up per texel
_EXTENT = 1.7        # the lesion texture covers lesion coordinates [-_EXTENT, _EXTENT]^2
_MAX_BORDER = 1.6    # no border point beyond this radius, so the texture holds the lesion


def _u(rng, bounds):
    return float(rng.uniform(*bounds))


def _lesion_params(dx: str, lesion_seed) -> dict:
    """Everything that makes a lesion itself (shared by all its images)."""
    look = LOOKS[dx]
    rng = np.random.default_rng(lesion_seed)
    # Some lesions take the shape and colours of a look-alike class (their structures stay
    # their own): ambiguity no model can remove, as in the clinic.
    outer = LOOKS[MIMICS[dx]] if rng.random() < MIMIC_RATE else look
    harmonics = np.arange(1, 17)
    amp = np.where(harmonics <= 3, _u(rng, outer.asymmetry), _u(rng, outer.irregularity))
    amp = amp * rng.uniform(0.3, 1.0, harmonics.size) / np.sqrt(np.maximum(harmonics - 2, 1))
    phase = rng.uniform(0, 2 * np.pi, harmonics.size)
    angles = np.linspace(-np.pi, np.pi, _BORDER_TABLE, endpoint=False)
    border = 1 + (amp[:, None] * np.cos(harmonics[:, None] * angles + phase[:, None])).sum(0)
    # One brightness and one tint per lesion move all its colours together, plus a little each.
    palette = np.array(outer.palette, dtype=np.float32)
    palette = palette * rng.uniform(0.8, 1.15) + rng.uniform(-10, 10, 3) \
        + rng.uniform(-8, 8, palette.shape)
    bias = np.array(outer.palette_bias or [0.0] * len(palette), dtype=np.float32)
    skin = np.array([226, 176, 158], dtype=np.float32) * rng.uniform(0.8, 1.03) \
        + rng.uniform(-6, 6, 3)
    n_dots = int(rng.integers(look.dots[0], look.dots[1] + 1))
    dot_distance = np.sqrt(rng.uniform(0, 0.75, n_dots))
    dot_angle = rng.uniform(-np.pi, np.pi, n_dots)
    dots = [(float(d * math.cos(a)), float(d * math.sin(a)), float(r),
             tuple(int(c) for c in look.dot_colours[int(k)]))
            for d, a, r, k in zip(dot_distance, dot_angle, rng.uniform(0.03, 0.08, n_dots),
                                  rng.integers(0, max(len(look.dot_colours), 1), n_dots))]
    n_vessels = int(rng.integers(look.vessels[0], look.vessels[1] + 1))
    return dict(
        radius=_u(rng, outer.radius), aspect=_u(rng, outer.aspect),
        angle=rng.uniform(-np.pi, np.pi), offset=rng.uniform(-0.15, 0.15, 2),
        border=np.clip(border, 0.3, _MAX_BORDER).astype(np.float32),
        edge=_u(rng, outer.edge), ragged=_u(rng, outer.irregularity),
        opacity=_u(rng, outer.opacity),
        palette=np.clip(palette, 0, 255).astype(np.float32), bias=bias,
        blotch=_u(rng, outer.blotchiness),
        blotch_grids=rng.random((len(palette), 6, 6), dtype=np.float32),
        mid_grid=rng.random((10, 10), dtype=np.float32),
        fine_grid=rng.random((28, 28), dtype=np.float32),
        center=None if look.center is None else np.array(look.center, np.float32),
        center_size=_u(rng, look.center_size),
        network=_u(rng, look.network), network_freq=rng.uniform(5, 9),
        ridges=_u(rng, look.ridges), scale=_u(rng, look.scale),
        dots=dots, vessels=[_vessel_tree(rng) for _ in range(n_vessels)],
        skin=np.clip(skin, 110, 250).astype(np.float32),
    )


def _vessel_tree(rng) -> list[np.ndarray]:
    """A branching vessel as polylines in lesion coordinates (radius 1)."""
    start = rng.uniform(-0.6, 0.6, 2)
    heading = rng.uniform(-np.pi, np.pi)
    branches = []
    for depth in range(3):
        steps = 8 - 2 * depth
        turns = np.cumsum(rng.normal(0, 0.35, steps)) + heading
        pts = start + np.cumsum(0.1 * np.column_stack([np.cos(turns), np.sin(turns)]), axis=0)
        branches.append(np.vstack([start, pts]))
        start = pts[rng.integers(0, steps)]
        heading = turns[-1] + rng.choice([-1, 1]) * rng.uniform(0.5, 1.2)
    return branches


def _upsample(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    """Smooth noise: a small random grid resized bicubically (C speed)."""
    return np.asarray(Image.fromarray(grid, "F").resize((width, height), Image.BICUBIC))


def _lesion_texture(p: dict, texels: int):
    """The lesion in its own frame: (colour uint8 (T, T, 3) image, signed inside field (T, T)).

    Lesion coordinates span [-_EXTENT, _EXTENT]; the mean border is the unit circle. The field
    is the distance inside the (irregular) border in lesion radii: > 0 is lesion.
    """
    t = texels
    axis = (np.arange(t, dtype=np.float32) + 0.5) * (2 * _EXTENT / t) - _EXTENT
    u, v = axis[None, :], axis[:, None]
    rho = np.sqrt(u * u + v * v)
    theta = ((np.arctan2(v, u) + np.pi) * (_BORDER_TABLE / (2 * np.pi))).astype(np.int32)
    fine = _upsample(p["fine_grid"], t, t)
    mid = _upsample(p["mid_grid"], t, t)
    inside = p["border"][np.minimum(theta, _BORDER_TABLE - 1)] \
        - rho * (1 + p["ragged"] * 0.6 * (fine - 0.5))

    # Palette colours mixed by smooth blotches (a soft arg-max of noise fields).
    weights = np.stack([_upsample(g, t, t) for g in p["blotch_grids"]])
    weights += p["bias"][:, None, None]
    weights = np.exp(p["blotch"] * 3 * (weights - weights.max(0)))
    colour = np.einsum("khw,kc->hwc", weights, p["palette"]) / weights.sum(0)[..., None]
    colour *= (1 + 0.12 * (fine - 0.5) + 0.1 * (mid - 0.5))[..., None]  # mottling
    if p["center"] is not None and p["center_size"] > 0:
        c = np.clip((p["center_size"] * (0.8 + 0.4 * mid) - rho) / 0.12, 0, 1)[..., None]
        colour = colour * (1 - c) + p["center"] * c
    if p["network"] > 0:  # pigment network: dark lines along contours of a fine noise
        lines = np.abs(np.sin(np.pi * p["network_freq"] * (fine + 0.5 * mid)))
        colour *= (1 - p["network"] * 0.5 * np.clip(1 - lines / 0.35, 0, 1))[..., None]
    if p["ridges"] > 0:  # cerebriform gyri (bkl) / lobule septa (vasc): pale thin contours
        lines = np.abs(np.sin(np.pi * 4 * (mid + 0.3 * fine)))
        pale = (p["ridges"] * np.clip(1 - lines / 0.25, 0, 1))[..., None]
        colour = colour * (1 - pale) + np.float32(215) * pale
    if p["scale"] > 0:  # keratin scale: white-yellow flecks
        flecks = (p["scale"] * np.clip((fine - 0.58) / 0.2, 0, 1))[..., None]
        colour = colour * (1 - flecks) + np.array([238, 228, 205], np.float32) * flecks
    texture = Image.fromarray(np.clip(colour + 0.5, 0, 255).astype(np.uint8))

    # Dots, globules, milia and vessels, drawn on a layer blended through a blurred alpha.
    if p["dots"] or p["vessels"]:
        to_texel = t / (2 * _EXTENT)
        layer, alpha = Image.new("RGB", (t, t)), Image.new("L", (t, t))
        draw_rgb, draw_a = ImageDraw.Draw(layer), ImageDraw.Draw(alpha)
        for du, dv, dr, col in p["dots"]:
            x, y, r = (du + _EXTENT) * to_texel, (dv + _EXTENT) * to_texel, max(dr * to_texel, 0.7)
            draw_rgb.ellipse((x - r, y - r, x + r, y + r), fill=col)
            draw_a.ellipse((x - r, y - r, x + r, y + r), fill=215)
        for tree in p["vessels"]:
            for depth, branch in enumerate(tree):
                pts = [tuple(q) for q in (branch + _EXTENT) * to_texel]
                width = max(1, round(to_texel * 0.035 * (3 - depth)))
                draw_rgb.line(pts, fill=(175, 30, 45), width=width, joint="curve")
                draw_a.line(pts, fill=210, width=width, joint="curve")
        alpha = alpha.filter(ImageFilter.GaussianBlur(max(0.5, t / 300)))
        texture = Image.composite(layer, texture, alpha)
    return texture, inside.astype(np.float32)


def render_lesion(dx: str, lesion_seed, view_seed, image_size=(200, 150)):
    """Draw one picture of one lesion: `(rgb uint8 array (H, W, 3), mask bool array (H, W))`.

    `lesion_seed` fixes the lesion (shape, colours, texture, patient's skin); `view_seed` fixes
    the picture (position, rotation, zoom, light, hairs, vignette, noise). Seeds are ints or
    tuples of ints.
    """
    if dx not in LOOKS:
        raise ValueError(f"dx must be one of {CLASSES}, got {dx!r}")
    width, height = _check_size(image_size)
    p = _lesion_params(dx, lesion_seed)
    rng = np.random.default_rng(view_seed)
    half = min(width, height) / 2

    # The lesion is drawn once in its own frame (resolution fixed per lesion, so every picture
    # of it shows the same pattern), then shifted, turned and zoomed into this picture.
    texels_per_radius = int(np.clip(p["radius"] * half, 12, 80))
    texels = int(2 * _EXTENT * texels_per_radius)
    texture, inside = _lesion_texture(p, texels)
    radius = p["radius"] * half * rng.uniform(0.88, 1.12)
    angle = p["angle"] + rng.uniform(-0.6, 0.6)
    cx = width / 2 + (p["offset"][0] + rng.uniform(-0.1, 0.1)) * half
    cy = height / 2 + (p["offset"][1] + rng.uniform(-0.1, 0.1)) * half
    k = texels_per_radius / radius
    a, b = k * math.cos(angle), k * math.sin(angle)
    c, d = -k * math.sin(angle) * p["aspect"], k * math.cos(angle) * p["aspect"]
    origin = _EXTENT * texels_per_radius
    affine = (a, b, origin - a * cx - b * cy, c, d, origin - c * cx - d * cy)
    colour = np.asarray(texture.transform((width, height), Image.AFFINE, affine,
                                          Image.BILINEAR)).transpose(2, 0, 1).astype(np.float32)
    field = np.asarray(Image.fromarray(inside, "F").transform(
        (width, height), Image.AFFINE, affine, Image.BILINEAR, fillcolor=-1.0))
    mask = field > 0
    alpha = np.clip(field * np.float32(1 / p["edge"]) + np.float32(0.5), 0, 1)
    alpha = alpha * alpha * (3 - 2 * alpha) * np.float32(p["opacity"])

    # Images are (3, H, W) from here: per-pixel maps broadcast over channels without strides.
    # Skin: the patient's tone, mottling and a lighting gradient that differ per picture.
    shade = 1 + 0.1 * (_upsample(rng.random((5, 5), dtype=np.float32), width, height) - 0.5)
    gx, gy = (float(g) for g in rng.normal(0, 0.08, 2))
    shade += gx * (np.arange(width, dtype=np.float32)[None, :] / width - 0.5) \
        + gy * (np.arange(height, dtype=np.float32)[:, None] / height - 0.5)
    image = p["skin"][:, None, None] * (shade * (1 - alpha)) + colour * alpha
    image = _draw_hairs(image, rng, width, height, half)

    # Dermatoscope: lighting, lens fall-off, sometimes the black circle of the lens, noise.
    yy = (np.arange(height, dtype=np.float32)[:, None] + 0.5 - height / 2)
    xx = (np.arange(width, dtype=np.float32)[None, :] + 0.5 - width / 2)
    r2 = (xx * xx + yy * yy) / np.float32((width / 2) ** 2 + (height / 2) ** 2)
    light = (rng.uniform(0.85, 1.12) * rng.uniform(0.96, 1.04, 3)).astype(np.float32)
    image *= (1 - np.float32(rng.uniform(0.05, 0.3)) * r2) * light[:, None, None]
    if rng.random() < 0.45:
        edge = rng.uniform(0.8, 1.05)
        dark = np.clip((np.sqrt(r2) - np.float32(edge)) * np.float32(1 / 0.06), 0, 1)
        image = image * (1 - dark) + np.float32(rng.uniform(5, 30)) * dark
    image += _sensor_noise(rng, image.size).reshape(image.shape) * np.float32(rng.uniform(1.5, 5))
    image = np.clip(image + np.float32(0.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image.transpose(1, 2, 0)), mask


_NOISE_POOL: list[np.ndarray] = []


def _sensor_noise(rng, n: int) -> np.ndarray:
    """n standard-normal values: a window of a fixed pool (drawing fresh ones costs more than
    the rest of the picture at 600x450). The window starts in [0, n) by rng; a pool grown for a
    bigger picture keeps its prefix, so the values never depend on what was drawn before."""
    if not _NOISE_POOL or _NOISE_POOL[0].size < 2 * n:
        _NOISE_POOL[:] = [np.random.default_rng(20181).standard_normal(max(2 * n, 1 << 20),
                                                                       dtype=np.float32)]
    start = int(rng.integers(0, n))
    return _NOISE_POOL[0][start:start + n]


def _draw_hairs(image, rng, width, height, half):
    n = int(rng.poisson(rng.choice([0.5, 3.0, 10.0], p=[0.5, 0.35, 0.15])))
    if n == 0:
        return image
    colour = rng.uniform(20, 70) * np.array([1.0, 0.85, 0.75], dtype=np.float32)
    alpha = Image.new("L", (width, height))
    draw = ImageDraw.Draw(alpha)
    for _ in range(n):
        start = rng.uniform((0, 0), (width, height))
        turns = rng.uniform(-np.pi, np.pi) + rng.normal(0, 0.04) * np.arange(24)
        step = rng.uniform(0.4, 1.6) * half / 24
        pts = start + np.cumsum(step * np.column_stack([np.cos(turns), np.sin(turns)]), axis=0)
        draw.line([tuple(q) for q in pts], fill=int(rng.uniform(170, 240)),
                  width=max(1, round(half / 75 * rng.uniform(0.7, 1.5))), joint="curve")
    alpha = alpha.filter(ImageFilter.GaussianBlur(max(0.3, half / 200)))
    a = np.asarray(alpha, dtype=np.float32) * np.float32(1 / 255)
    return image * (1 - a) + colour[:, None, None] * a


def _check_size(image_size) -> tuple[int, int]:
    try:
        width, height = (int(s) for s in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height), got {image_size!r}") from None
    if width < 16 or height < 16 or (width, height) != tuple(image_size):
        raise ValueError(f"image_size must be two ints >= 16 (width, height), got {image_size!r}")
    return width, height

