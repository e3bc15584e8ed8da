"""Bad data gets a clear answer: every damaged-dataset case, at the API and through the CLI.

Each case starts from one small synthetic sample (made once per session, copied per test) and
damages it. For each case: ``check_dataset`` lists the problem; the loading API raises
``DataError`` naming the file or csv line; ``skinlab data check`` exits 1 listing it; ``skinlab
train`` exits 2 with one ``skinlab: error: ...`` line naming it. Odd-but-valid data (grayscale,
CMYK, RGBA, any resolution, missing ages, ``unknown`` sex/site, ';' or tab csv) loads and trains.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

from skinlab import cli, data
from skinlab.data import DataError, check_dataset, find_images, load_image, load_metadata

REPO = Path(__file__).resolve().parents[1]
CSV = data.METADATA_FILE


# --------------------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="session")
def base_sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reliability-base") / "ham"
    return data.make_synthetic_ham10000(root, n_images=60, seed=0, image_size=(64, 48), progress=False)


@pytest.fixture
def ds(base_sample, tmp_path, monkeypatch) -> Path:
    """A private, damageable copy of the base sample; caches go to a tmp dir."""
    monkeypatch.setenv("SKINLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    root = tmp_path / "ham"
    shutil.copytree(base_sample, root)
    return root


def read_rows(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / CSV, dtype=str, keep_default_na=False)


def write_rows(root: Path, df: pd.DataFrame, sep: str = ",", **kw) -> None:
    df.to_csv(root / CSV, index=False, sep=sep, **kw)


def image_files(root: Path) -> list[Path]:
    return [find_images(root)[k] for k in sorted(find_images(root))]


# --------------------------------------------------------------------------- damage


def corrupt_jpeg(root: Path) -> str:
    """Random bytes over the JPEG's tables (after the SOI marker): the decoder refuses it."""
    p = image_files(root)[0]
    raw = bytearray(p.read_bytes())
    raw[20:400] = np.random.default_rng(0).integers(0, 256, 380, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(raw))
    return p.name


def corrupt_huffman_table(root: Path) -> str:
    """A damaged Huffman table: the header parses, decoding fails ("broken data stream")."""
    p = image_files(root)[1]
    raw = bytearray(p.read_bytes())
    dht = raw.find(b"\xff\xc4")
    raw[dht + 5 : dht + 21] = b"\xff" * 16  # impossible code-length counts
    p.write_bytes(bytes(raw))
    return p.name


def truncated_jpeg(root: Path) -> str:
    p = image_files(root)[2]
    raw = p.read_bytes()
    p.write_bytes(raw[: int(len(raw) * 0.9)])
    return p.name


def zero_byte_jpeg(root: Path) -> str:
    p = image_files(root)[3]
    p.write_bytes(b"")
    return p.name


def text_named_jpg(root: Path) -> str:
    p = image_files(root)[4]
    p.write_text("lesion_id,image_id\nthis is a csv, not a JPEG\n")
    return p.name


def missing_image(root: Path) -> str:
    p = image_files(root)[5]
    p.unlink()
    return p.stem


def image_without_row(root: Path) -> str:
    src = image_files(root)[6]
    extra = src.with_name("ISIC_9999999.jpg")
    shutil.copy(src, extra)
    return extra.name


def unknown_dx(root: Path) -> str:
    df = read_rows(root)
    df.loc[7, "dx"] = "melanocytic"
    write_rows(root, df)
    return "line 9: unknown dx 'melanocytic'"


def duplicate_image_id(root: Path) -> str:
    df = read_rows(root)
    write_rows(root, pd.concat([df, df.loc[[10]]], ignore_index=True))  # row 10 again, at the end
    return f"image_id {df.loc[10, 'image_id']} appears more than once (lines 12, {len(df) + 2})"


