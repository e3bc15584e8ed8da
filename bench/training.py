"""Benchmark 2: images/s of the real training loop against pure compute.

Real loop: ``engine.train_one_epoch`` over a ``TensorBatchLoader`` of uint8 images with
``BatchAugment`` (flip + rotation + normalise), as ``skinlab train`` runs it.
Pure compute: forward + backward + optimiser step over slices of a float tensor that is already
augmented, normalised and resident in memory — the ceiling for any data pipeline.
The two alternate (several rounds, best of each) so that a change in the machine's load hits both.
Random init and random pixels: the cost does not depend on the values.
"""

from __future__ import annotations

import statistics

import torch
from torch import nn

from bench.common import Row, timed

BATCH = 64


def _setup(name: str, size: int, n: int, seed: int = 0):
    from skinlab.models import build_model

    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 7, (n,), generator=g)
    model = build_model(name, num_classes=7, pretrained=False, allow_random_init=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    return images, labels, model, opt


def real_loop(model, opt, images, labels, epoch: int) -> int:
    from skinlab.cache import TensorBatchLoader
    from skinlab.engine import train_one_epoch
    from skinlab.presets import BatchAugment

    loader = TensorBatchLoader(images, labels, batch_size=BATCH, shuffle=True,
                               generator=torch.Generator().manual_seed(epoch))
    augment = BatchAugment((0.5,) * 3, (0.25,) * 3, train=True)
    train_one_epoch(model, loader, nn.CrossEntropyLoss(), opt, "cpu", batch_transform=augment,
                    generator=torch.Generator().manual_seed(epoch))
    return len(labels)


def pure_compute(model, opt, x: torch.Tensor, labels) -> int:
    criterion = nn.CrossEntropyLoss()
    model.train()
    for i in range(0, len(x), BATCH):
        opt.zero_grad(set_to_none=True)
        loss = criterion(model(x[i : i + BATCH]), labels[i : i + BATCH])
        loss.backward()
        opt.step()
    return len(labels)


def measure(name: str, size: int, n: int, rounds: int = 3) -> Row:
    from skinlab.presets import BatchAugment

    images, labels, model, opt = _setup(name, size, n)
    # Pre-augmented once, outside the timing: the ideal pipeline costs nothing.
    resident = BatchAugment((0.5,) * 3, (0.25,) * 3, train=True)(images, generator=torch.Generator().manual_seed(1))
    real_loop(model, opt, images[: 4 * BATCH], labels[: 4 * BATCH], 0)  # warm-up
    pure_compute(model, opt, resident[: 4 * BATCH], labels[: 4 * BATCH])
    real_s, pure_s = [], []
    for r in range(rounds):
        pure_s.append(timed(pure_compute, model, opt, resident, labels)[0])
        real_s.append(timed(real_loop, model, opt, images, labels, r)[0])
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
