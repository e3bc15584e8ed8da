"""Tests of the synthetic HAM10000: layout, determinism, statistics, learnability."""

import csv
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinlab.data.synthetic import (
    CSV_COLUMNS,
    MIN_LESIONS_PER_CLASS,
    REAL_STATS,
    make_synthetic_ham10000,
    render_lesion,
    synthetic_metadata_rows,
)

HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization"
PARTS = ("HAM10000_images_part_1", "HAM10000_images_part_2")
MASKS = "HAM10000_segmentations_lesion_tschandl"
CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
# Written out by hand from the dataset's documentation (not from the module's constants).
REAL_IMAGES = {"nv": 6705, "mel": 1113, "bkl": 1099, "bcc": 514, "akiec": 327, "vasc": 142,
               "df": 115}
SITES = {"lower extremity", "back", "trunk", "abdomen", "upper extremity", "face", "chest", "foot",
         "unknown", "neck", "scalp", "hand", "genital", "ear", "acral"}


def read_rows(root):
    with open(Path(root) / "HAM10000_metadata.csv", newline="") as f:
        return list(csv.DictReader(f))


def image_files(root):
    return {p.stem: p for part in PARTS for p in (Path(root) / part).iterdir()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "ham"
    return make_synthetic_ham10000(root, n_images=150, seed=5, image_size=(64, 48), progress=False)


# ------------------------------------------------------------------------------------- layout

def test_layout_matches_the_official_download(small):
    assert sorted(p.name for p in small.iterdir()) == sorted(
        [*PARTS, MASKS, "HAM10000_metadata.csv", "README.md", "SYNTHETIC"])  # + the marker
    assert (small / "HAM10000_metadata.csv").read_text().splitlines()[0] == HEADER
    rows = read_rows(small)
    assert len(rows) == 150
    ids = [r["image_id"] for r in rows]
    assert len(set(ids)) == 150
    assert all(re.fullmatch(r"ISIC_1\d{6}", i) for i in ids)
    assert all(re.fullmatch(r"HAM_1\d{6}", r["lesion_id"]) for r in rows)

    # Every listed image in exactly one part, nothing else there; part 1 = first half by id.
    listed = {part: {p.stem for p in (small / part).glob("*.jpg")} for part in PARTS}
    assert listed[PARTS[0]].isdisjoint(listed[PARTS[1]])
    assert listed[PARTS[0]] | listed[PARTS[1]] == set(ids)
    assert len(listed[PARTS[0]]) == 75
    assert max(listed[PARTS[0]]) < min(listed[PARTS[1]])
    assert not list(small.glob("*.tmp"))


def test_images_and_masks_match(small):
    files = image_files(small)
    for row in read_rows(small)[::10]:
        image = Image.open(files[row["image_id"]])
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 48)
        mask = Image.open(small / MASKS / f"{row['image_id']}_segmentation.png")
        assert mask.format == "PNG" and mask.mode == "L" and mask.size == image.size
        m = np.asarray(mask)
        assert set(np.unique(m)) <= {0, 255}
        assert 0.01 < (m == 255).mean() < 0.95  # a lesion, with skin around it
        # The mask marks the drawn lesion: pixels inside differ in colour from those outside.
        pixels = np.asarray(image.convert("RGB"), dtype=float)
        inside, outside = pixels[m == 255].mean(0), pixels[m == 0].mean(0)
        assert np.abs(inside - outside).sum() > 15


def test_readme_names_seed_and_count(small):
    text = (small / "README.md").read_text()
    assert "synthetic" in text.lower()
    assert "seed: 5" in text and "images: 150" in text


def test_csv_is_the_planned_metadata(small):
    planned = synthetic_metadata_rows(150, seed=5)
    assert read_rows(small) == [{c: r[c] for c in CSV_COLUMNS} for r in planned]


# -------------------------------------------------------------------------------- determinism