def lesion_two_diagnoses(root: Path) -> str:
    df = read_rows(root)
    lesion = df["lesion_id"].value_counts().index[0]  # a lesion with several images
    rows = df.index[df["lesion_id"] == lesion]
    assert len(rows) >= 2
    other = "vasc" if df.loc[rows[0], "dx"] != "vasc" else "df"
    df.loc[rows[-1], "dx"] = other
    write_rows(root, df)
    return f"lesion {lesion} has images with different diagnoses"


def missing_column(root: Path) -> str:
    write_rows(root, read_rows(root).drop(columns=["dx"]))
    return "missing required column(s) dx"


def empty_csv(root: Path) -> str:
    (root / CSV).write_bytes(b"")
    return "the metadata file is empty"


def header_only_csv(root: Path) -> str:
    (root / CSV).write_text(",".join(data.KAGGLE_COLUMNS) + "\n")
    return "has a header but no rows"


def pipe_delimited_csv(root: Path) -> str:
    write_rows(root, read_rows(root), sep="|")
    return "has no ',', ';' or tab delimiter"


# name → (damage, which API call must raise)
BAD_CASES = {
    "corrupt-jpeg": (corrupt_jpeg, "image"),
    "corrupt-huffman-table": (corrupt_huffman_table, "image"),
    "truncated-jpeg": (truncated_jpeg, "image"),
    "zero-byte-jpeg": (zero_byte_jpeg, "image"),
    "text-named-jpg": (text_named_jpg, "image"),
    "missing-image": (missing_image, "metadata"),
    "unknown-dx": (unknown_dx, "metadata"),
    "duplicate-image-id": (duplicate_image_id, "metadata"),
    "lesion-two-diagnoses": (lesion_two_diagnoses, "metadata"),
    "missing-column": (missing_column, "metadata"),
    "empty-csv": (empty_csv, "metadata"),
    "header-only-csv": (header_only_csv, "metadata"),
    "no-delimiter-csv": (pipe_delimited_csv, "metadata"),
}

# The exact wording each image case produces (after "<path>: ").
IMAGE_MESSAGES = {
    "corrupt-jpeg": "is not an image PIL can read",
    "corrupt-huffman-table": "corrupt or truncated image (broken data stream when reading image file)",
    "truncated-jpeg": "corrupt or truncated image (image file is truncated",
    "zero-byte-jpeg": "is empty (0 bytes)",
    "text-named-jpg": "is not an image PIL can read",
}


def damage(root: Path, case: str) -> str:
    return BAD_CASES[case][0](root)


# --------------------------------------------------------------------------- API level


def test_the_undamaged_sample_is_clean(ds):
    assert check_dataset(ds) == []
    assert len(load_metadata(ds)) == 60


@pytest.mark.parametrize("case", BAD_CASES)
def test_check_dataset_lists_the_problem(ds, case):
    named = damage(ds, case)
    problems = check_dataset(ds)
    hits = [p for p in problems if named in p]
    assert hits, f"{case}: {named!r} not in {problems}"
    if case in IMAGE_MESSAGES:
        assert IMAGE_MESSAGES[case] in hits[0]


@pytest.mark.parametrize("case", [c for c, (_, kind) in BAD_CASES.items() if kind == "image"])
def test_load_image_raises_naming_the_file(ds, case):
    named = damage(ds, case)
    path = find_images(ds)[Path(named).stem]
    with pytest.raises(DataError) as err:
        load_image(path)
    assert str(err.value).startswith(f"{path}: {IMAGE_MESSAGES[case]}")
    with pytest.raises(DataError, match=IMAGE_MESSAGES[case].split(" (")[0]):
        load_image(path, draft=32)  # the cache's fast path decodes at reduced scale


@pytest.mark.parametrize("case", [c for c, (_, kind) in BAD_CASES.items() if kind == "metadata"])
def test_load_metadata_raises_naming_the_row_or_file(ds, case):
    named = damage(ds, case)
    with pytest.raises(DataError) as err:
        load_metadata(ds)
    message = str(err.value)
    assert named in message
    assert str(ds / CSV) in message  # which file
    assert "\n" not in message


