"""Benchmark 4 (CUDA only): ResNet-18 at 224px, training images/s of what ``skinlab train`` does
on the GPU against plain fp32, through the real loop (``engine.train_one_epoch`` with
``BatchAugment`` on the GPU). Both sides train with the run's optimiser (``engine.make_optimizer``
over ``pipeline.param_groups``); skinlab's side takes the engine's AMP decision
(``engine.grad_scaler``: float16 autocast + a GradScaler on CUDA) and the registry's memory format
(``models.prefers_channels_last``: channels-last on CUDA), the baseline neither. Skips with a note
without a GPU (the code path itself runs on any device: ``measure``)."""

from __future__ import annotations

import time

import torch
from torch import nn

from bench.common import Row, Skipped

MODEL = "resnet18"
SIZE = 224
BATCH = 128
LR = 1e-4  # random pixels and labels: the rate changes no cost, a small one keeps the loss finite


def variant(fast: bool, device, name: str = MODEL):
    """``(model, optimiser, batch augmentation, scaler)`` of one side: ``fast`` takes skinlab's
    decisions for ``device``; otherwise fp32 and NCHW."""
    from skinlab import engine
    from skinlab.config import TrainConfig
    from skinlab.data import NUM_CLASSES
    from skinlab.models import build_model, prefers_channels_last
    from skinlab.pipeline import param_groups
    from skinlab.presets import BatchAugment

    device = torch.device(device)
    model = build_model(name, num_classes=NUM_CLASSES, pretrained=False, allow_random_init=True).to(device)
    channels_last = fast and prefers_channels_last(name, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = engine.make_optimizer(param_groups(model, LR), LR, TrainConfig().weight_decay)
    augment = BatchAugment((0.5,) * 3, (0.25,) * 3, train=True, channels_last=channels_last).to(device)
    return model, opt, augment, engine.grad_scaler(device, amp="auto" if fast else False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: wait for them before reading the clock
        torch.cuda.synchronize()


def _epoch(model, opt, loader, augment, scaler, device) -> float:
    from skinlab.engine import train_one_epoch

    _sync(device)
    t0 = time.perf_counter()
    train_one_epoch(model, loader, nn.CrossEntropyLoss(), opt, device, batch_transform=augment,
                    generator=torch.Generator().manual_seed(0), scaler=scaler)
    _sync(device)
    return time.perf_counter() - t0


def measure(device, n: int, size: int = SIZE, batch: int = BATCH, rounds: int = 2, name: str = MODEL) -> dict:
    """``{False: [images/s, ...], True: [...]}``: baseline and skinlab's side, alternated
    ``rounds`` times (each after a warm-up of three batches), ``n`` random images of ``size`` px."""
    from skinlab.data import NUM_CLASSES
    from skinlab.data.cache import TensorBatchLoader

    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    if device.type == "cuda":
        images = images.pin_memory()
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    results: dict = {False: [], True: []}
    for _ in range(rounds):
        for fast in (False, True):  # alternate: a drift in the card's clock hits both
            model, opt, augment, scaler = variant(fast, device, name)
            warm = TensorBatchLoader(images[: 3 * batch], labels[: 3 * batch], batch)
            _epoch(model, opt, warm, augment, scaler, device)
            loader = TensorBatchLoader(images, labels, batch_size=batch, shuffle=True)
            results[fast].append(n / _epoch(model, opt, loader, augment, scaler, device))
    return results


def run(quick: bool = False, log=print) -> list:
    if not torch.cuda.is_available():
        return [Skipped("gpu", "no CUDA device on this machine: ResNet-18 224px AMP/channels-last not measured")]
    device = torch.device("cuda")
    card = torch.cuda.get_device_name(0)
    torch.backends.cudnn.benchmark = True
    n = BATCH * (8 if quick else 24)
    results = measure(device, n)
    base, fast = max(results[False]), max(results[True])
    log(f"gpu: {card}: fp32 {base:.0f} img/s, AMP + channels-last {fast:.0f} img/s")
    return [Row("gpu", f"ResNet-18 {SIZE}px batch {BATCH} on {card}", "fp32, NCHW", base, fast, "images/s",
                ratio=fast / base, target="faster", passed=fast > base, note=card,
                extra={"runs": {"fp32": results[False], "amp_channels_last": results[True]}})]