def test_same_seed_same_bytes_other_seed_differs(tmp_path, small):
    again = make_synthetic_ham10000(tmp_path / "a", n_images=150, seed=5, image_size=(64, 48),
                                    progress=False)
    assert (again / "HAM10000_metadata.csv").read_bytes() == \
        (small / "HAM10000_metadata.csv").read_bytes()
    files_a, files_b = image_files(small), image_files(again)
    for image_id in sorted(files_a)[::15]:
        assert np.array_equal(np.asarray(Image.open(files_a[image_id])),
                              np.asarray(Image.open(files_b[image_id])))
        mask = f"{image_id}_segmentation.png"
        assert (small / MASKS / mask).read_bytes() == (again / MASKS / mask).read_bytes()

    other = make_synthetic_ham10000(tmp_path / "b", n_images=150, seed=6, image_size=(64, 48),
                                    progress=False)
    assert (other / "HAM10000_metadata.csv").read_bytes() != \
        (small / "HAM10000_metadata.csv").read_bytes()
    files_c = image_files(other)
    same_id = sorted(files_a)[0]
    assert not np.array_equal(np.asarray(Image.open(files_a[same_id])),
                              np.asarray(Image.open(files_c[same_id])))


def test_two_workers_write_the_same_files(tmp_path):
    one = make_synthetic_ham10000(tmp_path / "one", n_images=30, seed=2, image_size=(48, 36),
                                  progress=False)
    two = make_synthetic_ham10000(tmp_path / "two", n_images=30, seed=2, image_size=(48, 36),
                                  progress=False, workers=2)
    for path in sorted(one.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (two / path.relative_to(one)).read_bytes(), path.name


def test_views_of_one_lesion_are_variations_of_it():
    a, mask_a = render_lesion("mel", (1, 1, 7), (1, 2, 0), (120, 90))
    b, mask_b = render_lesion("mel", (1, 1, 7), (1, 2, 1), (120, 90))
    c, mask_c = render_lesion("mel", (1, 1, 8), (1, 2, 0), (120, 90))
    assert a.shape == (90, 120, 3) and a.dtype == np.uint8 and mask_a.shape == (90, 120)
    assert not np.array_equal(a, b)
    # zoom varies by at most 0.88..1.12 between views: area within (1.12/0.88)^2
    assert 1 / 1.63 < mask_a.sum() / mask_b.sum() < 1.63
    assert not np.array_equal(mask_a, mask_c)


def test_a_render_does_not_depend_on_earlier_renders():
    first, _ = render_lesion("nv", 3, 4, (64, 48))
    render_lesion("nv", 3, 4, (800, 600))  # bigger than any picture before it
    again, _ = render_lesion("nv", 3, 4, (64, 48))
    assert np.array_equal(first, again)


def test_full_size_render_has_the_asked_shape():
    image, mask = render_lesion("bcc", 0, 0, image_size=(600, 450))
    assert image.shape == (450, 600, 3) and mask.shape == (450, 600) and mask.any()


# --------------------------------------------------------------------------------- statistics

@pytest.fixture(scope="module")
def big():
    return synthetic_metadata_rows(3000, seed=0)


def by_lesion(rows):
    lesions = defaultdict(list)
    for r in rows:
        lesions[r["lesion_id"]].append(r)
    return lesions


def test_class_proportions_follow_the_real_data(big):
    counts = Counter(r["dx"] for r in big)
    total = sum(REAL_IMAGES.values())
    assert total == 10015
    for dx, real in REAL_IMAGES.items():
        assert abs(counts[dx] - 3000 * real / total) <= MIN_LESIONS_PER_CLASS, dx


def test_lesions_have_one_to_six_images_mostly_one(big):
    lesions = by_lesion(big)
    sizes = Counter(len(v) for v in lesions.values())
    assert set(sizes) <= set(range(1, 7))
    share_single = sizes[1] / len(lesions)
    assert share_single > 0.5
    assert abs(share_single - 5514 / 7470) < 0.05  # real: 5,514 of 7,470 lesions
    assert abs(len(lesions) / 3000 - 7470 / 10015) < 0.05
    # per class too: melanomas are photographed more often than nevi (real: 2.3% vs 18% single)
    mel = [len(v) for v in lesions.values() if v[0]["dx"] == "mel"]
    nv = [len(v) for v in lesions.values() if v[0]["dx"] == "nv"]
    assert np.mean(mel) > np.mean(nv) + 0.3


def test_a_lesion_is_one_patient_one_diagnosis(big):
    for lesion_id, rows in by_lesion(big).items():
        for column in ("dx", "dx_type", "age", "sex", "localization"):
            assert len({r[column] for r in rows}) == 1, (lesion_id, column)


def test_columns_take_real_values(big):
    ages = [r["age"] for r in big]
    present = [a for a in ages if a]
    assert 0 < ages.count("") < 0.02 * len(ages)  # real: 57 of 10,015
    assert all(re.fullmatch(r"\d{1,2}\.0", a) for a in present)
    values = np.array([float(a) for a in present])
    assert values.min() >= 0 and values.max() <= 85 and np.all(values % 5 == 0)
    sexes = Counter(r["sex"] for r in big)
    assert set(sexes) == {"male", "female", "unknown"}
    assert abs(sexes["male"] / len(big) - 5406 / 10015) < 0.04  # real: 5,406 male images
    sites = Counter(r["localization"] for r in big)
    assert set(sites) <= SITES and "unknown" in sites and len(sites) >= 12
    assert {r["dx_type"] for r in big} <= {"histo", "follow_up", "consensus", "confocal"}
    assert {r["dx"] for r in big if r["dx_type"] == "follow_up"} == {"nv"}
    assert {r["dx_type"] for r in big if r["dx"] == "mel"} == {"histo"}


def test_ages_differ_by_class_as_in_the_real_data(big):
    lesion_ages = defaultdict(list)
    for rows in by_lesion(big).values():
        if rows[0]["age"]:
            lesion_ages[rows[0]["dx"]].append(float(rows[0]["age"]))
    assert abs(np.mean(lesion_ages["nv"]) - 47.3) < 2.0  # real per-lesion means
    assert abs(np.mean(lesion_ages["mel"]) - 61.3) < 4.0
    assert np.mean(lesion_ages["bcc"]) > np.mean(lesion_ages["nv"]) + 10


@pytest.mark.parametrize("n", [21, 200])
def test_every_class_has_lesions_even_when_small(n):
    rows = synthetic_metadata_rows(n, seed=3)
    assert len(rows) == n
    lesions = {dx: {r["lesion_id"] for r in rows if r["dx"] == dx} for dx in CLASSES}
    assert all(len(ids) >= max(2, MIN_LESIONS_PER_CLASS) for ids in lesions.values()), lesions


def test_too_few_images_or_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="n_images"):
        synthetic_metadata_rows(20)
    with pytest.raises(TypeError, match="n_images"):
        make_synthetic_ham10000(tmp_path / "x", n_images=100.0, progress=False)
    with pytest.raises(ValueError, match="image_size"):
        make_synthetic_ham10000(tmp_path / "x", n_images=30, image_size=(64,), progress=False)
    with pytest.raises(ValueError, match="dx"):
        render_lesion("melanoma", 0, 0)


