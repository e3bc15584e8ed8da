"""Data presets: resize, the guide's two augmentations (horizontal flip, rotation up to 60°),
normalisation. Evaluation transforms never augment.

Two equivalent forms:
- per-image PIL transforms (:func:`train_transform`, :func:`eval_transform`), as the guide writes
  them, for a ``HAM10000Dataset``;
- batched tensor augmentation (:class:`BatchAugment`) applied to a whole uint8 batch at once, on
  the GPU when there is one; it is what ``skinlab train`` uses with the preprocessed-image cache.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import transforms as T

from skinlab.models.spec import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (skinlab.presets.IMAGENET_*)

ROTATION_DEGREES = 60.0


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
        elif self.crop is not None:
            h, w = x.shape[-2:]
            top, left = (h - self.crop) // 2, (w - self.crop) // 2
            x = x[:, :, top : top + self.crop, left : left + self.crop]
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
