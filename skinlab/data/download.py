"""Download HAM10000 from its official home, Harvard Dataverse (doi:10.7910/DVN/DBW86T).

Uses Dataverse's public native API and the standard library only:

* listing: ``GET {server}/api/datasets/:persistentId/?persistentId={doi}`` returns
  ``data.latestVersion.files[].dataFile`` with ``id``, ``filename``, ``filesize``,
  ``checksum {type, value}`` (older servers: ``md5``) and, for tabular files that
  Dataverse ingested into a ``.tab``, ``originalFileName`` / ``originalFileSize``.
* download: ``GET {server}/api/access/datafile/{id}``, plus ``?format=original`` for an
  ingested file, which returns the file as it was uploaded (here: the metadata csv).
  For an ingested file the listed checksum is the one of that saved original.

Each file is written to ``name.part``, resumed with an HTTP Range request after an
interruption, verified against the listed checksum and only then renamed. The archives
are then unpacked into the official layout next to them.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import inspect
import io
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from tqdm import tqdm

DATAVERSE_SERVER = "https://dataverse.harvard.edu"
HAM10000_DOI = "doi:10.7910/DVN/DBW86T"
SERVER_ENV_VAR = "SKINLAB_DATAVERSE_URL"

METADATA_STEM = "HAM10000_metadata"
METADATA_CSV = "HAM10000_metadata.csv"
ARCHIVES = (
    "HAM10000_images_part_1.zip",
    "HAM10000_images_part_2.zip",
    "HAM10000_segmentations_lesion_tschandl.zip",
)
DOWNLOADS_DIR = "downloads"  # archives and the raw metadata live here, under dest

_CHUNK = 1 << 20
_USER_AGENT = "skinlab-download/0.1 (+https://github.com/; python-urllib)"
# Dataverse names its algorithms "MD5", "SHA-1", "SHA-256", "SHA-512".
_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA1": "sha1", "SHA-256": "sha256",
           "SHA256": "sha256", "SHA-512": "sha512", "SHA512": "sha512"}

Log = Callable[[str], None]


class DownloadError(RuntimeError):
    """The download could not be completed; the message says why in one line."""


class _Transient(Exception):
    """A failure worth retrying: connection trouble, truncated body, HTTP 5xx."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of the Dataverse dataset, as the listing describes it."""

    id: int
    name: str  # the name to save under (the original's name for an ingested table)
    size: int | None  # bytes we expect to receive, None if the listing does not say
    checksum_type: str | None  # "MD5", "SHA-1", ...
    checksum: str | None
    original: bool = False  # ingested tabular file: download with ?format=original
    content_type: str = ""

    def url(self, server: str) -> str:
        url = f"{server.rstrip('/')}/api/access/datafile/{self.id}"
        return url + "?format=original" if self.original else url


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _host(server: str) -> str:
    return urllib.parse.urlsplit(server).netloc or server


def _reason(err: BaseException) -> str:
    """A one-line description of a network error."""
    reason = getattr(err, "reason", None) or err
    text = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
    return " ".join(text.split())


def _is_offline(err: BaseException) -> bool:
    """True for failures that mean 'no route to the server at all'."""
    reason = getattr(err, "reason", err)
    return isinstance(reason, (socket.gaierror, ConnectionRefusedError, OSError)) and not isinstance(
        reason, (TimeoutError, ConnectionResetError)
    )


def _open(url: str, timeout: float, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **(headers or {})})
    return urllib.request.urlopen(request, timeout=timeout)


# ---------------------------------------------------------------------------- listing

def _remote_from_listing(entry: dict) -> RemoteFile:
    data = entry.get("dataFile") or {}
    listed_name = data.get("filename") or entry.get("label") or ""
    checksum = data.get("checksum") or {}
    checksum_type, checksum_value = checksum.get("type"), checksum.get("value")
    if not checksum_value and data.get("md5"):
        checksum_type, checksum_value = "MD5", data["md5"]
    original = bool(data.get("originalFileFormat")) and (
        data.get("tabularData") or listed_name.endswith(".tab") or "originalFileName" in data
    )
    if original:
        name = data.get("originalFileName") or _original_name(listed_name, data["originalFileFormat"])
        size = data.get("originalFileSize")
    else:
        name, size = listed_name, data.get("filesize")
    return RemoteFile(
        id=int(data["id"]),
        name=name,
        size=int(size) if size is not None else None,
        checksum_type=checksum_type.upper() if checksum_type else None,
        checksum=checksum_value.lower() if checksum_value else None,
        original=original,
        content_type=data.get("contentType", ""),
    )


def _original_name(tab_name: str, original_format: str) -> str:
    """Older servers omit originalFileName: rebuild it from the .tab name and format."""
    stem = tab_name[:-4] if tab_name.endswith(".tab") else tab_name
    return stem + (".csv" if "csv" in original_format else "")