# ---------------------------------------------------------------------------------- overwrite

def test_refuses_an_existing_dataset_unless_overwrite(tmp_path):
    root = make_synthetic_ham10000(tmp_path / "d", n_images=40, seed=1, image_size=(32, 24),
                                   progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        make_synthetic_ham10000(root, n_images=30, seed=1, image_size=(32, 24), progress=False)
    (root / "notes.txt").write_text("mine")
    make_synthetic_ham10000(root, n_images=30, seed=1, image_size=(32, 24), progress=False,
                            overwrite=True)
    assert len(read_rows(root)) == 30
    assert len(image_files(root)) == 30  # the 10 extra images of the first run are gone
    assert len(list((root / MASKS).iterdir())) == 30
    assert (root / "notes.txt").read_text() == "mine"


def test_never_overwrites_what_looks_like_real_data(tmp_path):
    root = tmp_path / "real"
    root.mkdir()
    (root / "HAM10000_metadata.csv").write_text(
        HEADER + "\nHAM_0000118,ISIC_0027419,bkl,histo,80.0,male,scalp\n")
    with pytest.raises(FileExistsError, match="ISIC_0027419"):
        make_synthetic_ham10000(root, n_images=30, progress=False, overwrite=True)
    assert "ISIC_0027419" in (root / "HAM10000_metadata.csv").read_text()


def test_a_non_empty_folder_without_metadata_is_fine(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    make_synthetic_ham10000(tmp_path, n_images=25, image_size=(32, 24), progress=False)
    assert len(read_rows(tmp_path)) == 25


# ------------------------------------------------------------------------------- learnability

def load_32px(root):
    files = image_files(root)
    rows = read_rows(root)
    x = np.stack([np.asarray(Image.open(files[r["image_id"]]).convert("RGB")
                             .resize((32, 32), Image.BILINEAR)) for r in rows])
    return x.astype(np.float32) / 255, np.array([CLASSES.index(r["dx"]) for r in rows])


@pytest.fixture
def one_torch_thread():
    # One thread: on a shared 2-core machine, two threads can run 10x slower under contention.
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)


def test_a_small_cnn_learns_the_classes_but_not_perfectly(tmp_path, one_torch_thread):
    torch = one_torch_thread
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    # Held out by lesion: the test images come from another seed, so from other lesions.
    train = make_synthetic_ham10000(tmp_path / "train", n_images=800, seed=0, image_size=(64, 48),
                                    progress=False)
    test = make_synthetic_ham10000(tmp_path / "test", n_images=600, seed=100,
                                   image_size=(64, 48), progress=False)
    x_train, y_train = load_32px(train)
    x_test, y_test = load_32px(test)
    mean, std = x_train.mean((0, 1, 2)), x_train.std((0, 1, 2))
    x_train = torch.from_numpy((x_train - mean) / std).permute(0, 3, 1, 2)
    x_test = torch.from_numpy((x_test - mean) / std).permute(0, 3, 1, 2)
    y_train = torch.from_numpy(y_train)

    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(  # LeNet-5
        nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
        nn.ReLU(), nn.Linear(84, 7))
    counts = torch.bincount(y_train, minlength=7).float()
    criterion = nn.CrossEntropyLoss(weight=counts.sum() / (7 * counts))
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(20):
        net.train()
        perm = torch.randperm(len(y_train), generator=order)
        for i in range(0, len(perm), 32):
            batch = perm[i:i + 32]
            optimizer.zero_grad()
            criterion(net(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        prob = net(x_test).softmax(1).numpy()
    balanced = balanced_accuracy_score(y_test, prob.argmax(1))
    auc = roc_auc_score(y_test, prob, multi_class="ovr", average="macro")
    # chance: balanced accuracy 1/7 = 0.14, AUC 0.5 (measured here: ~0.5-0.7 and ~0.88)
    assert balanced > 0.35, balanced
    assert auc > 0.75, auc
    assert balanced < 0.95, balanced  # classes overlap: not a solved problem


# ---------------------------------------------------------------------------------- real data

@pytest.mark.realdata
def test_embedded_statistics_match_the_real_metadata():
    from skinlab.data import ENV_VAR

    root = os.environ.get(ENV_VAR)
    if not root:
        pytest.skip(f"{ENV_VAR} is not set")
    import pandas as pd

    meta = pd.read_csv(Path(root) / "HAM10000_metadata.csv", dtype={"age": str})
    meta["age"] = meta["age"].fillna("")
    lesions = meta.drop_duplicates("lesion_id")
    assert meta.groupby("lesion_id")["dx"].nunique().max() == 1
    anonymous = (lesions["sex"] == "unknown") & (lesions["age"] == "") & \
        (lesions["localization"] == "unknown")
    for dx, stats in REAL_STATS.items():
        assert stats["images"] == (meta["dx"] == dx).sum() == REAL_IMAGES[dx]
        sizes = meta[meta["dx"] == dx].groupby("lesion_id").size().value_counts()
        assert stats["lesions_by_size"] == tuple(int(sizes.get(k, 0)) for k in range(1, 7)), dx
        of_class = lesions[lesions["dx"] == dx]
        assert stats["dx_type"] == of_class["dx_type"].value_counts().to_dict(), dx
        assert stats["anonymous"] == int(anonymous[lesions["dx"] == dx].sum()), dx
        named = of_class[~anonymous[lesions["dx"] == dx]]
        assert stats["sex"] == named["sex"].value_counts().to_dict(), dx
        assert stats["site"] == named["localization"].value_counts().to_dict(), dx
        assert stats["age_missing"] == int((named["age"] == "").sum()), dx
        ages = named.loc[named["age"] != "", "age"].astype(float).astype(int)
        assert stats["age_hist"] == tuple(int((ages == a).sum()) for a in range(0, 90, 5)), dx
