"""The synthetic sample's metadata: the real HAM10000's statistics, and rows drawn from them.

`REAL_STATS` was measured once from the real `HAM10000_metadata.csv` and is embedded here, so the
synthetic csv has the real class shares, lesion sizes, ages, sexes and sites without the data.
"""

from __future__ import annotations

import math
import re

import numpy as np

from skinlab.data.layout import CLASSES

# Real ids are ISIC_0024306..ISIC_0034320 and HAM_0000000..HAM_0007628; ours start far above
# so a synthetic file is never mistaken for a real one.
IMAGE_ID_START = 1_000_000
LESION_ID_START = 1_000_000
SYNTHETIC_ID = re.compile(r"ISIC_1\d{6}")

# Enough lesions per class for a stratified split by lesion (skinlab.split: train, val, test) to be
# able to put one in each part.
MIN_LESIONS_PER_CLASS = 3

# The real csv lists the classes in (roughly) this order, each lesion's rows together.
CSV_DX_ORDER = ("bkl", "df", "mel", "vasc", "bcc", "nv", "akiec")

AGE_BINS = tuple(range(0, 90, 5))  # real ages are multiples of 5 in 0..85

# Measured from the real HAM10000_metadata.csv (10,015 images, 7,470 lesions). All counts are
# per LESION (every image of a real lesion shares dx, dx_type, age and sex; localisation differs
# within 2 of 7,470 lesions, which we do not mimic), except `images`, the image count.
# lesions_by_size[k-1]: lesions with k images. anonymous: lesions whose sex, age and site are all
# unknown together (46 of the 52 lesions without an age); sex/age/site count the other lesions.
REAL_STATS = {
    "akiec": dict(
        images=327,
        lesions_by_size=(151, 57, 18, 2, 0, 0),
        dx_type={"histo": 228},
        anonymous=0,
        sex={"female": 80, "male": 148},
        age_missing=0,
        age_hist=(0, 0, 0, 0, 0, 0, 1, 0, 6, 7, 13, 18, 42, 27, 39, 30, 26, 19),
        site={"lower extremity": 41, "back": 22, "trunk": 1, "abdomen": 3, "upper extremity": 42,
              "face": 84, "chest": 9, "neck": 8, "scalp": 8, "hand": 8, "ear": 2},
    ),
    "bcc": dict(
        images=514,
        lesions_by_size=(175, 118, 33, 1, 0, 0),
        dx_type={"histo": 327},
        anonymous=0,
        sex={"female": 122, "male": 205},
        age_missing=0,
        age_hist=(0, 0, 0, 0, 1, 1, 2, 2, 15, 17, 18, 18, 25, 47, 52, 47, 49, 33),
        site={"lower extremity": 36, "back": 123, "trunk": 6, "abdomen": 9, "upper extremity": 32,
              "face": 61, "chest": 32, "foot": 2, "unknown": 3, "neck": 11, "scalp": 11, "hand": 1},
    ),
    "bkl": dict(
        images=1099,
        lesions_by_size=(440, 220, 55, 8, 2, 2),
        dx_type={"confocal": 34, "consensus": 206, "histo": 487},
        anonymous=9,
        sex={"female": 304, "male": 414},
        age_missing=0,
        age_hist=(3, 1, 0, 0, 0, 0, 3, 18, 25, 39, 63, 58, 82, 71, 128, 103, 69, 55),
        site={"lower extremity": 109, "back": 133, "trunk": 57, "abdomen": 36,
              "upper extremity": 67, "face": 194, "chest": 50, "foot": 1, "unknown": 10,
              "neck": 20, "scalp": 24, "hand": 12, "genital": 1, "ear": 4},
    ),
    "df": dict(
        images=115,
        lesions_by_size=(39, 26, 8, 0, 0, 0),
        dx_type={"consensus": 44, "histo": 29},
        anonymous=0,
        sex={"female": 38, "male": 35},
        age_missing=0,
        age_hist=(0, 0, 0, 0, 0, 1, 3, 8, 6, 8, 10, 9, 8, 11, 3, 5, 1, 0),
        site={"lower extremity": 54, "back": 1, "abdomen": 2, "upper extremity": 14, "foot": 1,
              "genital": 1},
    ),
    "mel": dict(
        images=1113,
        lesions_by_size=(230, 278, 100, 4, 1, 1),
        dx_type={"histo": 614},
        anonymous=0,
        sex={"female": 243, "male": 371},
        age_missing=1,
        age_hist=(0, 1, 0, 0, 4, 7, 16, 19, 27, 39, 49, 72, 65, 75, 89, 59, 48, 43),
        site={"lower extremity": 104, "back": 185, "trunk": 25, "abdomen": 31,
              "upper extremity": 111, "face": 65, "chest": 34, "foot": 15, "unknown": 6,
              "neck": 18, "scalp": 9, "hand": 1, "ear": 10},
    ),
    "nv": dict(
        images=6705,
        lesions_by_size=(4415, 699, 268, 18, 2, 1),
        dx_type={"consensus": 332, "follow_up": 3704, "histo": 1367},
        anonymous=37,
        sex={"female": 2584, "male": 2778, "unknown": 4},
        age_missing=5,
        age_hist=(16, 43, 21, 43, 94, 150, 283, 517, 705, 959, 823, 591, 371, 281, 183, 178, 77,
                  26),
        site={"lower extremity": 1224, "back": 1058, "trunk": 1153, "abdomen": 719,
              "upper extremity": 504, "face": 61, "chest": 112, "foot": 209, "unknown": 138,
              "neck": 60, "scalp": 24, "hand": 39, "genital": 43, "ear": 19, "acral": 3},
    ),
    "vasc": dict(
        images=142,
        lesions_by_size=(64, 25, 8, 1, 0, 0),
        dx_type={"consensus": 65, "histo": 33},
        anonymous=0,
        sex={"female": 48, "male": 50},
        age_missing=0,
        age_hist=(2, 2, 1, 2, 2, 2, 4, 6, 3, 11, 11, 14, 7, 3, 9, 8, 8, 3),
        site={"lower extremity": 16, "back": 12, "trunk": 27, "abdomen": 22, "upper extremity": 6,
              "face": 5, "chest": 3, "neck": 2, "scalp": 2, "hand": 3},
    ),
}