@pytest.mark.parametrize("case", BAD_CASES)
def test_training_raises_data_error(ds, tmp_path, case):
    from skinlab.pipeline import TrainConfig, train

    named = damage(ds, case)
    cfg = TrainConfig(data=str(ds), out=str(tmp_path / "run"), epochs=1, progress=False, figures=False,
                      workers=1)
    with pytest.raises(DataError) as err:
        train(cfg, log=None)
    assert named in str(err.value)
    assert not (tmp_path / "run" / "last.pt").exists()  # stopped before training


def test_metadata_errors_name_the_csv_line(ds):
    unknown_dx(ds)
    with pytest.raises(DataError, match=r"HAM10000_metadata.csv, line 9: unknown dx 'melanocytic' \(expected one of akiec, bcc"):
        load_metadata(ds)


def test_several_metadata_problems_are_counted_in_the_error(ds):
    unknown_dx(ds)
    duplicate_image_id(ds)
    with pytest.raises(DataError, match=r"and 1 more problems; run `skinlab data check`"):
        load_metadata(ds)


def test_check_lists_every_problem_at_once(ds):
    named = [f(ds) for f in (corrupt_jpeg, corrupt_huffman_table, truncated_jpeg, zero_byte_jpeg, text_named_jpg,
                              missing_image, image_without_row, unknown_dx, duplicate_image_id,
                              lesion_two_diagnoses)]
    problems = check_dataset(ds)
    for n in named:
        assert sum(n in p for p in problems) >= 1, (n, problems)
    assert len(problems) == len(named)  # one line each, nothing spurious


def test_header_only_csv_is_one_problem_not_one_per_image(ds):
    header_only_csv(ds)
    assert check_dataset(ds) == [f"{ds / CSV}: has a header but no rows"]


def test_images_are_still_decoded_when_the_csv_is_unreadable(ds):
    empty_csv(ds)
    bad = zero_byte_jpeg(ds)
    problems = check_dataset(ds)
    assert any("the metadata file is empty" in p for p in problems)
    assert any(bad in p and "is empty (0 bytes)" in p for p in problems)


def test_image_without_metadata_row_is_listed_but_not_loaded(ds):
    extra = image_without_row(ds)
    assert check_dataset(ds) == [f"{find_images(ds)['ISIC_9999999']}: image has no row in {CSV}"]
    assert extra == "ISIC_9999999.jpg"
    md = load_metadata(ds)  # training uses the metadata's images only: an extra file is harmless
    assert len(md) == 60 and "ISIC_9999999" not in set(md["image_id"])


def test_missing_image_error_lists_the_ids(ds):
    missing = missing_image(ds)
    with pytest.raises(DataError, match=rf"1 image\(s\) listed in the metadata are missing .*: {missing}$"):
        load_metadata(ds)
    assert f"{missing}: listed in {CSV} but no image file found" in check_dataset(ds)


def test_truncated_jpeg_is_caught_even_with_load_truncated_images(ds, monkeypatch):
    """PIL pads truncated JPEGs silently when LOAD_TRUNCATED_IMAGES is on (a global other code may
    set); load_image then checks the end-of-image marker itself."""
    name = truncated_jpeg(ds)
    path = next(p for p in image_files(ds) if p.name == name)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with Image.open(path) as im:
        im.load()  # PIL alone: no error
    with pytest.raises(DataError, match="truncated"):
        load_image(path)
    assert any(name in p for p in check_dataset(ds))
    good = next(p for p in image_files(ds) if p.name != name)
    assert load_image(good).size == (64, 48)


