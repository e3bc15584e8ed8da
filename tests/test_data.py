"""Reading HAM10000: metadata forms, image folders, the dataset class, the real counts."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from skinlab.data import (
    CLASS_NAMES,
    CLASSES,
    ENV_VAR,
    IMAGE_FOLDERS,
    DataError,
    HAM10000Dataset,
    find_images,
    load_image,
    load_metadata,
    read_metadata,
    resolve_data_dir,
    summarize,
)


def test_class_order_is_fixed_and_named():
    assert CLASSES == ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
    assert CLASSES == tuple(sorted(CLASSES))  # ImageFolder's alphabetical order
    assert set(CLASS_NAMES) == set(CLASSES)


def test_synthetic_sample_loads_with_labels_and_paths(synth_dir):
    m = load_metadata(synth_dir)
    assert len(m) == 300
    assert m["label"].tolist() == [CLASSES.index(d) for d in m["dx"]]
    assert all(p.endswith(".jpg") for p in m["path"])
    parts = {p.split("/")[-2] for p in m["path"]}
    assert parts == set(IMAGE_FOLDERS)


def test_dataverse_form_with_extra_columns_and_flat_folder(tmp_path, synth_dir):
    m = pd.read_csv(synth_dir / "HAM10000_metadata.csv")
    m["dataset"] = "vidir_modern"
    (tmp_path / "flat").mkdir()
    for p in find_images(synth_dir).values():
        shutil.copy(p, tmp_path / "flat" / p.name)
    m.to_csv(tmp_path / "flat" / "HAM10000_metadata.csv", index=False)
    loaded = load_metadata(tmp_path / "flat")
    assert "dataset" in loaded.columns and loaded["path"].notna().all()


def test_missing_ages_and_unknown_sex_are_kept(tmp_path):
    csv = tmp_path / "HAM10000_metadata.csv"
    csv.write_text("lesion_id,image_id,dx,dx_type,age,sex,localization\n"
                   "L1,I1,nv,histo,,unknown,unknown\nL2,I2,mel,histo,45.0,,back\n")
    m = read_metadata(csv)
    assert np.isnan(m.loc[0, "age"]) and m.loc[0, "sex"] == "unknown" and m.loc[1, "sex"] == "unknown"


def test_unknown_dx_names_the_line(tmp_path):
    csv = tmp_path / "HAM10000_metadata.csv"
    csv.write_text("lesion_id,image_id,dx\nL1,I1,nv\nL2,I2,melanoma\n")
    with pytest.raises(DataError, match="line 3: unknown dx 'melanoma'"):
        read_metadata(csv)


def test_dataset_returns_tensor_and_label(synth_dir):
    from torchvision import transforms as T

    m = load_metadata(synth_dir).head(5)
    ds = HAM10000Dataset(m, T.Compose([T.Resize((32, 32)), T.ToTensor()]))
    x, y = ds[3]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y == m["label"].iloc[3] and len(ds) == 5


def test_the_dataset_variable_is_the_one_the_book_documents():
    assert ENV_VAR == "HAM10000_DIR"  # book/01_introduction.md, book/02_data.md, README.md


def test_resolve_prefers_argument_then_env(monkeypatch, synth_dir, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert resolve_data_dir(synth_dir).root == synth_dir
    assert resolve_data_dir().root == tmp_path
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_dir()


def test_default_is_the_synthetic_sample_and_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("SKINLAB_CACHE", str(tmp_path))
    src = resolve_data_dir(n_synthetic=80, progress=False)
    assert src.synthetic and "synthetic sample" in src.description
    assert summarize(load_metadata(src.root))["images"] == 80


def test_synthetic_sample_is_the_same_whatever_the_training_seed(private_cache):
    """`skinlab train --seed 1` trains on the same synthetic data as `--seed 0`: the sample has a
    seed of its own; the training seed only draws the split, the initial weights and the batches."""
    from skinlab.pipeline import TrainConfig, prepare_data

    prepared = [prepare_data(TrainConfig(seed=seed, n_synthetic=70, progress=False), log=None)
                for seed in (0, 1)]
    assert prepared[0].source.root == prepared[1].source.root
    pd.testing.assert_frame_equal(prepared[0].metadata, prepared[1].metadata)
    assert torch.equal(prepared[0].images, prepared[1].images)


@pytest.mark.realdata
def test_real_counts(real_metadata):
    s = summarize(real_metadata)
    assert s["images"] == 10015 and s["lesions"] == 7470
    assert s["classes"] == {"akiec": 327, "bcc": 514, "bkl": 1099, "df": 115, "mel": 1113, "nv": 6705, "vasc": 142}
    assert real_metadata["age"].isna().sum() == 57


@pytest.mark.realdata
def test_real_images_from_both_part_folders_load(real_metadata):
    for folder in IMAGE_FOLDERS:
        rows = real_metadata[real_metadata["path"].str.contains(f"/{folder}/")]
        assert len(rows) >= 5000
        img = load_image(rows["path"].iloc[0])
        assert img.mode == "RGB" and min(img.size) > 0
