"""skinlab.data.download (pooch + a resuming downloader) against a fake Dataverse on 127.0.0.1
(never a real host)."""

from __future__ import annotations

import csv
import hashlib
import io
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinlab.data import dataverse
from skinlab.data import download as dl
from skinlab.data.download import DownloadError, download_file, download_ham10000, list_files, unpack

try:
    from fake_dataverse import ALWAYS, FakeDataverse, FakeFile
except ImportError:  # tests/ became a package
    from tests.fake_dataverse import ALWAYS, FakeDataverse, FakeFile

IMAGE_IDS = {"HAM10000_images_part_1": ["ISIC_0000001", "ISIC_0000002"],
             "HAM10000_images_part_2": ["ISIC_0000003"]}
ALL_IDS = [i for ids in IMAGE_IDS.values() for i in ids]
MASKS = "HAM10000_segmentations_lesion_tschandl"
LISTING_PATH = "/api/datasets/:persistentId"  # as pooch asks for it (Dataverse also takes a "/")


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(45, 60, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _png_mask(seed: int) -> bytes:
    mask = np.zeros((45, 60), dtype=np.uint8)
    mask[10 + seed:30, 15:40 + seed] = 255
    out = io.BytesIO()
    Image.fromarray(mask).save(out, format="PNG")
    return out.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


METADATA_ROWS = [
    ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"],
    ["HAM_0000001", "ISIC_0000001", "nv", "follow_up", "45.0", "male", "back", "vidir_modern"],
    ["HAM_0000001", "ISIC_0000002", "nv", "follow_up", "45.0", "male", "back", "vidir_modern"],
    ["HAM_0000002", "ISIC_0000003", "mel", "histo", "70.0", "female", "face", "rosendahl"],
]


def _csv_bytes(rows, delimiter=",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def contents() -> dict[str, bytes]:
    """Official-looking dataset files, keyed by name; plus each member's bytes."""
    images = {image_id: _jpeg(n) for n, image_id in enumerate(ALL_IDS)}
    masks = {image_id: _png_mask(n) for n, image_id in enumerate(ALL_IDS)}
    files = {
        # The images zips hold the jpgs at their root ...
        f"{folder}.zip": _zip({f"{i}.jpg": images[i] for i in ids}) for folder, ids in IMAGE_IDS.items()
    }
    # ... the masks zip wraps them in a folder of its own name.
    files[f"{MASKS}.zip"] = _zip({f"{MASKS}/{i}_segmentation.png": masks[i] for i in ALL_IDS})
    files["HAM10000_metadata.csv"] = _csv_bytes(METADATA_ROWS)
    files["ISIC2018_Task3_Test_Images.zip"] = _zip({"ISIC_0034524.jpg": _jpeg(99)})
    return {"files": files, "images": images, "masks": masks}


def _fake_files(contents, **faults_by_name) -> list[FakeFile]:
    """The dataset as Harvard lists it: the metadata csv ingested into a .tab."""
    files = contents["files"]
    fakes = [
        FakeFile(id=101, name="HAM10000_metadata.tab", data=_csv_bytes(METADATA_ROWS, "\t"),
                 original=files["HAM10000_metadata.csv"], original_name="HAM10000_metadata.csv"),
        FakeFile(id=102, name="HAM10000_images_part_1.zip", data=files["HAM10000_images_part_1.zip"]),
        FakeFile(id=103, name="HAM10000_images_part_2.zip", data=files["HAM10000_images_part_2.zip"],
                 checksum_type="SHA-256"),
        FakeFile(id=104, name=f"{MASKS}.zip", data=files[f"{MASKS}.zip"], checksum_type="SHA-1"),
        FakeFile(id=105, name="ISIC2018_Task3_Test_Images.zip", data=files["ISIC2018_Task3_Test_Images.zip"]),
    ]
    for fake in fakes:
        for key, value in faults_by_name.get(fake.name, {}).items():
            setattr(fake, key, value)
    return fakes


def _get(server: FakeDataverse, name: str, tmp_path: Path, **kwargs) -> Path:
    """download_file for one listed file, quietly and without backoff."""
    remote = next(r for r in list_files(server.url) if r.name == name)
    kwargs.setdefault("log", [].append)
    return download_file(remote, tmp_path, server.url, backoff=0, progress=False, **kwargs)


def _fetch_all(dest: Path, server: FakeDataverse, **kwargs) -> Path:
    kwargs.setdefault("log", [].append)
    kwargs.setdefault("check", False)
    return download_ham10000(dest, server=server.url, progress=False, backoff=0, **kwargs)


# ---------------------------------------------------------------------------- listing


def test_list_files_reads_dataverse_fields_and_original(contents):
    with FakeDataverse(_fake_files(contents)) as server:
        remotes = {r.name: r for r in list_files(server.url)}
    meta = remotes["HAM10000_metadata.csv"]  # listed as .tab, saved under the original's name
    assert meta.original and meta.id == 101
    assert meta.size == len(contents["files"]["HAM10000_metadata.csv"])
    assert meta.checksum == hashlib.md5(contents["files"]["HAM10000_metadata.csv"]).hexdigest()
    assert meta.url("http://x") == "http://x/api/access/datafile/101?format=original"
    part2 = remotes["HAM10000_images_part_2.zip"]
    assert not part2.original and part2.checksum_type == "SHA-256"
    assert part2.url("http://x/") == "http://x/api/access/datafile/103"


def test_listing_of_older_servers_md5_field_and_no_original_name():
    entry = {"label": "HAM10000_metadata.tab", "dataFile": {
        "id": 7, "filename": "HAM10000_metadata.tab", "filesize": 10, "md5": "ABCDEF",
        "originalFileFormat": "text/csv", "tabularData": True}}
    remote = dataverse._remote_from_listing(entry)
    assert (remote.name, remote.original, remote.size) == ("HAM10000_metadata.csv", True, None)
    assert (remote.checksum_type, remote.checksum) == ("MD5", "abcdef")


def test_listing_without_the_archives_names_what_is_missing(contents):
    fakes = [f for f in _fake_files(contents) if f.name != "HAM10000_images_part_2.zip"]
    with FakeDataverse(fakes) as server:
        with pytest.raises(DownloadError, match="lacks HAM10000_images_part_2.zip"):
            dl.select_ham10000_files(list_files(server.url))


# ---------------------------------------------------------------------------- whole dataset


def test_happy_path_official_layout_verified_and_nothing_else_fetched(contents, tmp_path):
    with FakeDataverse(_fake_files(contents)) as server:
        assert _fetch_all(tmp_path, server) == tmp_path
        meta_requests = server.requests_for("HAM10000_metadata.tab")
        extra_requests = server.requests_for("ISIC2018_Task3_Test_Images.zip")

    for folder, ids in IMAGE_IDS.items():
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == [f"{i}.jpg" for i in ids]
        for image_id in ids:
            assert (tmp_path / folder / f"{image_id}.jpg").read_bytes() == contents["images"][image_id]
    # The masks zip's own top folder is not repeated: MASKS/ISIC_x_segmentation.png.
    for image_id in ALL_IDS:
        assert (tmp_path / MASKS / f"{image_id}_segmentation.png").read_bytes() == contents["masks"][image_id]
    assert not (tmp_path / MASKS / MASKS).exists()
    # The metadata came back as the original csv, not the ingested .tab.
    assert (tmp_path / "HAM10000_metadata.csv").read_bytes() == contents["files"]["HAM10000_metadata.csv"]
    assert [r.query for r in meta_requests] == [{"format": "original"}]
    assert extra_requests == []
    assert list(tmp_path.rglob("*.part")) == []
    for name in ("HAM10000_images_part_1.zip", "HAM10000_images_part_2.zip", f"{MASKS}.zip"):
        assert (tmp_path / "downloads" / name).read_bytes() == contents["files"][name]


def test_second_run_downloads_nothing(contents, tmp_path):
    with FakeDataverse(_fake_files(contents)) as server:
        _fetch_all(tmp_path, server)
        first = len(server.requests)
        log: list[str] = []
        _fetch_all(tmp_path, server, log=log.append)
        new = server.requests[first:]
    assert [r.path for r in new] == [LISTING_PATH]  # the listing only
    assert sum("already downloaded and verified" in line for line in log) == 4


def test_deleted_archives_are_not_downloaded_again(contents, tmp_path):
    with FakeDataverse(_fake_files(contents)) as server:
        _fetch_all(tmp_path, server)
        for zip_path in (tmp_path / "downloads").glob("*.zip"):
            zip_path.unlink()
        first = len(server.requests)
        _fetch_all(tmp_path, server)
        new = server.requests[first:]
    assert all(not r.path.endswith(("/102", "/103", "/104")) for r in new)
    assert (tmp_path / "HAM10000_images_part_2" / "ISIC_0000003.jpg").is_file()


def test_server_url_from_environment(contents, tmp_path, monkeypatch):
    with FakeDataverse(_fake_files(contents)) as server:
        monkeypatch.setenv("SKINLAB_DATAVERSE_URL", server.url)
        download_ham10000(tmp_path, progress=False, backoff=0, check=False, log=[].append)
        assert len(server.requests) == 5  # listing + 4 files, all at the fake server
    assert (tmp_path / "HAM10000_metadata.csv").is_file()


def test_dataset_check_problems_raise(contents, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_dataset_check", lambda root, log, progress=False: ["ISIC_0000003: image missing"])
    log: list[str] = []
    with FakeDataverse(_fake_files(contents)) as server:
        with pytest.raises(DownloadError, match="1 problem.*ISIC_0000003: image missing"):
            _fetch_all(tmp_path, server, check=True, log=log.append)
    assert "dataset check: ISIC_0000003: image missing" in log


def test_real_dataset_check_accepts_the_download(contents, tmp_path):
    data = pytest.importorskip("skinlab.data")
    if not hasattr(data, "check_dataset"):
        pytest.skip("skinlab.data.check_dataset not written yet")
    log: list[str] = []
    with FakeDataverse(_fake_files(contents)) as server:
        _fetch_all(tmp_path, server, check=True, log=log.append)
    assert data.check_dataset(tmp_path) == []
    assert any(line.startswith("dataset check: OK") for line in log)


# ---------------------------------------------------------------------------- one file


def test_resume_sends_range_and_gets_only_the_rest(contents, tmp_path):
    data = contents["files"]["HAM10000_images_part_1.zip"]
    half = len(data) // 2
    (tmp_path / "HAM10000_images_part_1.zip.part").write_bytes(data[:half])
    with FakeDataverse(_fake_files(contents)) as server:
        path = _get(server, "HAM10000_images_part_1.zip", tmp_path)
        [request] = server.requests_for("HAM10000_images_part_1.zip")
    assert request.range == f"bytes={half}-"
    assert (request.status, request.body_bytes) == (206, len(data) - half)
    assert path.read_bytes() == data
    assert not (tmp_path / "HAM10000_images_part_1.zip.part").exists()


def test_server_ignoring_range_restarts_cleanly(contents, tmp_path):
    data = contents["files"]["HAM10000_images_part_1.zip"]
    # Wrong bytes in the .part: appending the full body to them would never verify.
    (tmp_path / "HAM10000_images_part_1.zip.part").write_bytes(b"\0" * (len(data) // 2))
    faults = {"HAM10000_images_part_1.zip": {"honour_range": False}}
    log: list[str] = []
    with FakeDataverse(_fake_files(contents, **faults)) as server:
        path = _get(server, "HAM10000_images_part_1.zip", tmp_path, log=log.append)
        [request] = server.requests_for("HAM10000_images_part_1.zip")
    assert request.range is not None and (request.status, request.body_bytes) == (200, len(data))
    assert path.read_bytes() == data
    assert any("ignored the Range" in line for line in log)


def test_cut_connection_is_resumed_on_retry(contents, tmp_path):
    data = contents["files"]["HAM10000_images_part_2.zip"]
    faults = {"HAM10000_images_part_2.zip": {"cut": 1}}
    with FakeDataverse(_fake_files(contents, **faults)) as server:
        path = _get(server, "HAM10000_images_part_2.zip", tmp_path)
        first, second = server.requests_for("HAM10000_images_part_2.zip")
    assert first.range is None and first.body_bytes == len(data) // 2
    assert second.range == f"bytes={len(data) // 2}-" and second.status == 206
    assert first.body_bytes + second.body_bytes == len(data)
    assert path.read_bytes() == data


def test_corrupt_once_is_downloaded_again(contents, tmp_path):
    data = contents["files"][f"{MASKS}.zip"]
    with FakeDataverse(_fake_files(contents, **{f"{MASKS}.zip": {"corrupt": 1}})) as server:
        path = _get(server, f"{MASKS}.zip", tmp_path)
        requests = server.requests_for(f"{MASKS}.zip")
    assert [r.range for r in requests] == [None, None]  # the bad .part was deleted, not resumed
    assert path.read_bytes() == data


def test_corrupt_always_fails_naming_the_file_and_leaves_nothing(contents, tmp_path):
    faults = {"HAM10000_images_part_1.zip": {"corrupt": ALWAYS}}
    with FakeDataverse(_fake_files(contents, **faults)) as server:
        with pytest.raises(DownloadError, match=r"HAM10000_images_part_1\.zip: checksum mismatch") as err:
            _get(server, "HAM10000_images_part_1.zip", tmp_path)
        assert len(server.requests_for("HAM10000_images_part_1.zip")) == 2
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a .part


def test_corrupt_metadata_fails_the_whole_download(contents, tmp_path):
    faults = {"HAM10000_metadata.tab": {"corrupt": ALWAYS}}
    with FakeDataverse(_fake_files(contents, **faults)) as server:
        with pytest.raises(DownloadError, match="HAM10000_metadata.csv"):
            _fetch_all(tmp_path, server)
    assert not (tmp_path / "HAM10000_metadata.csv").exists()
    assert not (tmp_path / "downloads" / "HAM10000_metadata.csv").exists()


def test_server_error_once_is_retried(contents, tmp_path):
    data = contents["files"]["HAM10000_images_part_2.zip"]
    with FakeDataverse(_fake_files(contents, **{"HAM10000_images_part_2.zip": {"fail": 1}})) as server:
        path = _get(server, "HAM10000_images_part_2.zip", tmp_path)
        statuses = [r.status for r in server.requests_for("HAM10000_images_part_2.zip")]
    assert statuses == [500, 200]
    assert path.read_bytes() == data


def test_server_error_always_gives_up_after_retries(contents, tmp_path):
    with FakeDataverse(_fake_files(contents, **{"HAM10000_images_part_2.zip": {"fail": ALWAYS}})) as server:
        with pytest.raises(DownloadError, match=r"HAM10000_images_part_2\.zip: .*3 attempts.*HTTP 500"):
            _get(server, "HAM10000_images_part_2.zip", tmp_path, retries=2)
        assert len(server.requests_for("HAM10000_images_part_2.zip")) == 3
    assert not (tmp_path / "HAM10000_images_part_2.zip").exists()


def test_complete_part_is_verified_without_a_request_or_replaced_if_wrong(contents, tmp_path):
    data = contents["files"]["HAM10000_images_part_1.zip"]
    part = tmp_path / "HAM10000_images_part_1.zip.part"
    with FakeDataverse(_fake_files(contents)) as server:
        part.write_bytes(data)  # finished before the rename was interrupted
        _get(server, "HAM10000_images_part_1.zip", tmp_path)
        assert server.requests_for("HAM10000_images_part_1.zip") == []
        (tmp_path / "HAM10000_images_part_1.zip").unlink()
        part.write_bytes(bytes(len(data)))  # right size, wrong bytes
        path = _get(server, "HAM10000_images_part_1.zip", tmp_path)
        [request] = server.requests_for("HAM10000_images_part_1.zip")
    assert request.range is None and path.read_bytes() == data


def test_unknown_dataset_is_reported_with_the_status(contents):
    with FakeDataverse(_fake_files(contents), doi="doi:10.0000/OTHER") as server:
        with pytest.raises(DownloadError, match=r"HTTP 404 for the listing of doi:10.7910/DVN/DBW86T"):
            list_files(server.url)


def test_existing_wrong_file_is_replaced(contents, tmp_path):
    data = contents["files"]["HAM10000_images_part_1.zip"]
    (tmp_path / "HAM10000_images_part_1.zip").write_bytes(b"not the archive")
    with FakeDataverse(_fake_files(contents)) as server:
        path = _get(server, "HAM10000_images_part_1.zip", tmp_path)
    assert path.read_bytes() == data


# ---------------------------------------------------------------------------- offline


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_is_one_line(tmp_path):
    port = _closed_port()
    with pytest.raises(DownloadError) as err:
        download_ham10000(tmp_path, server=f"http://127.0.0.1:{port}", progress=False, backoff=0,
                          log=[].append)
    message = str(err.value)
    assert message.startswith(f"cannot reach 127.0.0.1:{port}: offline?")
    assert "\n" not in message


def test_dns_failure_names_dataverse(monkeypatch, tmp_path):
    calls = []

    def no_dns(host, port, *args, **kwargs):  # stands in for DNS: nothing leaves this machine
        calls.append((host, port))
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.delenv("SKINLAB_DATAVERSE_URL", raising=False)
    with pytest.raises(DownloadError, match=r"^cannot reach dataverse\.harvard\.edu: offline\? \(gaierror"):
        download_ham10000(tmp_path, progress=False, backoff=0, log=[].append)
    assert calls == [("dataverse.harvard.edu", 443)]  # one try: DNS failures aren't retried


# ---------------------------------------------------------------------------- unpack


@pytest.mark.parametrize("evil", ["../evil.jpg", "/tmp/skinlab-evil.jpg", "..\\evil.jpg",
                                  "ok/../../evil.jpg", "C:/evil.jpg"])
def test_zip_slip_member_is_rejected(tmp_path, evil):
    dest = tmp_path / "data"
    (dest / "downloads").mkdir(parents=True)
    archive = _zip({"ISIC_0000001.jpg": b"fine", evil: b"evil"})
    (dest / "downloads" / "HAM10000_images_part_1.zip").write_bytes(archive)
    with pytest.raises(DownloadError, match="HAM10000_images_part_1.zip: refusing unsafe member"):
        unpack(dest, log=[].append)
    assert list(tmp_path.rglob("*evil*")) == []
    # Checked before anything is extracted: not even the harmless member was written.
    assert not (dest / "HAM10000_images_part_1").exists()


def test_unpack_converts_a_tab_metadata_and_accepts_manual_downloads(contents, tmp_path):
    files = contents["files"]
    for name in ("HAM10000_images_part_1.zip", "HAM10000_images_part_2.zip", f"{MASKS}.zip"):
        (tmp_path / name).write_bytes(files[name])  # as a user would save them from the website
    (tmp_path / "HAM10000_metadata.tab").write_bytes(_csv_bytes(METADATA_ROWS, "\t"))
    unpack(tmp_path, log=[].append)
    with open(tmp_path / "HAM10000_metadata.csv", newline="") as stream:
        assert list(csv.reader(stream)) == METADATA_ROWS
    image = tmp_path / "HAM10000_images_part_1" / "ISIC_0000002.jpg"
    assert image.read_bytes() == contents["images"]["ISIC_0000002"]


def test_unpack_reports_a_damaged_zip(tmp_path):
    (tmp_path / "HAM10000_images_part_1.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DownloadError, match="HAM10000_images_part_1.zip: not a valid zip"):
        unpack(tmp_path, log=[].append)
