"""Data presets: resize, the guide's two augmentations (horizontal flip, rotation up to 60°),
normalisation. Evaluation transforms never augment.

Two equivalent forms:
- per-image PIL transforms (:func:`train_transform`, :func:`eval_transform`), as the guide writes
  them, for a ``HAM10000Dataset``;
- batched tensor augmentation (:class:`BatchAugment`) applied to a whole uint8 batch at once, on
  the GPU when there is one; it is what ``skinlab train`` uses with the preprocessed-image cache.

A trained run's evaluation is one :class:`EvalPreset` (image size, colour constancy, centre crop,
normalisation, TTA, memory layout): the batch transform of its evaluation, and the same input for
one image (``skinlab gradcam``), as torchvision's references keep their presets beside the
transforms.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import transforms as T

from skinlab.config import COLOR_CONSTANCY, ROTATION_DEGREES  # noqa: F401  (the options' choices and default)
from skinlab.models.spec import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (skinlab.presets.IMAGENET_*)


def _size(size) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


def train_transform(size, mean: Sequence[float], std: Sequence[float], degrees: float = ROTATION_DEGREES):
    """Resize → random horizontal flip → random rotation (±``degrees``) → tensor → normalise."""
    return T.Compose(
        [
            T.Resize(_size(size)),
            T.RandomHorizontalFlip(),
            T.RandomRotation(degrees),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )


def eval_transform(size, mean: Sequence[float], std: Sequence[float]):
    """Resize → tensor → normalise. No randomness: the test set is never augmented."""
    return T.Compose([T.Resize(_size(size)), T.ToTensor(), T.Normalize(mean, std)])


def measure_mean_std(images: torch.Tensor, batch: int = 1024) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a uint8 ``(N, 3, H, W)`` tensor (or float in [0, 1]).

    Call it on the training split only; the statistics then normalise every split.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W); got {tuple(images.shape)}")
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    for i in range(0, len(images), batch):
        x = images[i : i + batch].to(torch.float64) / scale
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / n
    std = (total_sq / n - mean * mean).clamp_min(0).sqrt()
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def shades_of_gray(images: torch.Tensor, p: float = 6.0, batch: int = 512) -> torch.Tensor:
    """Shades of Gray colour constancy (Finlayson & Trezzi, 2004) of uint8 ``(N, 3, H, W)`` images.

    Each image's illuminant is estimated by the Minkowski ``p``-norm mean of each channel,
    ``e_c = (mean(I_c ** p)) ** (1 / p)`` (p = 1: grey world; p = inf: max-RGB), normalised to unit
    length; each channel is then divided by ``e_c * sqrt(3)``, so that the illuminant becomes grey
    and a grey illuminant leaves the image unchanged; values are clipped to 0..255 and rounded.
    This is the form used by the ISIC 2018-2019 challenge entries (p = 6). Returns a new tensor.
    """
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images of shape (N, 3, H, W); got {images.dtype} {tuple(images.shape)}")
    out = torch.empty(images.shape, dtype=torch.uint8)
    for i in range(0, len(images), batch):
        x = images[i : i + batch].to(torch.float64)
        e = x.pow(p).mean(dim=(2, 3)).pow(1.0 / p)  # (B, 3)
        e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)
        gain = 1.0 / (e * math.sqrt(3.0)).clamp_min(1e-12)
        out[i : i + batch] = (x * gain[:, :, None, None]).clamp(0, 255).round().to(torch.uint8)
    return out


def color_constancy(images: torch.Tensor, method: str) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` images after the colour constancy ``method`` (``--color-constancy``):
    ``"none"`` returns them as they are; ``"shades_of_gray"`` is :func:`shades_of_gray`."""
    if method not in COLOR_CONSTANCY:
        raise ValueError(f"color_constancy {method!r}: expected one of {', '.join(COLOR_CONSTANCY)}")
    return shades_of_gray(images) if method == "shades_of_gray" else images


def check_crop(crop: int | None, size: int) -> None:
    """A ``--crop`` must fit in the ``size`` x ``size`` images it is taken from."""
    if crop is not None and not 0 < crop <= size:
        raise ValueError(f"--crop {crop}: must be between 1 and the image size {size}")


def center_crop(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """The centre ``size`` x ``size`` window of ``(..., H, W)`` images (None: all of them); an
    odd margin leaves its extra pixel at the bottom and right."""
    if size is None:
        return images
    h, w = images.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size]


