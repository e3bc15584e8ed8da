"""Decode and resize every image once; keep the result as a memory-mapped uint8 cache.

The guide's pipeline decodes each JPEG and resizes it again on every epoch, which is
decode-bound on a laptop CPU. Here each image is decoded once (JPEG draft mode lets the decoder
skip most of the work when the target is small), on all cores, into an ``(N, 3, S, S)`` uint8
array stored under the skinlab cache and keyed by the dataset's content and the image size: a
changed file, list of images or size builds a new cache, and a damaged cache is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from skinlab.data.images import load_image
from skinlab.data.source import cache_dir

CACHE_VERSION = 1
# Caches at least this big are built straight into their file and returned memory-mapped
# (copy-on-write) instead of being held in RAM: 10,015 images at 224px are 1.5 GB.
MMAP_MIN_BYTES = 512 * 2**20


def decode_resized(path: str, size: int) -> np.ndarray:
    """One image as the cache holds it: ``(3, size, size)`` uint8, JPEG draft decoding, bilinear."""
    rgb = load_image(path, draft=size).resize((size, size), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def dataset_key(paths: Sequence[str], size: int) -> str:
    """Hash of (file path, size in bytes, mtime) for each image plus the image size."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{size}|".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _checksum(arr: np.ndarray) -> str:
    return hashlib.blake2b(memoryview(np.ascontiguousarray(arr)).cast("B"), digest_size=16).hexdigest()


def load_resized(
    paths: Sequence[str],
    size: int,
    *,
    root: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
    verify: bool = True,
) -> torch.Tensor:
    """``(N, 3, size, size)`` uint8 tensor of the images at ``paths``, from cache when valid.

    ``root`` is the cache folder (default ``$SKINLAB_CACHE/images``). The cache's checksum is
    verified on load (``verify``); a mismatch or unreadable file rebuilds it. Decoding runs on
    ``workers`` threads (default: every core, up to 8): Pillow releases the GIL while it decodes
    and resizes, and threads measured as fast as processes without pickling the pixels back.
    A cache of :data:`MMAP_MIN_BYTES` or more is returned memory-mapped (copy-on-write: writing
    to the tensor never changes the file); a smaller one is read into memory.
    """
    from tqdm.auto import tqdm

    paths = [str(p) for p in paths]
    folder = Path(root) if root is not None else cache_dir() / "images"
    key = dataset_key(paths, size)
    data_file = folder / f"{key}-{size}px.npy"
    meta_file = folder / f"{key}-{size}px.json"
    if data_file.is_file() and meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
            arr = np.load(data_file, mmap_mode="r")
            if arr.shape == (len(paths), 3, size, size) and (not verify or _checksum(arr) == meta["checksum"]):
                if arr.nbytes >= MMAP_MIN_BYTES:
                    return torch.from_numpy(np.load(data_file, mmap_mode="c"))
                return torch.from_numpy(np.array(arr))  # copy: tensors must be writable
        except Exception:  # any damage (EOFError, TypeError, ...): rebuilding is always safe
            pass  # damaged cache: rebuild below

    shape = (len(paths), 3, size, size)
    large = int(np.prod(shape)) >= MMAP_MIN_BYTES
    folder.mkdir(parents=True, exist_ok=True)
    tmp = data_file.with_name(data_file.name + f".tmp-{os.getpid()}")
    tmp_meta = meta_file.with_name(meta_file.name + f".tmp-{os.getpid()}")
    try:
        # A large cache is decoded straight into its file, so it never needs to fit in RAM.
        out = (np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape) if large
               else np.empty(shape, dtype=np.uint8))
        workers = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:  # PIL releases the GIL while decoding
            for i, img in enumerate(
                tqdm(pool.map(decode_resized, paths, [size] * len(paths)),
                     total=len(paths), desc=f"decoding images at {size}px (once)", unit="img",
                     disable=not progress)
            ):
                out[i] = img
        checksum = _checksum(out)
        if large:
            out.flush()
            del out
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, out)
        os.replace(tmp, data_file)
        tmp_meta.write_text(json.dumps({"n": len(paths), "size": size, "checksum": checksum}))
        os.replace(tmp_meta, meta_file)
    finally:
        for leftover in (tmp, tmp_meta):
            if leftover.exists():
                leftover.unlink()
    if large:
        return torch.from_numpy(np.load(data_file, mmap_mode="c"))
    return torch.from_numpy(out)


class TensorBatchLoader:
    """Batches of ``(uint8 images, labels)`` sliced from in-memory tensors.

    Replaces a per-image ``DataLoader`` where decoding is already done: one index permutation
    per epoch, drawn from ``generator`` (reseeded by ``fit`` every epoch for reproducibility).
    """

    def __init__(self, images: torch.Tensor, labels, batch_size: int = 64, shuffle: bool = False,
                 generator: torch.Generator | None = None, drop_last: bool = False, sampler=None,
                 indices=None):
        self.images = images
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        # ``indices``: this loader's items are ``images[indices]`` (a split of a shared, possibly
        # memory-mapped cache), gathered batch by batch instead of copied up front.
        self.indices = None if indices is None else torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        n_images = len(self.images) if self.indices is None else len(self.indices)
        if n_images != len(self.labels):
            raise ValueError(f"{n_images} images but {len(self.labels)} labels")
        if self.indices is not None and len(self.indices) and (
                int(self.indices.min()) < 0 or int(self.indices.max()) >= len(self.images)):
            raise ValueError(f"indices must lie in 0..{len(self.images) - 1}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size={batch_size}: must be at least 1")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator if generator is not None else (torch.Generator().manual_seed(0) if shuffle else None)
        self.drop_last = drop_last
        self.sampler = sampler  # e.g. a DistributedSampler or WeightedRandomSampler yielding indices

    def _order(self) -> torch.Tensor:
        if self.sampler is not None:
            return torch.as_tensor(list(iter(self.sampler)), dtype=torch.int64)
        if self.shuffle:
            return torch.randperm(len(self.labels), generator=self.generator)
        return torch.arange(len(self.labels))

    def __iter__(self):
        order = self._order()
        n = len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        for i in range(0, stop, self.batch_size):
            idx = order[i : i + self.batch_size]
            rows = idx if self.indices is None else self.indices[idx]
            yield self.images[rows], self.labels[idx]

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
