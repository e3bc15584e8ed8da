"""Benchmark 1: one epoch of the data pipeline over full-size 600x450 JPEGs.

Baseline (the guide): a per-image ``Dataset`` that opens each JPEG with PIL and applies
``Resize((32, 32))`` → ``RandomHorizontalFlip`` → ``RandomRotation(60)`` → ``ToTensor`` →
``Normalize`` inside a ``DataLoader`` (batch 64, shuffled, 2 worker processes: both cores).

skinlab: ``load_resized`` (decodes each image once into the uint8 cache; the first epoch pays for
building it) → ``TensorBatchLoader`` → ``BatchAugment`` (same flip and rotation, on whole batches).

An "epoch" is every batch produced, augmented and normalised; no model runs. Both pipelines read
files that are already in the OS page cache (a first pass reads them all), so the comparison is
about decoding, not about the disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from bench.common import Row, Skipped, bench_cache_root, timed

SIZE = 32
BATCH = 64
FULL_N = 10_015
QUICK_N = 1_000


class GuideDataset(torch.utils.data.Dataset):
    """What the guide writes: decode and transform one full-size image per ``__getitem__``."""

    def __init__(self, paths, labels, transform):
        self.paths, self.labels, self.transform = list(paths), list(labels), transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            image = im.convert("RGB")
        return self.transform(image), self.labels[i]


def guide_loader(paths, labels, mean, std, workers: int):
    from torchvision import transforms as T

    transform = T.Compose([
        T.Resize((SIZE, SIZE)),
        T.RandomHorizontalFlip(),
        T.RandomRotation(60),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])
    return torch.utils.data.DataLoader(GuideDataset(paths, labels, transform), batch_size=BATCH, shuffle=True,
                                       num_workers=workers, generator=torch.Generator().manual_seed(0),
                                       persistent_workers=False)


def _consume(batches) -> int:
    n = 0
    for x, _ in batches:
        n += x.shape[0]
    return n


def skinlab_load(paths, cache_root, workers: int) -> torch.Tensor:
    """What ``skinlab train`` does once per run: the cache (built on the first run, read after)."""
    from skinlab.data.cache import load_resized

    return load_resized(paths, SIZE, root=cache_root, workers=workers, progress=False)


def skinlab_epoch(images, labels, mean, std, epoch: int) -> int:
    """One epoch as ``skinlab train`` runs it, over the loaded cache."""
    from skinlab.data.cache import TensorBatchLoader
    from skinlab.presets import BatchAugment

    loader = TensorBatchLoader(images, labels, batch_size=BATCH, shuffle=True,
                               generator=torch.Generator().manual_seed(epoch))
    augment = BatchAugment(mean, std, train=True)
    g = torch.Generator().manual_seed(epoch)
    return _consume((augment(x, generator=g), y) for x, y in loader)


def skinlab_first_epoch(paths, labels, cache_root, mean, std, workers: int) -> tuple[int, torch.Tensor]:
    images = skinlab_load(paths, cache_root, workers)
    return skinlab_epoch(images, labels, mean, std, 0), images


def dataset(quick: bool) -> tuple[str, Path]:
    from skinlab.data.synthetic import make_synthetic_ham10000

    n = QUICK_N if quick else FULL_N
    root = bench_cache_root() / f"bench-fullres-{n}"
    if not (root / "HAM10000_metadata.csv").is_file():
        print(f"  making {n} synthetic 600x450 images in {root} (once; reused by later runs)")
        if root.exists():  # a half-written folder from an interrupted run
            shutil.rmtree(root)
        make_synthetic_ham10000(root, n_images=n, seed=0, image_size=(600, 450), workers=2, progress=True)
    return f"synthetic {n} x 600x450", root


def _warm_page_cache(paths) -> None:
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 20):
                pass


def run_one(name: str, root: Path, epochs: int = 3, guide_workers: int = 2, workers: int = 2) -> list[Row]:
    from skinlab.data import load_metadata

    meta = load_metadata(root)
    paths, labels = meta["path"].astype(str).tolist(), meta["label"].tolist()
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)  # the values do not change the cost
    _warm_page_cache(paths)
    guide_s, ours_s = [], []
    cache_root = Path(tempfile.mkdtemp(prefix="skinlab-bench-cache-"))
    # One intra-op thread in this process, as each DataLoader worker of the guide has: BatchAugment's
    # small ops gain nothing from a second thread, and on a loaded machine OpenMP's spin-waiting
    # made them ~10x slower (measured: 0.35 s vs 4-5 s per 1,000-image epoch at load 8).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        images = None
        for epoch in range(epochs):
            # Side by side, alternating, so a change in the machine's load hits both.
            dt, n = timed(_consume, guide_loader(paths, labels, mean, std, guide_workers))
            assert n == len(paths)
            guide_s.append(dt)
            if images is None:  # first epoch: decode into the cache (2 threads), then iterate
                dt, (n, images) = timed(skinlab_first_epoch, paths, labels, cache_root, mean, std, workers)
            else:
                dt, n = timed(skinlab_epoch, images, labels, mean, std, epoch)
            assert n == len(paths)
            ours_s.append(dt)
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(cache_root, ignore_errors=True)
    n = len(paths)
    later_guide = min(guide_s[1:])
    later_ours = min(ours_s[1:])
    rows = [
        Row("data", f"{name}: first epoch (skinlab builds its cache)", f"guide DataLoader, {guide_workers} workers",
            n / guide_s[0], n / ours_s[0], "images/s", guide_s[0] / ours_s[0], ">= 1.5x",
            guide_s[0] / ours_s[0] >= 1.5, extra={"guide_s": guide_s[0], "skinlab_s": ours_s[0], "n": n}),
        Row("data", f"{name}: later epochs (best of {epochs - 1})", f"guide DataLoader, {guide_workers} workers",
            n / later_guide, n / later_ours, "images/s", later_guide / later_ours, ">= 20x",
            later_guide / later_ours >= 20, extra={"guide_s": guide_s, "skinlab_s": ours_s, "n": n}),
    ]
    return rows


def run(quick: bool = False, log=print) -> list:
    results: list = []
    name, root = dataset(quick)
    log(f"data: {name}")
    results += run_one(name, root, epochs=3)
    # No default folder: a machine's absolute path would only be right on that machine.
    sample_env = os.environ.get("SKINLAB_FULLRES_SAMPLE")
    sample = Path(sample_env) if sample_env else None
    if sample is not None and (sample / "HAM10000_metadata.csv").is_file():
        log(f"data: real sample {sample}")
        results += run_one(f"real HAM10000 sample ({sample.name})", sample, epochs=3)
    else:
        results.append(Skipped("data", f"no real full-size sample at {sample} (set SKINLAB_FULLRES_SAMPLE)"
                               if sample is not None else "no real full-size sample (set SKINLAB_FULLRES_SAMPLE)"))
    return results