def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _choice(rng: np.random.Generator, counts: dict[str, int]) -> str:
    keys = list(counts)
    p = np.array([counts[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _images_per_class(n_images: int) -> dict[str, int]:
    """Split n_images by the real class shares (largest remainder), at least MIN_LESIONS each."""
    total = sum(s["images"] for s in REAL_STATS.values())
    exact = {c: n_images * REAL_STATS[c]["images"] / total for c in CLASSES}
    counts = {c: max(MIN_LESIONS_PER_CLASS, math.floor(exact[c])) for c in CLASSES}
    missing = n_images - sum(counts.values())
    by_remainder = sorted(CLASSES, key=lambda c: (exact[c] - math.floor(exact[c])), reverse=True)
    for c in by_remainder[:max(missing, 0)]:
        counts[c] += 1
    while missing < 0:  # the minimum pushed us over: take from the largest classes
        c = max((k for k in CLASSES if counts[k] > MIN_LESIONS_PER_CLASS),
                key=lambda k: counts[k] - exact[k])
        counts[c] -= 1
        missing += 1
    return counts


def _lesion_sizes(rng: np.random.Generator, dx: str, n_images: int) -> list[int]:
    """Images per lesion drawn from the real distribution of the class, summing to n_images."""
    dist = np.array(REAL_STATS[dx]["lesions_by_size"], dtype=float)
    sizes: list[int] = []
    while sum(sizes) < n_images:
        sizes.append(int(rng.choice(6, p=dist / dist.sum())) + 1)
    sizes[-1] -= sum(sizes) - n_images
    while len(sizes) < MIN_LESIONS_PER_CLASS:  # tiny datasets: split the largest lesion
        big = int(np.argmax(sizes))
        sizes[big] -= 1
        sizes.append(1)
    return sizes


def _lesion_record(rng: np.random.Generator, dx: str) -> dict[str, str]:
    stats = REAL_STATS[dx]
    n_lesions = sum(stats["lesions_by_size"])
    record = {"dx": dx, "dx_type": _choice(rng, stats["dx_type"])}
    if rng.random() < stats["anonymous"] / n_lesions:
        record.update(age="", sex="unknown", localization="unknown")
        return record
    named = n_lesions - stats["anonymous"]
    if rng.random() < stats["age_missing"] / named:
        record["age"] = ""
    else:
        hist = np.array(stats["age_hist"], dtype=float)
        age = AGE_BINS[int(rng.choice(len(AGE_BINS), p=hist / hist.sum()))]
        record["age"] = f"{float(age):.1f}"  # the real csv writes 80.0
    record["sex"] = _choice(rng, stats["sex"])
    record["localization"] = _choice(rng, stats["site"])
    return record


def synthetic_metadata_rows(n_images: int = 1000, seed: int = 0) -> list[dict]:
    """The metadata rows of a synthetic dataset, in csv order (no images drawn).

    Each row holds the 7 csv columns plus `lesion_index` (the number that seeds the lesion's
    look). Image ids are a shuffled, contiguous block from ISIC_1000000, as the real ids are a
    shuffled block from ISIC_0024306.
    """
    _check_int("n_images", n_images, minimum=MIN_LESIONS_PER_CLASS * len(CLASSES))
    _check_int("seed", seed, minimum=0)
    rng = np.random.default_rng([seed, 0])
    lesions = []  # (dx, size, record)
    per_class = _images_per_class(n_images)
    for dx in CLASSES:
        for size in _lesion_sizes(rng, dx, per_class[dx]):
            lesions.append((dx, size, _lesion_record(rng, dx)))
    lesion_numbers = rng.permutation(len(lesions))
    image_numbers = iter(rng.permutation(n_images))
    order = sorted(range(len(lesions)),
                   key=lambda i: (CSV_DX_ORDER.index(lesions[i][0]), lesion_numbers[i]))
    rows = []
    for i in order:
        dx, size, record = lesions[i]
        for _ in range(size):
            rows.append({
                "lesion_id": f"HAM_{LESION_ID_START + int(lesion_numbers[i]):07d}",
                "image_id": f"ISIC_{IMAGE_ID_START + int(next(image_numbers)):07d}",
                **record,
                "lesion_index": int(lesion_numbers[i]),
            })
    return rows