def list_files(server: str = DATAVERSE_SERVER, doi: str = HAM10000_DOI, *, timeout: float = 30.0,
               retries: int = 3, backoff: float = 1.0) -> list[RemoteFile]:
    """All files of the latest version of dataset `doi` on `server`.

    Raises DownloadError in one line when the server cannot be reached (offline?) or
    answers something that is not a Dataverse dataset listing.
    """
    query = urllib.parse.urlencode({"persistentId": doi})
    url = f"{server.rstrip('/')}/api/datasets/:persistentId/?{query}"
    for attempt in range(retries + 1):
        try:
            with _open(url, timeout, {"Accept": "application/json"}) as response:
                body = response.read()
            break
        except urllib.error.HTTPError as err:
            if err.code < 500 or attempt == retries:
                raise DownloadError(
                    f"{_host(server)} answered HTTP {err.code} for the listing of {doi} ({url})"
                ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            # No route at all (DNS failure, refused): retrying would only delay the message.
            if _is_offline(err) or attempt == retries:
                raise DownloadError(
                    f"cannot reach {_host(server)}: offline? ({_reason(err)})"
                ) from None
        time.sleep(backoff * 2**attempt)
    try:
        files = json.loads(body)["data"]["latestVersion"]["files"]
        return [_remote_from_listing(entry) for entry in files]
    except (ValueError, KeyError, TypeError) as err:
        raise DownloadError(
            f"unexpected listing from {url}: not a Dataverse dataset ({type(err).__name__}: {err})"
        ) from None


def select_ham10000_files(files: list[RemoteFile]) -> dict[str, RemoteFile]:
    """The metadata table and the three archives, keyed by their official name.

    Other files of the dataset (ISIC 2018 test images, ground truth, ...) are ignored.
    """
    chosen: dict[str, RemoteFile] = {}
    for remote in files:
        if remote.name in ARCHIVES:
            chosen[remote.name] = remote
        elif remote.name.split(".")[0] == METADATA_STEM:
            # Prefer the csv (or the original behind an ingested .tab) over other forms.
            if METADATA_CSV not in chosen or remote.name == METADATA_CSV:
                chosen[METADATA_CSV] = remote
    missing = [name for name in (METADATA_CSV, *ARCHIVES) if name not in chosen]
    if missing:
        listed = ", ".join(sorted(f.name for f in files)) or "nothing"
        raise DownloadError(f"the dataset listing lacks {', '.join(missing)} (it lists: {listed})")
    return chosen


# ---------------------------------------------------------------------------- one file

def file_digest(path: Path, checksum_type: str) -> str:
    """Hex digest of `path` with a Dataverse checksum type ("MD5", "SHA-1", ...)."""
    try:
        algorithm = _HASHES[checksum_type.upper()]
    except KeyError:
        raise DownloadError(f"unknown checksum type {checksum_type!r} for {path.name}") from None
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, remote: RemoteFile) -> str | None:
    """None if `path` matches the listing, otherwise what is wrong (one line)."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size {size} bytes, expected {remote.size}"
    if remote.checksum and remote.checksum_type:
        got = file_digest(path, remote.checksum_type)
        if got != remote.checksum:
            return f"{remote.checksum_type} {got}, expected {remote.checksum}"
    return None


def _fetch(remote: RemoteFile, part: Path, server: str, timeout: float, progress: bool, log: Log) -> None:
    """Append the missing bytes of `remote` to `part` (creating or restarting it as needed).

    Raises _Transient for anything worth retrying; the bytes already written stay in
    `part`, so the next call resumes from there.
    """
    offset = part.stat().st_size if part.exists() else 0
    if remote.size is not None and offset > remote.size:
        log(f"{remote.name}: partial file is larger than the listed size; starting over")
        part.unlink()
        offset = 0
    if remote.size is not None and offset == remote.size:
        return  # complete already; the caller verifies it
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = _open(remote.url(server), timeout, headers)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: let the checksum decide
            return
        if err.code >= 500:
            raise _Transient(f"HTTP {err.code}") from None
        raise DownloadError(f"{remote.name}: server answered HTTP {err.code} ({remote.url(server)})") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Transient(_reason(err)) from None

    with response:
        if offset and response.status == 206:
            content_range = response.headers.get("Content-Range", "")
            start = content_range.removeprefix("bytes ").split("-")[0]
            if start.strip() != str(offset):
                part.unlink()
                raise _Transient(f"server resumed at {content_range!r}, not at byte {offset}")
            log(f"{remote.name}: resuming at byte {offset}")
            mode = "ab"
        else:
            if offset:
                log(f"{remote.name}: server ignored the Range request; starting over")
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        received = 0
        with open(part, mode) as out, tqdm(
            total=remote.size, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=remote.name, disable=not progress, leave=False,
        ) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise _Transient(f"connection lost after {offset + received} bytes ({_reason(err)})") from None
        # urllib returns b"" instead of raising when the peer closes early.
        if expected is not None and received < expected:
            raise _Transient(f"connection closed after {offset + received} of {offset + expected} bytes")


def download_file(remote: RemoteFile, dest_dir: str | os.PathLike, server: str = DATAVERSE_SERVER, *,
                  retries: int = 3, backoff: float = 1.0, timeout: float = 60.0, progress: bool = True,
                  log: Log | None = None) -> Path:
    """Download `remote` into `dest_dir` and return its verified path.

    Skips a file already there and verified. Writes `name.part` and renames it only
    once size and checksum match; resumes a `.part` with a Range request; retries
    connection errors and HTTP 5xx `retries` times with exponential backoff
    (`backoff` seconds, doubling); a checksum mismatch deletes the `.part` and tries
    once more, then raises DownloadError naming the file.
    """
    log = _stderr if log is None else log
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / remote.name
    part = dest_dir / (remote.name + ".part")
    if final.exists():
        problem = _verify(final, remote)
        if problem is None:
            log(f"{remote.name}: already downloaded and verified")
            return final
        log(f"{remote.name}: existing file does not match the listing ({problem}); downloading again")
        final.unlink()

    failures = mismatches = 0
    while True:
        try:
            _fetch(remote, part, server, timeout, progress, log)
        except _Transient as err:
            failures += 1
            if failures > retries:
                raise DownloadError(
                    f"{remote.name}: download failed after {failures} attempts ({err}); "
                    f"run again to resume from {part.name}"
                ) from None
            wait = backoff * 2 ** (failures - 1)
            log(f"{remote.name}: {err}; retrying in {wait:g} s ({failures}/{retries})")
            time.sleep(wait)
            continue
        problem = _verify(part, remote) if part.exists() else "nothing was received"
        if problem is None:
            part.replace(final)
            log(f"{remote.name}: downloaded and verified")
            return final
        part.unlink(missing_ok=True)
        mismatches += 1
        if mismatches > 1:
            raise DownloadError(
                f"{remote.name}: checksum mismatch twice ({problem}); the download was deleted, "
                f"the server's copy or the connection is corrupt; try again later"
            )
        log(f"{remote.name}: verification failed ({problem}); downloading again")


# ---------------------------------------------------------------------------- unpack

def _safe_member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path of a zip member, refusing anything that could escape (zip-slip)."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if (normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":")
            or any(part == ".." for part in path.parts)):
        raise DownloadError(
            f"{archive.name}: refusing unsafe member {name!r} (it would land outside the target folder)"
        )
    return path


def _skipped(path: PurePosixPath) -> bool:
    return path.parts[:1] == ("__MACOSX",) or path.name in (".DS_Store", "Thumbs.db")


def _unpack_zip(archive: Path, target: Path, stamp: Path, log: Log) -> None:
    """Extract `archive` into `target`, dropping a top folder named like `target`."""
    signature = f"{archive.stat().st_size} {archive.stat().st_mtime_ns}"
    if target.is_dir() and stamp.exists() and stamp.read_text().strip() == signature:
        return
    log(f"{archive.name}: unpacking into {target.name}/")
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [(info, _safe_member_path(info.filename, archive)) for info in zf.infolist()]
            files = [(info, path) for info, path in members if not info.is_dir() and not _skipped(path)]
            # The images zips hold files at their root; others may wrap them in a folder.
            if files and all(path.parts[0] == target.name and len(path.parts) > 1 for _, path in files):
                files = [(info, PurePosixPath(*path.parts[1:])) for info, path in files]
            target.mkdir(parents=True, exist_ok=True)
            root = target.resolve()
            for info, relative in files:
                out = (target / relative).resolve()
                if root not in out.parents:
                    raise DownloadError(f"{archive.name}: refusing unsafe member {info.filename!r}")
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        dst.write(chunk)
    except zipfile.BadZipFile as err:
        raise DownloadError(
            f"{archive.name}: not a valid zip archive ({err}); delete it and download again"
        ) from None
    stamp.write_text(signature + "\n")


def _write_metadata_csv(source: Path, target: Path) -> None:
    """Save the metadata as comma-separated `target` (converting a Dataverse .tab)."""
    raw = source.read_bytes()
    first_line = raw.split(b"\n", 1)[0]
    if b"\t" in first_line and b"," not in first_line:
        rows = csv.reader(io.StringIO(raw.decode("utf-8")), delimiter="\t")
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        raw = buffer.getvalue().encode("utf-8")
    if target.exists() and target.read_bytes() == raw:
        return
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(raw)
    tmp.replace(target)


def _find(dest: Path, name: str) -> Path | None:
    for folder in (dest / DOWNLOADS_DIR, dest):
        if (folder / name).is_file():
            return folder / name
    return None


def unpack(dest: str | os.PathLike, log: Log | None = None) -> Path:
    """Unpack the downloaded files in `dest` into the official HAM10000 layout.

    Looks for the archives in `dest/downloads/` (where `download_ham10000` puts them)
    or directly in `dest` (manual downloads), extracts each zip into a folder of the
    same name (`HAM10000_images_part_1/`, ...), refusing members that would escape it,
    and writes `HAM10000_metadata.csv`. Returns `dest`.
    """
    log = _stderr if log is None else log
    dest = Path(dest)
    stamps = dest / DOWNLOADS_DIR
    stamps.mkdir(parents=True, exist_ok=True)
    for name in ARCHIVES:
        archive = _find(dest, name)
        if archive is None:
            if not (stamps / f"{name}.unpacked").exists():
                raise DownloadError(f"{name} is missing from {dest}; download it first")
            continue  # unpacked on an earlier run, archive deleted since
        stem = name.removesuffix(".zip")
        _unpack_zip(archive, dest / stem, stamps / f"{name}.unpacked", log)
    candidates = [_find(dest, METADATA_STEM + ext) for ext in (".csv", ".tab", "")]
    source = next((path for path in candidates if path is not None), None)
    if source is None:
        raise DownloadError(f"{METADATA_CSV} is missing from {dest}; download it first")
    if source != dest / METADATA_CSV:
        _write_metadata_csv(source, dest / METADATA_CSV)
    return dest


# ---------------------------------------------------------------------------- all of it

def _dataset_check(root: Path, log: Log, progress: bool = False) -> list[str] | None:
    """Problems found by skinlab.data.check_dataset, or None if it is unavailable."""
    try:
        from skinlab.data import check_dataset
    except ImportError as err:
        log(f"dataset check skipped ({err})")
        return None
    log(f"checking the dataset in {root} ...")
    if "progress" in inspect.signature(check_dataset).parameters:
        return list(check_dataset(root, progress=progress))
    return list(check_dataset(root))


def download_ham10000(dest: str | os.PathLike, server: str | None = None, progress: bool = True,
                      retries: int = 3, *, backoff: float = 1.0, timeout: float = 60.0,
                      check: bool = True, log: Log | None = None) -> Path:
    """Download HAM10000 from Harvard Dataverse into `dest` and unpack it; return `dest`.

    `server` defaults to $SKINLAB_DATAVERSE_URL, else https://dataverse.harvard.edu.
    Fetches the metadata and the three archives (about 3 GB) into `dest/downloads/`,
    each verified against the listed checksum, resuming interrupted downloads; a rerun
    skips verified files. Then unpacks into the official layout
    (`HAM10000_metadata.csv`, `HAM10000_images_part_{1,2}/`,
    `HAM10000_segmentations_lesion_tschandl/`) and, with `check`, runs
    `skinlab.data.check_dataset`. The archives may be deleted afterwards.
    Raises DownloadError (one line) when offline, after repeated failures, on a
    checksum mismatch, or when the check finds problems.
    """
    log = _stderr if log is None else log
    server = server or os.environ.get(SERVER_ENV_VAR) or DATAVERSE_SERVER
    dest = Path(dest).expanduser()
    downloads = dest / DOWNLOADS_DIR
    downloads.mkdir(parents=True, exist_ok=True)
    chosen = select_ham10000_files(list_files(server, HAM10000_DOI, timeout=timeout, retries=retries,
                                              backoff=backoff))
    for official, remote in chosen.items():
        stamp = downloads / f"{remote.name}.unpacked"
        already_unpacked = (official in ARCHIVES and not (downloads / remote.name).exists()
                            and stamp.exists() and (dest / official.removesuffix(".zip")).is_dir()
                            and remote.size is not None
                            and stamp.read_text().split()[:1] == [str(remote.size)])
        if already_unpacked:
            log(f"{remote.name}: unpacked earlier and archive deleted; not downloading again")
            continue
        download_file(remote, downloads, server, retries=retries, backoff=backoff, timeout=timeout,
                      progress=progress, log=log)
    unpack(dest, log=log)
    if check:
        problems = _dataset_check(dest, log, progress)
        if problems:
            for problem in problems:
                log(f"dataset check: {problem}")
            raise DownloadError(
                f"downloaded to {dest}, but the dataset check found {len(problems)} problem(s); "
                f"first: {problems[0]}"
            )
        if problems is not None:
            log(f"dataset check: OK ({dest})")
    return dest
