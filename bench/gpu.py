"""Benchmark 4 (CUDA only): ResNet-18 at 224px, training images/s with and without automatic
mixed precision + channels-last, through the real loop (``engine.train_one_epoch`` with the
GradScaler ``fit`` uses, and ``BatchAugment`` on the GPU). Skips with a note without a GPU."""

from __future__ import annotations

import torch
from torch import nn

from bench.common import Row, Skipped

SIZE = 224
BATCH = 128


def _epoch(model, opt, loader, augment, scaler, device) -> float:
    from skinlab.engine import train_one_epoch

    torch.cuda.synchronize()
    import time

    t0 = time.perf_counter()
    train_one_epoch(model, loader, nn.CrossEntropyLoss(), opt, device, batch_transform=augment,
                    generator=torch.Generator().manual_seed(0), scaler=scaler)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def run(quick: bool = False, log=print) -> list:
    if not torch.cuda.is_available():
        return [Skipped("gpu", "no CUDA device on this machine: ResNet-18 224px AMP/channels-last not measured")]
    from skinlab.cache import TensorBatchLoader
    from skinlab.models import build_model
    from skinlab.presets import BatchAugment

    device = torch.device("cuda")
    card = torch.cuda.get_device_name(0)
    torch.backends.cudnn.benchmark = True
    n = BATCH * (8 if quick else 24)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g).pin_memory()
    labels = torch.randint(0, 7, (n,), generator=g)
    results = {}
    for fast in (False, True, False, True):  # alternate; best of two each
        model = build_model("resnet18", num_classes=7, pretrained=False, allow_random_init=True).to(device)
        if fast:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        augment = BatchAugment((0.5,) * 3, (0.25,) * 3, train=True, channels_last=fast).to(device)
        scaler = torch.amp.GradScaler("cuda") if fast else None
        loader = TensorBatchLoader(images, labels, batch_size=BATCH, shuffle=True)
        _epoch(model, opt, TensorBatchLoader(images[: 3 * BATCH], labels[: 3 * BATCH], BATCH), augment, scaler, device)
        dt = _epoch(model, opt, loader, augment, scaler, device)
        results.setdefault(fast, []).append(n / dt)
    base, fast = max(results[False]), max(results[True])
    log(f"gpu: {card}: fp32 {base:.0f} img/s, AMP + channels-last {fast:.0f} img/s")
    return [Row("gpu", f"ResNet-18 {SIZE}px batch {BATCH} on {card}", "fp32, NCHW", base, fast, "images/s",
                ratio=fast / base, target="faster", passed=fast > base, note=card,
                extra={"runs": {"fp32": results[False], "amp_channels_last": results[True]}})]