class BatchAugment(torch.nn.Module):
    """Normalise a uint8 batch, with the guide's flip and rotation when ``train`` is true.

    Each image gets its own flip and angle (uniform in ±``degrees``), drawn from ``generator``
    so runs are reproducible; rotation uses bilinear sampling with black corners, like
    ``torchvision.transforms.RandomRotation``. With ``crop``, the output is ``crop`` x ``crop``:
    in training a window at a random whole-pixel offset of each (flipped, rotated) image, taken in
    the same sampling pass; in evaluation the centre window.
    """

    def __init__(self, mean, std, train: bool = True, degrees: float = ROTATION_DEGREES, flip: bool = True,
                 *, shard: tuple[int, int] = (0, 1), channels_last: bool | str = "auto", crop: int | None = None):
        super().__init__()
        self.crop = None if crop is None else int(crop)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        # (x / 255 - mean) / std as one fused x * scale + shift (not saved in state_dict).
        self.register_buffer("_scale_u8", 1.0 / (255.0 * self.std), persistent=False)
        self.register_buffer("_scale", 1.0 / self.std, persistent=False)
        self.register_buffer("_shift", -self.mean / self.std, persistent=False)
        self.train_mode = train
        self.degrees = float(degrees)
        self.flip = flip
        # (rank, world_size) in a distributed run: the random draws are made for the whole global
        # batch (world_size x this batch) and this rank keeps elements rank, rank + world_size, ...
        # (see skinlab.distributed.ShardedSampler), so augmentation matches a single process.
        rank, world = (int(v) for v in shard)
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"BatchAugment: shard={shard!r}, expected (rank, world_size) with 0 <= rank < world_size")
        self.shard = (rank, world)
        # True: channels-last output; "auto": only on CUDA, where convolutions with AMP run faster
        # in it (on CPU only some models gain: skinlab.models.prefers_channels_last).
        self.channels_last = channels_last

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = images.to(self.mean.device, non_blocking=True)
        scale = self._scale_u8 if x.dtype == torch.uint8 else self._scale
        x = x.float()  # still 0..255 for uint8: rotation and zero fill commute with the scaling
        if self.train_mode:
            rank, world = self.shard
            n = x.shape[0] * world
            # Random numbers come from a CPU generator so CPU and GPU runs draw the same values.
            flips = torch.rand(n, generator=generator) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
            angles = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(self.degrees)
            if self.crop is None:
                x = _flip_rotate(x, flips[rank::world], angles[rank::world])
            else:
                h, w = x.shape[-2:]
                # Whole-pixel offsets of the window's corner, drawn for the global batch.
                oy = torch.randint(0, h - self.crop + 1, (n,), generator=generator)
                ox = torch.randint(0, w - self.crop + 1, (n,), generator=generator)
                x = _flip_rotate(x, flips[rank::world], angles[rank::world],
                                 crop=(self.crop, oy[rank::world], ox[rank::world]))
        else:
            x = center_crop(x, self.crop)
        # Few passes over the batch: on CPU these element-wise ops are most of the augmentation's cost.
        x = torch.addcmul(self._shift, x, scale)
        if self.channels_last is True or (self.channels_last == "auto" and x.is_cuda):
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _flip_rotate(x: torch.Tensor, flips: torch.Tensor, angles: torch.Tensor, crop=None) -> torch.Tensor:
    """``flips`` and ``angles`` on the CPU: the small matrices are built there, moved once.
    ``crop = (size, top, left)``: sample only the ``size`` x ``size`` window whose corner is at
    pixel (``top``, ``left``) of the flipped and rotated image (one grid, one sampling pass)."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    sign = torch.where(flips, -1.0, 1.0).to(cos.dtype)
    h, w = x.shape[-2:]
    aspect = h / w
    zero = torch.zeros_like(cos)
    shape = list(x.shape)
    sy = sx = 1.0
    ty = tx = zero
    if crop is not None:
        size, top, left = crop
        # The window in normalised output coordinates: scale size/side, centre at the window's.
        sy, sx = size / h, size / w
        ty = ((2 * top + size - h) / h).to(cos.dtype)
        tx = ((2 * left + size - w) / w).to(cos.dtype)
        shape = [shape[0], shape[1], size, size]
    # Affine grid in normalised coordinates; the flip multiplies the x column. A window is
    # taken in the rotated image: input = R(output scaled by the window and moved to its centre).
    theta = torch.stack([cos * sign * sx, -sin * aspect * sy, cos * sign * tx - sin * aspect * ty,
                         sin * sign / aspect * sx, cos * sy, sin * sign / aspect * tx + cos * ty], 1).view(-1, 2, 3)
    theta = theta.to(device=x.device, dtype=x.dtype, non_blocking=True)
    grid = F.affine_grid(theta, shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def denormalize(x: torch.Tensor, mean, std) -> np.ndarray:
    """A normalised ``(3, H, W)`` tensor back to an ``(H, W, 3)`` float image in [0, 1] for display."""
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    return (x.detach().cpu() * s + m).clamp(0, 1).permute(1, 2, 0).numpy()


@dataclass(frozen=True)
class EvalPreset:
    """How a run's evaluation turns an image into the model's input, in one place.

    The run's image cache holds each image decoded and resized to ``image_size`` (JPEG draft
    mode, bilinear: :func:`skinlab.data.cache.decode_resized`), then colour-corrected
    (``color_constancy``); evaluation takes the centre ``crop`` x ``crop`` window (None: all of it),
    normalises by the run's ``mean``/``std`` and, when the model is channels-last
    (``channels_last``), lays the batch out so. ``tta``: predictions average the image and its
    horizontal flip. :meth:`batch_transform` does this to batches of the cache (evaluation,
    ``predict_split``); :meth:`prepare` to one image given by its path (``skinlab gradcam``): the
    same tensor.
    """

    image_size: int
    mean: tuple
    std: tuple
    crop: int | None = None
    color_constancy: str = "none"
    tta: bool = False
    channels_last: bool = False

    def __post_init__(self):
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != 3:
                raise ValueError(f"EvalPreset: {name} needs one value per RGB channel; got {values}")
            object.__setattr__(self, name, values)
        object.__setattr__(self, "image_size", int(self.image_size))
        check_crop(self.crop, self.image_size)
        if self.color_constancy not in COLOR_CONSTANCY:
            raise ValueError(f"color_constancy {self.color_constancy!r}: expected one of {', '.join(COLOR_CONSTANCY)}")

    def batch_transform(self) -> BatchAugment:
        """The evaluation transform of uint8 batches of the run's image cache (already
        colour-corrected): centre crop, normalisation, memory layout."""
        return BatchAugment(self.mean, self.std, train=False, channels_last=self.channels_last, crop=self.crop)

    def cached(self, image) -> torch.Tensor:
        """``image`` as the run's image cache holds it: a ``(1, 3, S, S)`` uint8 tensor, decoded and
        resized, then colour-corrected. ``image``: a path, or uint8 pixels ``(3, S, S)`` or
        ``(1, 3, S, S)`` as decoded and resized by the cache (before colour constancy)."""
        if isinstance(image, (str, os.PathLike)):
            from skinlab.data.cache import decode_resized

            pixels = torch.tensor(decode_resized(str(image), self.image_size))  # a copy: PIL's buffer is read-only
        elif isinstance(image, torch.Tensor):
            pixels = image
        elif isinstance(image, np.ndarray):
            pixels = torch.tensor(image)
        else:
            raise TypeError(f"expected an image path or uint8 pixels; got {type(image).__name__}")
        pixels = pixels[None] if pixels.ndim == 3 else pixels
        expected = (1, 3, self.image_size, self.image_size)
        if pixels.dtype != torch.uint8 or tuple(pixels.shape) != expected:
            raise ValueError(f"expected uint8 pixels of shape {expected} (the run's --image-size, as its image "
                             f"cache holds them; give a path to decode one); got {pixels.dtype} {tuple(pixels.shape)}")
        return color_constancy(pixels, self.color_constancy)

    def pixels(self, image) -> torch.Tensor:
        """What the model sees of ``image`` before normalisation: ``(3, s, s)`` uint8, colour-corrected
        and centre-cropped (for showing beside its heat map)."""
        return center_crop(self.cached(image), self.crop)[0]

    def prepare(self, image, device=None) -> torch.Tensor:
        """The model's input for ``image`` (see :meth:`cached`): ``(1, 3, s, s)`` float on ``device``,
        exactly what the run's evaluation feeds the model for it."""
        transform = self.batch_transform()
        if device is not None:
            transform = transform.to(device)
        return transform(self.cached(image))
