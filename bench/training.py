"""Benchmark 2: images/s of the real training loop against pure compute.

Real loop: ``engine.train_one_epoch`` over a ``TensorBatchLoader`` of uint8 images with
``BatchAugment`` (flip + rotation + normalise), as ``skinlab train`` runs it: the run's optimiser
(``engine.make_optimizer`` over ``pipeline.param_groups``), AMP decision (``engine.grad_scaler``:
none on the CPU) and memory format (``models.prefers_channels_last``).
Pure compute: forward + backward + optimiser step over slices of a float tensor that is already
augmented, normalised and resident in memory — the ceiling for any data pipeline.
The two alternate (several rounds, best of each) so that a change in the machine's load hits both.
Random init and random pixels: the cost does not depend on the values.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
from torch import nn

from bench.common import Row, timed

BATCH = 64
DEVICE = torch.device("cpu")  # the CPU benchmark; bench/gpu.py times the CUDA path
LR = 1e-4  # random pixels and labels: the rate changes no cost, a small one keeps the loss finite


@dataclass
class Setup:
    images: torch.Tensor
    labels: torch.Tensor
    model: nn.Module
    opt: torch.optim.Optimizer
    scaler: "torch.amp.GradScaler | None"
    channels_last: bool


def _setup(name: str, size: int, n: int, seed: int = 0, device=DEVICE) -> Setup:
    """Random uint8 images and labels, and the model, optimiser, loss scaler and memory format
    that ``skinlab train`` would use for model ``name`` on ``device``."""
    from skinlab import engine
    from skinlab.config import TrainConfig
    from skinlab.data import NUM_CLASSES
    from skinlab.models import build_model, prefers_channels_last
    from skinlab.pipeline import param_groups

    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    model = build_model(name, num_classes=NUM_CLASSES, pretrained=False, allow_random_init=True).to(device)
    channels_last = prefers_channels_last(name, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = engine.make_optimizer(param_groups(model, LR), LR, TrainConfig().weight_decay)
    return Setup(images, labels, model, opt, engine.grad_scaler(device), channels_last)


def _augment(s: Setup):
    from skinlab.presets import BatchAugment

    return BatchAugment((0.5,) * 3, (0.25,) * 3, train=True, channels_last=s.channels_last)


def real_loop(s: Setup, images, labels, epoch: int) -> int:
    from skinlab.data.cache import TensorBatchLoader
    from skinlab.engine import train_one_epoch

    loader = TensorBatchLoader(images, labels, batch_size=BATCH, shuffle=True,
                               generator=torch.Generator().manual_seed(epoch))
    train_one_epoch(s.model, loader, nn.CrossEntropyLoss(), s.opt, DEVICE, batch_transform=_augment(s),
                    generator=torch.Generator().manual_seed(epoch), scaler=s.scaler)
    return len(labels)


def pure_compute(s: Setup, x: torch.Tensor, labels) -> int:
    """Forward, backward and step over slices of ``x``, in float32 as on the CPU (no scaler there)."""
    criterion = nn.CrossEntropyLoss()
    s.model.train()
    for i in range(0, len(x), BATCH):
        s.opt.zero_grad(set_to_none=True)
        loss = criterion(s.model(x[i : i + BATCH]), labels[i : i + BATCH])
        loss.backward()
        s.opt.step()
    return len(labels)


def measure(name: str, size: int, n: int, rounds: int = 3) -> Row:
    s = _setup(name, size, n)
    images, labels = s.images, s.labels
    # Pre-augmented once, outside the timing: the ideal pipeline costs nothing.
    resident = _augment(s)(images, generator=torch.Generator().manual_seed(1))
    real_loop(s, images[: 4 * BATCH], labels[: 4 * BATCH], 0)  # warm-up
    pure_compute(s, resident[: 4 * BATCH], labels[: 4 * BATCH])
    real_s, pure_s = [], []
    for r in range(rounds):
        pure_s.append(timed(pure_compute, s, resident, labels)[0])
        real_s.append(timed(real_loop, s, images, labels, r)[0])
    real, pure = n / min(real_s), n / min(pure_s)
    # The ratio of each adjacent pair, then their median: on a shared machine the load drifts
    # between rounds, and a pair measured back to back sees nearly the same load.
    ratio = statistics.median(r / p for r, p in zip(real_s, pure_s))
    return Row("training", f"{name} {size}px, batch {BATCH}, {n} images/epoch",
               "pure compute on a resident pre-augmented tensor", pure, real, "images/s",
               ratio=ratio, target="<= 1.2x slower", passed=ratio <= 1.2,
               note="ratio = median over rounds of real-loop time / pure-compute time (images/s: best round of each)",
               extra={"real_s": real_s, "pure_s": pure_s, "threads": torch.get_num_threads()})


def run(quick: bool = False, log=print) -> list:
    cases = [("lenet", 32, 2048 if quick else 6144), ("resnet18", 64, 256 if quick else 768)]
    rows = []
    for name, size, n in cases:
        log(f"training: {name} {size}px")
        rows.append(measure(name, size, n, rounds=3 if quick else 5))
    return rows
