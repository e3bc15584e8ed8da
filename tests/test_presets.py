"""Transforms: evaluation never augments; batched augmentation matches its definition."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from skinlab.presets import BatchAugment, denormalize, eval_transform, measure_mean_std, train_transform

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def image(seed=0, w=40, h=30):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_eval_transform_is_deterministic_and_matches_torchvision():
    im = image()
    a, b = eval_transform(32, MEAN, STD)(im), eval_transform(32, MEAN, STD)(im)
    assert torch.equal(a, b) and a.shape == (3, 32, 32)
    ref = T.Normalize(MEAN, STD)(T.ToTensor()(T.Resize((32, 32))(im)))
    assert torch.equal(a, ref)


def test_train_transform_augments():
    im = image()
    torch.manual_seed(0)
    outs = [train_transform(32, MEAN, STD)(im) for _ in range(4)]
    assert not all(torch.equal(outs[0], o) for o in outs[1:])


def test_batch_eval_is_plain_normalisation():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    out = BatchAugment(MEAN, STD, train=False)(x)
    ref = T.Normalize(MEAN, STD)(x.float() / 255)
    torch.testing.assert_close(out, ref)


def test_batch_flip_only_equals_exact_flip():
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    aug = BatchAugment((0, 0, 0), (1, 1, 1), train=True, degrees=0.0)
    out = aug(x, generator=torch.Generator().manual_seed(0))
    flipped = torch.rand(64, generator=torch.Generator().manual_seed(0)) < 0.5
    ref = torch.where(flipped.view(-1, 1, 1, 1), x.flip(-1), x).float() / 255
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert 10 < flipped.sum() < 54


def test_batch_rotation_matches_torchvision_rotate():
    x = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    aug = BatchAugment((0, 0, 0), (1, 1, 1), train=True, degrees=90.0, flip=False)
    g = torch.Generator().manual_seed(0)
    # The angle this seed draws, then torchvision's rotate at that angle as the oracle.
    angle = float((torch.rand(1, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 90)
    out = aug(x, generator=g)
    from torchvision.transforms import functional as TF

    ref = TF.rotate(x.float() / 255, angle, interpolation=T.InterpolationMode.BILINEAR)
    inner = (slice(None), slice(None), slice(2, 6), slice(2, 6))  # corners differ in fill handling
    torch.testing.assert_close(out[inner], ref[inner], atol=0.02, rtol=0)


def test_same_generator_same_augmentation():
    x = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    aug = BatchAugment(MEAN, STD)
    a = aug(x, generator=torch.Generator().manual_seed(5))
    b = aug(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_measure_mean_std_matches_numpy():
    x = torch.randint(0, 256, (10, 3, 6, 5), dtype=torch.uint8)
    mean, std = measure_mean_std(x)
    arr = x.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(mean, arr.mean(axis=(0, 2, 3)), atol=1e-9)
    np.testing.assert_allclose(std, arr.std(axis=(0, 2, 3)), atol=1e-9)
    with pytest.raises(ValueError, match="expected images"):
        measure_mean_std(torch.zeros(3, 4, 4))


def test_denormalize_inverts_normalisation():
    x = torch.rand(3, 5, 5)
    norm = T.Normalize(MEAN, STD)(x)
    np.testing.assert_allclose(denormalize(norm, MEAN, STD), x.permute(1, 2, 0).numpy(), atol=1e-6)


def test_shades_of_gray_matches_a_hand_computation():
    from skinlab.presets import shades_of_gray

    # One 1x2 image: pixels (R, G, B) = (200, 100, 50) and (100, 100, 100); p = 6.
    img = torch.tensor([[[200, 100]], [[100, 100]], [[50, 100]]], dtype=torch.uint8)[None]
    e = np.array([((200.0 ** 6 + 100.0 ** 6) / 2) ** (1 / 6), 100.0, ((50.0 ** 6 + 100.0 ** 6) / 2) ** (1 / 6)])
    e = e / np.sqrt((e ** 2).sum())
    gain = 1 / (e * np.sqrt(3))
    expected = np.clip(np.round(np.array([[200, 100], [100, 100], [50, 100]]) * gain[:, None]), 0, 255)
    out = shades_of_gray(img)
    assert out.dtype == torch.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out[0, :, 0, :].numpy(), expected)
    # A grey image (equal channels) is left as it is; a colour cast is removed.
    grey = torch.full((1, 3, 4, 4), 90, dtype=torch.uint8)
    assert torch.equal(shades_of_gray(grey), grey)
    cast = (grey.float() * torch.tensor([1.2, 1.0, 0.7]).view(1, 3, 1, 1)).round().to(torch.uint8)
    balanced = shades_of_gray(cast)
    assert int(balanced.max() - balanced.min()) <= 1


def test_batch_crop_takes_whole_pixel_windows_in_training_and_the_centre_in_evaluation():
    x = torch.randint(0, 256, (6, 3, 10, 10), dtype=torch.uint8)
    crop = BatchAugment((0.0,) * 3, (1 / 255,) * 3, train=True, degrees=0, flip=False, crop=7)
    out = crop(x, torch.Generator().manual_seed(0))
    assert out.shape == (6, 3, 7, 7)
    for i in range(6):  # every output is one 7x7 window of its image, exactly
        windows = [x[i, :, t:t + 7, s:s + 7].float() for t in range(4) for s in range(4)]
        assert any(torch.allclose(out[i], w, atol=1e-3) for w in windows)
    offsets = {tuple(out[i, 0, 0, :2].tolist()) for i in range(6)}
    assert len(offsets) > 1
    centre = BatchAugment((0.0,) * 3, (1 / 255,) * 3, train=False, crop=7)(x)
    assert torch.allclose(centre, x[:, :, 1:8, 1:8].float())
    rotated = BatchAugment((0.0,) * 3, (1 / 255,) * 3, train=True, degrees=60, flip=True, crop=7)(x)
    assert rotated.shape == (6, 3, 7, 7) and torch.isfinite(rotated).all()


# --------------------------------------------------------------------------- a run's evaluation preset


def _jpeg(tmp_path, seed=0, w=60, h=45):
    path = tmp_path / f"img{seed}.jpg"
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (h, w, 3)).astype(np.float64) * np.array([1.0, 0.7, 0.4])  # a colour cast
    Image.fromarray(pixels.astype(np.uint8)).save(path, quality=95)
    return path


@pytest.mark.parametrize("crop, method", [(None, "none"), (15, "none"), (16, "shades_of_gray")])
def test_eval_preset_prepares_an_image_by_the_formula(tmp_path, crop, method):
    """decode and resize as the cache does → colour constancy → centre crop → (x / 255 - mean) / std,
    computed here by hand in NumPy (the p = 6 Minkowski illuminant for Shades of Gray)."""
    from skinlab.data.cache import decode_resized
    from skinlab.presets import EvalPreset

    path = _jpeg(tmp_path)
    preset = EvalPreset(20, MEAN, STD, crop=crop, color_constancy=method)
    x = decode_resized(str(path), 20).astype(np.float64)  # (3, 20, 20)
    if method == "shades_of_gray":
        e = (x ** 6).mean(axis=(1, 2)) ** (1 / 6)
        x = np.clip(np.round(x / (e / np.linalg.norm(e) * np.sqrt(3))[:, None, None]), 0, 255)
    side = crop or 20
    top = (20 - side) // 2
    x = x[:, top:top + side, top:top + side]
    expected = (x / 255 - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]
    got = preset.prepare(path)
    assert got.shape == (1, 3, side, side)
    np.testing.assert_allclose(got[0].numpy(), expected, atol=1e-5)
    assert torch.equal(preset.pixels(path), torch.from_numpy(x.astype(np.uint8)))  # what the model sees, unnormalised
    # the cache's pixels (before colour constancy) give the same input as the path
    assert torch.equal(preset.prepare(torch.tensor(decode_resized(str(path), 20))), got)


def test_eval_preset_batch_transform_and_prepare_agree_and_follow_the_layout(tmp_path):
    from skinlab.data.cache import decode_resized
    from skinlab.presets import EvalPreset, shades_of_gray

    paths = [_jpeg(tmp_path, seed) for seed in range(3)]
    for channels_last in (False, True):
        preset = EvalPreset(24, MEAN, STD, crop=20, color_constancy="shades_of_gray", channels_last=channels_last)
        cache = shades_of_gray(torch.stack([torch.tensor(decode_resized(str(p), 24)) for p in paths]))
        batch = preset.batch_transform()(cache)
        assert batch.is_contiguous(memory_format=torch.channels_last) is channels_last
        for k, p in enumerate(paths):
            one = preset.prepare(p)
            assert one.is_contiguous(memory_format=torch.channels_last) is channels_last
            assert torch.equal(one, batch[k : k + 1])


def test_eval_preset_rejects_what_it_cannot_prepare(tmp_path):
    from skinlab.presets import EvalPreset

    with pytest.raises(ValueError, match="--crop 33: must be between 1 and the image size 32"):
        EvalPreset(32, MEAN, STD, crop=33)
    with pytest.raises(ValueError, match="color_constancy 'retinex'"):
        EvalPreset(32, MEAN, STD, color_constancy="retinex")
    with pytest.raises(ValueError, match="mean needs one value per RGB channel"):
        EvalPreset(32, (0.5,), STD)
    preset = EvalPreset(32, MEAN, STD)
    with pytest.raises(ValueError, match=r"\(1, 3, 32, 32\).*give a path"):
        preset.prepare(torch.zeros(3, 40, 40, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        preset.prepare(torch.zeros(3, 32, 32))
    with pytest.raises(TypeError, match="image path or uint8 pixels"):
        preset.prepare(Image.new("RGB", (32, 32)))
