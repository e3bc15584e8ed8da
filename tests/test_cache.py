"""The preprocessed-image cache is rebuilt when data or size change and when it is damaged.

The oracle for "correct content" is PIL itself: each image decoded in full, converted to RGB and
resized with bilinear filtering (the cache may decode JPEGs at reduced scale, so JPEG rows are
compared within a small tolerance; PNG rows exactly).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinlab.data import cache
from skinlab.data.cache import dataset_key, load_resized

SIZE = 16


@pytest.fixture
def images(tmp_path, monkeypatch) -> list[str]:
    """Six small images (JPEG and PNG, different sizes and modes) with distinct content."""
    monkeypatch.setenv("SKINLAB_CACHE", str(tmp_path / "skinlab-cache"))
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for i, (w, h) in enumerate([(64, 48), (48, 64), (40, 40), (100, 30), (64, 48), (20, 20)]):
        # smooth gradients + noise: JPEG-friendly but every image different
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 40 * i)], -1)
        arr = np.clip(base + rng.integers(-10, 10, base.shape), 0, 255).astype(np.uint8)
        ext = "png" if i % 2 else "jpg"
        p = folder / f"img{i}.{ext}"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
    return paths


def oracle(path: str, size: int = SIZE) -> np.ndarray:
    with Image.open(path) as im:
        rgb = im.convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(rgb).transpose(2, 0, 1)


def assert_correct(arr, paths, size=SIZE):
    arr = np.asarray(arr)
    assert arr.shape == (len(paths), 3, size, size) and arr.dtype == np.uint8
    for row, p in zip(arr, paths):
        want = oracle(p, size).astype(int)
        if p.endswith(".png"):
            assert np.array_equal(row, want), p
        else:  # draft-mode JPEG decoding: same picture, tiny differences
            assert np.abs(row.astype(int) - want).mean() < 4, p


def cache_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".npy", ".json"))


def load(paths, root, size=SIZE) -> np.ndarray:
    """A private copy: a memory-mapped result must not see the file being damaged in place
    (truncating a mapped file under a live mapping kills the process with SIGBUS)."""
    return np.array(load_resized(paths, size, root=root, progress=False, workers=1).numpy())


# --------------------------------------------------------------------------- normal use


@pytest.fixture(params=["in-memory", "memory-mapped"])
def storage(request, monkeypatch):
    """Small caches are read into RAM, big ones memory-mapped: damage must be caught in both."""
    if request.param == "memory-mapped":
        if not hasattr(cache, "MMAP_MIN_BYTES"):
            pytest.skip("this cache has no memory-mapped mode")
        monkeypatch.setattr(cache, "MMAP_MIN_BYTES", 0)
    return request.param


def test_first_load_matches_pil_and_second_load_reuses_the_file(images, tmp_path, storage):
    root = tmp_path / "c"
    first = load_resized(images, SIZE, root=root, progress=False, workers=1)
    assert_correct(first, images)
    npy = root / f"{dataset_key(images, SIZE)}-{SIZE}px.npy"
    stamp = npy.stat().st_mtime_ns, npy.stat().st_ino
    second = load_resized(images, SIZE, root=root, progress=False, workers=1)
    assert np.array_equal(first.numpy(), second.numpy())
    assert (npy.stat().st_mtime_ns, npy.stat().st_ino) == stamp  # read, not rewritten
    second[0, 0, 0, 0] ^= 255  # the returned tensor is writable and never writes to the file
    assert np.array_equal(load_resized(images, SIZE, root=root, progress=False).numpy(), first.numpy())


def test_default_location_is_under_skinlab_cache(images, tmp_path):
    load_resized(images, SIZE, progress=False, workers=1)
    assert len(cache_files(tmp_path / "skinlab-cache" / "images")) == 2


def test_changed_image_gives_a_new_key_and_new_content(images, tmp_path):
    root = tmp_path / "c"
    before = load(images, root)
    key = dataset_key(images, SIZE)
    changed = images[1]  # a PNG: exact oracle
    Image.new("RGB", (30, 30), (255, 0, 0)).save(changed)
    assert dataset_key(images, SIZE) != key
    after = load(images, root)
    assert np.all(after[1] == np.array([255, 0, 0])[:, None, None])
    assert np.array_equal(np.delete(after, 1, 0), np.delete(before, 1, 0))
    assert_correct(after, images)


def test_touching_a_file_or_changing_the_list_changes_the_key(images):
    key = dataset_key(images, SIZE)
    st = os.stat(images[0])
    os.utime(images[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert dataset_key(images, SIZE) != key
    key = dataset_key(images, SIZE)
    assert dataset_key(images[:-1], SIZE) != key
    assert dataset_key(images[::-1], SIZE) != key


def test_different_size_gets_a_different_file(images, tmp_path):
    root = tmp_path / "c"
    a = load_resized(images, SIZE, root=root, progress=False, workers=1)
    b = load_resized(images, 24, root=root, progress=False, workers=1)
    assert tuple(a.shape[2:]) == (SIZE, SIZE) and tuple(b.shape[2:]) == (24, 24)
    assert_correct(b, images, 24)
    assert dataset_key(images, SIZE) != dataset_key(images, 24)
    names = [p.name for p in cache_files(root)]
    assert len(names) == 4 and sum(f"-{SIZE}px" in n for n in names) == 2 and sum("-24px" in n for n in names) == 2


# --------------------------------------------------------------------------- damaged cache


def _npy(root: Path, images) -> Path:
    return root / f"{dataset_key(images, SIZE)}-{SIZE}px.npy"


def _truncate_half(p: Path):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _truncate_to_zero(p: Path):
    p.write_bytes(b"")


def _flip_data_bytes(p: Path):
    raw = bytearray(p.read_bytes())
    for i in range(len(raw) - 50, len(raw)):  # pixels, not the header: only the checksum can tell
        raw[i] ^= 0x5A
    p.write_bytes(bytes(raw))


def _garbage_header(p: Path):
    raw = bytearray(p.read_bytes())
    raw[:16] = b"this is not npy!"
    p.write_bytes(bytes(raw))


def _wrong_shape(p: Path):
    np.save(p, np.zeros((2, 3, SIZE, SIZE), np.uint8))


def _object_array(p: Path):
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)


NPY_DAMAGE = {
    "truncated": _truncate_half,
    "zero-bytes": _truncate_to_zero,
    "flipped-pixels": _flip_data_bytes,
    "garbage-header": _garbage_header,
    "wrong-shape": _wrong_shape,
    "object-array": _object_array,
}

JSON_DAMAGE = {
    "not-json": "{not json",
    "empty": "",
    "null": "null",
    "list": "[1, 2]",
    "no-checksum": '{"n": 6}',
    "wrong-checksum": '{"n": 6, "size": 16, "checksum": "0000"}',
    "checksum-not-a-string": '{"checksum": 5}',
}


@pytest.mark.parametrize("how", NPY_DAMAGE)
def test_damaged_npy_is_rebuilt_with_correct_content(images, tmp_path, how, storage):
    root = tmp_path / "c"
    good = load(images, root)
    NPY_DAMAGE[how](_npy(root, images))
    rebuilt = load(images, root)
    assert np.array_equal(rebuilt, good)
    assert np.array_equal(np.load(_npy(root, images)), good)  # the file itself is repaired
    assert not [p for p in root.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("how", JSON_DAMAGE)
def test_damaged_json_is_rebuilt_with_correct_content(images, tmp_path, how, storage):
    root = tmp_path / "c"
    good = load(images, root)
    meta = _npy(root, images).with_suffix(".json")
    meta.write_text(JSON_DAMAGE[how])
    rebuilt = load(images, root)
    assert np.array_equal(rebuilt, good)
    assert isinstance(json.loads(meta.read_text()).get("checksum"), str)


def test_missing_json_rebuilds(images, tmp_path, storage):
    root = tmp_path / "c"
    good = load(images, root)
    npy = _npy(root, images)
    npy.with_suffix(".json").unlink()
    _flip_data_bytes(npy)  # without the json the damaged array must not be trusted
    assert np.array_equal(load(images, root), good)
    assert npy.with_suffix(".json").is_file()


def test_key_depends_on_the_files_not_just_their_number(images, tmp_path):
    other = [p + ".copy.png" for p in images]  # same bytes, other files
    for src, dst in zip(images, other):
        Path(dst).write_bytes(Path(src).read_bytes())
    assert dataset_key(other, SIZE) != dataset_key(images, SIZE)