def test_pil_rejects_truncated_jpeg_by_default(ds):
    """The fact load_image relies on: with the default flag, PIL raises on a truncated JPEG,
    also in draft mode (the cache's reduced-scale decoding)."""
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    path = find_images(ds)[Path(truncated_jpeg(ds)).stem]
    for draft in (None, (16, 16)):
        with Image.open(path) as im:
            if draft:
                im.draft("RGB", draft)
            with pytest.raises(OSError, match="truncated"):
                im.load()


def test_decompression_bomb_is_a_data_error(ds, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x48 > 2 * 100: PIL refuses it
    path = image_files(ds)[0]
    with pytest.raises(DataError, match=rf"^{path}: .*too large"):
        load_image(path)


# --------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_csv_load_like_the_comma_one(ds, sep):
    expected = load_metadata(ds)
    write_rows(ds, read_rows(ds), sep=sep)
    assert sep in (ds / CSV).read_text().splitlines()[0]
    pd.testing.assert_frame_equal(load_metadata(ds), expected)
    assert check_dataset(ds) == []


def test_dataverse_quoted_tab_file_loads_like_the_comma_one(ds):
    """Dataverse serves an ingested, quoted, tab-separated ``.tab`` copy."""
    expected = load_metadata(ds)
    df = read_rows(ds)
    (ds / CSV).unlink()
    df.to_csv(ds / "HAM10000_metadata.tab", index=False, sep="\t", quoting=csv.QUOTE_ALL)
    assert (ds / "HAM10000_metadata.tab").read_text().startswith('"lesion_id"\t"image_id"')
    got = load_metadata(ds)
    pd.testing.assert_frame_equal(got, expected)


def test_csv_without_a_known_delimiter_is_a_clear_error(ds):
    pipe_delimited_csv(ds)
    with pytest.raises(DataError, match=r"the header line 'lesion_id\|image_id.* has no ',', ';' or tab delimiter"):
        load_metadata(ds)


# --------------------------------------------------------------------------- odd but valid


def test_missing_age_and_unknown_sex_or_site_are_accepted(ds):
    df = read_rows(ds)
    df.loc[0, "age"] = ""
    df.loc[1, "sex"] = "unknown"
    df.loc[2, "localization"] = "unknown"
    df.loc[3, ["age", "sex", "localization"]] = ["", "", ""]
    write_rows(ds, df)
    assert check_dataset(ds) == []
    md = load_metadata(ds)
    assert md["age"].isna().sum() == 2
    assert md.loc[1, "sex"] == "unknown" and md.loc[3, "sex"] == "unknown"
    assert md.loc[2, "localization"] == "unknown" and md.loc[3, "localization"] == "unknown"


def _odd_images(root: Path) -> dict[str, tuple]:
    """Replace images with grayscale, CMYK, RGBA, palette and odd-sized ones; returns expectations."""
    files = image_files(root)
    made = {}
    gray = files[0]
    Image.new("L", (64, 48), 77).save(gray, "JPEG", quality=95)
    made[gray.stem] = ("gray", (64, 48))
    cmyk = files[1]
    Image.new("CMYK", (64, 48), (0, 255, 255, 0)).save(cmyk, "JPEG", quality=95)  # pure red in CMYK
    made[cmyk.stem] = ("cmyk", (64, 48))
    rgba = files[2].with_suffix(".png")
    files[2].unlink()
    im = Image.new("RGBA", (64, 48), (0, 0, 255, 255))
    im.paste((0, 0, 0, 0), (0, 0, 32, 48))  # left half fully transparent
    im.save(rgba)
    made[rgba.stem] = ("rgba", (64, 48))
    for i, size in enumerate([(640, 480), (17, 9), (1, 1), (48, 300)], start=3):
        Image.new("RGB", size, (10, 200, 30)).save(files[i], "JPEG", quality=95)
        made[files[i].stem] = ("size", size)
    return made


def test_grayscale_cmyk_rgba_and_any_resolution_are_converted(ds):
    made = _odd_images(ds)
    assert check_dataset(ds) == []
    paths = find_images(ds)
    for image_id, (kind, size) in made.items():
        im = load_image(paths[image_id])
        assert im.mode == "RGB" and im.size == size, image_id
        a = np.asarray(im).astype(int)
        if kind == "gray":
            assert np.all(np.abs(a - 77) <= 2)
        elif kind == "cmyk":
            assert np.all(np.abs(a - [255, 0, 0]) <= 3)
        elif kind == "rgba":  # transparent → white, opaque stays blue
            assert np.all(a[:, :32] == 255) and np.all(a[:, 32:] == [0, 0, 255])


def test_training_runs_on_odd_but_valid_data(ds, tmp_path):
    from skinlab.pipeline import TrainConfig, train

    _odd_images(ds)
    df = read_rows(ds)
    df.loc[0, "age"] = ""
    df.loc[1, ["sex", "localization"]] = ["unknown", "unknown"]
    write_rows(ds, df, sep="\t")
    cfg = TrainConfig(data=str(ds), out=str(tmp_path / "run"), epochs=1, progress=False, figures=False,
                      workers=1)
    result = train(cfg, log=None)
    assert result["n"] > 0 and (tmp_path / "run" / "metrics.json").is_file()


# --------------------------------------------------------------------------- CLI (in-process main)


@pytest.mark.parametrize("case", BAD_CASES)
def test_cli_data_check_exits_1_listing_the_problem(ds, case, capsys):
    named = damage(ds, case)
    assert cli.main(["data", "check", str(ds)]) == 1
    out, err = capsys.readouterr()
    assert named in out
    assert f"problem(s) in {ds}" in err


@pytest.mark.parametrize("case", BAD_CASES)
def test_cli_train_exits_2_with_one_line(ds, tmp_path, case, capsys):
    named = damage(ds, case)
    code = cli.main(["train", "--data", str(ds), "--epochs", "1", "--out", str(tmp_path / "run"),
                     "--no-progress", "--workers", "1"])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skinlab: error: "), err
    assert named in lines[0]


def test_cli_train_with_debug_raises(ds, tmp_path):
    corrupt_jpeg(ds)
    with pytest.raises(DataError):
        cli.main(["--debug", "train", "--data", str(ds), "--epochs", "1", "--out", str(tmp_path / "run"),
                  "--no-progress"])


# --------------------------------------------------------------------------- CLI (real processes)


def _skinlab(*args, cwd) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "skinlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)


def _finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_cli_process_check_lists_all_problems_and_exits_1(ds, tmp_path):
    named = [f(ds) for f in (corrupt_jpeg, truncated_jpeg, zero_byte_jpeg, text_named_jpg, missing_image,
                              image_without_row, unknown_dx, duplicate_image_id, lesion_two_diagnoses)]
    proc = _finish(_skinlab("data", "check", str(ds), cwd=tmp_path))
    assert proc.returncode == 1, proc.stderr
    for n in named:
        assert n in proc.stdout
    assert len(proc.stdout.strip().splitlines()) == len(named)
    assert f"{len(named)} problem(s) in {ds}" in proc.stderr


@pytest.mark.slow  # two CLI processes that import torch
def test_cli_process_train_one_line_error_then_traceback_with_debug(ds, tmp_path):
    name = truncated_jpeg(ds)
    args = ["train", "--data", str(ds), "--epochs", "1", "--no-progress"]
    plain = _skinlab(*args, "--out", str(tmp_path / "run"), cwd=tmp_path)
    debug = _skinlab("--debug", *args, "--out", str(tmp_path / "run-debug"), cwd=tmp_path)  # side by side
    plain, debug = _finish(plain), _finish(debug)

    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1, plain.stderr
    assert lines[0].startswith("skinlab: error: ") and name in lines[0] and "truncated" in lines[0]

    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "skinlab.data.DataError" in debug.stderr and name in debug.stderr
