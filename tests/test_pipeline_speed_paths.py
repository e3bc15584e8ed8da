"""The fast paths give the same numbers as the plain ones: memory-mapped caches, loaders over a
split of a shared cache, channels-last batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from skinlab.data import cache
from skinlab.data.cache import TensorBatchLoader, load_resized
from skinlab.presets import BatchAugment

SIZE = 8


@pytest.fixture()
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        p = tmp_path / "img" / f"im{i}.jpg"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(p, quality=95)
        paths.append(str(p))
    return paths


def test_large_cache_is_memory_mapped_and_equal_to_the_in_memory_one(images, tmp_path, monkeypatch):
    small = load_resized(images, SIZE, root=tmp_path / "ram", progress=False, workers=1)
    monkeypatch.setattr(cache, "MMAP_MIN_BYTES", 0)  # every cache counts as large
    built = load_resized(images, SIZE, root=tmp_path / "mm", progress=False, workers=2)
    again = load_resized(images, SIZE, root=tmp_path / "mm", progress=False)
    assert torch.equal(built, small) and torch.equal(again, small)
    npy = next((tmp_path / "mm").glob("*.npy"))
    assert _mapped_from(again, npy)  # backed by the file, not a copy
    assert not _mapped_from(small, next((tmp_path / "ram").glob("*.npy")))
    again[0, 0, 0, 0] ^= 255  # copy-on-write: the file keeps its bytes
    assert np.array_equal(np.load(npy), small.numpy())
    assert list((tmp_path / "mm").glob("*.tmp-*")) == []  # no leftovers from building in place


def _mapped_from(tensor: torch.Tensor, path) -> bool:
    """Whether the tensor's memory lies in a mapping of ``path`` (Linux /proc/self/maps)."""
    maps = Path("/proc/self/maps")
    if not maps.is_file():
        pytest.skip("needs /proc/self/maps")
    ptr = tensor.data_ptr()
    for line in maps.read_text().splitlines():
        if line.endswith(str(path)):
            lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
            if lo <= ptr < hi:
                return True
    return False


def test_failed_large_build_leaves_no_partial_file(images, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "MMAP_MIN_BYTES", 0)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(Exception, match="broken.jpg"):
        load_resized(images + [str(tmp_path / "broken.jpg")], SIZE, root=tmp_path / "c", progress=False)
    assert [p.name for p in (tmp_path / "c").iterdir()] == []


def test_loader_over_indices_equals_loader_over_the_copied_split():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 4, 4), dtype=torch.uint8, generator=g)
    idx = np.array([3, 17, 5, 0, 9, 11, 12])
    labels = np.arange(20)[idx] % 7
    a = TensorBatchLoader(images[idx], labels, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(4))
    b = TensorBatchLoader(images, labels, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(4),
                          indices=idx)
    assert len(a) == len(b) == 3
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_loader_rejects_indices_outside_the_images():
    with pytest.raises(ValueError, match="indices must lie in 0..4"):
        TensorBatchLoader(torch.zeros(5, 1), [0, 1], indices=[0, 5])
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        TensorBatchLoader(torch.zeros(5, 1), [0, 1, 2], indices=[0, 1])


def test_batch_augment_on_cpu_keeps_the_default_layout_and_values():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    aug = BatchAugment((0.5,) * 3, (0.25,) * 3, train=False)
    out = aug(x)
    assert out.is_contiguous()
    torch.testing.assert_close(out, (x.float() / 255 - 0.5) / 0.25)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batch_augment_output_is_channels_last_on_cuda():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    aug = BatchAugment((0.5,) * 3, (0.25,) * 3, train=True).cuda()
    out = aug(x, generator=torch.Generator().manual_seed(0))
    assert out.is_contiguous(memory_format=torch.channels_last)
    ref = BatchAugment((0.5,) * 3, (0.25,) * 3, train=True)(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.cpu(), ref, atol=1e-4, rtol=1e-4)


def test_bad_shard_is_named():
    with pytest.raises(ValueError, match="shard=\\(2, 2\\)"):
        BatchAugment((0.5,) * 3, (0.25,) * 3, shard=(2, 2))


def test_batch_augment_can_give_channels_last_on_cpu_with_the_same_values():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    plain = BatchAugment((0.5,) * 3, (0.25,) * 3, train=True)(x, generator=torch.Generator().manual_seed(0))
    out = BatchAugment((0.5,) * 3, (0.25,) * 3, train=True, channels_last=True)(x, generator=torch.Generator().manual_seed(0))
    assert plain.is_contiguous() and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, plain, atol=0, rtol=0)


def test_channels_last_where_it_was_measured_faster():
    from skinlab.models import prefers_channels_last

    assert all(prefers_channels_last(f"efficientnet_lite{v}", "cpu") for v in (0, 1, 2))
    assert not prefers_channels_last("lenet", "cpu") and not prefers_channels_last("resnet18", "cpu")
    assert all(prefers_channels_last(m, "cuda") for m in ("lenet", "resnet18", "efficientnet_lite0"))


def test_efficientnet_gives_the_same_outputs_and_gradients_channels_last_on_cpu(one_torch_thread):
    from skinlab.models import build_model

    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", num_classes=7, pretrained=False, allow_random_init=True)
    fast = build_model("efficientnet_lite0", num_classes=7, pretrained=False, allow_random_init=True)
    fast.load_state_dict(model.state_dict())
    fast = fast.to(memory_format=torch.channels_last)
    model.eval(), fast.eval()  # no dropout / drop-connect draws: the two must see the same network
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    out_cl = fast(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, out, atol=1e-4, rtol=1e-4)
    out.sum().backward()
    out_cl.sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    grads_cl = [p.grad for p in fast.parameters() if p.grad is not None]
    assert len(grads) == len(grads_cl) > 0
    for a, b in zip(grads, grads_cl):
        torch.testing.assert_close(b, a, atol=1e-3, rtol=1e-3)
