"""Download HAM10000 from its official home, Harvard Dataverse (doi:10.7910/DVN/DBW86T).

Stands on pooch, the downloader SciPy, scikit-image and MNE use: pooch resolves the DOI on the
Dataverse server, verifies each file against the listed checksum, writes it under a temporary
name and renames it only once verified, downloads a file again once if it does not verify, and
drives the unpacking. What pooch lacks is in :mod:`skinlab.data.dataverse`: fetching the original
csv behind Dataverse's ingested ``.tab``, and a downloader that resumes a cut download with a
Range request. The archives are then unpacked into the official layout next to them.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import zipfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import pooch

from skinlab.data.dataverse import (
    DATAVERSE_SERVER,
    HAM10000_DOI,
    SERVER_ENV_VAR,
    DownloadError,
    Log,
    RemoteFile,
    ResumingDownloader,
    _stderr,
    list_files,
    select_ham10000_files,
)
from skinlab.data.layout import ARCHIVES, METADATA_FILE, METADATA_STEM

__all__ = ["DATAVERSE_SERVER", "HAM10000_DOI", "SERVER_ENV_VAR", "DOWNLOADS_DIR", "DownloadError",
           "RemoteFile", "SafeUnzip", "download_file", "download_ham10000", "list_files",
           "select_ham10000_files", "unpack"]

DOWNLOADS_DIR = "downloads"  # archives and the raw metadata live here, under dest
_CHUNK = 1 << 20


class _ToLog(logging.Handler):
    def __init__(self, log: Log):
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log(record.getMessage())


@contextmanager
def _pooch_logs_to(log: Log):
    """pooch's own messages ("Downloading file ...", "Will attempt the download again") go to
    ``log`` instead of pooch's stderr handler while this block runs."""
    logger = pooch.get_logger()
    saved = logger.handlers[:]
    logger.handlers[:] = [_ToLog(log)]
    try:
        yield
    finally:
        logger.handlers[:] = saved


# ---------------------------------------------------------------------------- one file

def download_file(remote: RemoteFile, dest_dir: str | os.PathLike, server: str = DATAVERSE_SERVER, *,
                  retries: int = 3, backoff: float = 1.0, timeout: float = 60.0, progress: bool = True,
                  log: Log | None = None) -> Path:
    """Download `remote` into `dest_dir` with pooch and return its verified path.

    pooch skips a file already there whose checksum matches and replaces one that does not;
    it verifies the download and renames it into place only then, and downloads once more if
    the checksum does not match (then raises DownloadError naming the file). The bytes come
    through :class:`ResumingDownloader`: `name.part` is resumed with a Range request, and
    connection errors and HTTP 5xx are retried `retries` times with exponential backoff
    (`backoff` seconds, doubling).
    """
    log = _stderr if log is None else log
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    fetcher = pooch.create(path=dest_dir, base_url=f"{server.rstrip('/')}/api/access/datafile/",
                           registry={remote.name: remote.known_hash},
                           urls={remote.name: remote.url(server)}, retry_if_failed=1)
    downloader = ResumingDownloader(dest_dir / f"{remote.name}.part", remote.size, retries=retries,
                                    backoff=backoff, timeout=timeout, progress=progress, log=log)

    def report(fname: str, action: str, _pooch) -> Path:
        log(f"{remote.name}: already downloaded and verified" if action == "fetch"
            else f"{remote.name}: downloaded and verified")
        return Path(fname)

    try:
        with _pooch_logs_to(log):
            return fetcher.fetch(remote.name, downloader=downloader, processor=report)
    except ValueError as err:  # pooch: the checksum did not match, twice
        raise DownloadError(
            f"{remote.name}: checksum mismatch twice; the download was deleted, the server's copy "
            f"or the connection is corrupt; try again later ({' '.join(str(err).split())})"
        ) from None


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


class SafeUnzip(pooch.Unzip):
    """pooch's Unzip into ``target``, which pooch re-runs when an archive is new or a file is
    missing; the members are checked first (none may land outside ``target``: zip-slip), macOS
    litter is skipped, and a top folder named like ``target`` is dropped (the masks zip has one,
    the images zips hold their files at the root)."""

    def __init__(self, target: Path, log: Log):
        super().__init__(extract_dir=str(target))  # absolute: pooch keeps it as is
        self.target, self.log = target, log

    def _plan(self, archive: Path) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [(info, _safe_member_path(info.filename, archive)) for info in zf.infolist()]
        except zipfile.BadZipFile as err:
            raise DownloadError(
                f"{archive.name}: not a valid zip archive ({err}); delete it and download again"
            ) from None
        files = [(info, path) for info, path in members if not info.is_dir() and not _skipped(path)]
        if files and all(path.parts[0] == self.target.name and len(path.parts) > 1 for _, path in files):
            files = [(info, PurePosixPath(*path.parts[1:])) for info, path in files]
        return files

    def _all_members(self, fname):
        return [str(path) for _, path in self._plan(Path(fname))]

    def _extract_file(self, fname, extract_dir):
        archive = Path(fname)
        self.log(f"{archive.name}: unpacking into {self.target.name}/")
        root = self.target.resolve()
        with zipfile.ZipFile(archive) as zf:
            for info, relative in self._plan(archive):
                out = (self.target / relative).resolve()
                if root not in out.parents:
                    raise DownloadError(f"{archive.name}: refusing unsafe member {info.filename!r}")
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        dst.write(chunk)


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
    same name (`HAM10000_images_part_1/`, ...) with :class:`SafeUnzip`, and writes
    `HAM10000_metadata.csv`. An archive unpacked before (same size and time, every file still
    there) is not unpacked again. Returns `dest`.
    """
    log = _stderr if log is None else log
    dest = Path(dest)
    stamps = dest / DOWNLOADS_DIR
    stamps.mkdir(parents=True, exist_ok=True)
    for name in ARCHIVES:
        archive = _find(dest, name)
        stamp = stamps / f"{name}.unpacked"
        if archive is None:
            if not stamp.exists():
                raise DownloadError(f"{name} is missing from {dest}; download it first")
            continue  # unpacked on an earlier run, archive deleted since
        signature = f"{archive.stat().st_size} {archive.stat().st_mtime_ns}"
        unchanged = stamp.exists() and stamp.read_text().strip() == signature
        SafeUnzip(dest / name.removesuffix(".zip"), log)(str(archive), "fetch" if unchanged else "download", None)
        stamp.write_text(signature + "\n")
    candidates = [_find(dest, METADATA_STEM + ext) for ext in (".csv", ".tab", "")]
    source = next((path for path in candidates if path is not None), None)
    if source is None:
        raise DownloadError(f"{METADATA_FILE} is missing from {dest}; download it first")
    if source != dest / METADATA_FILE:
        _write_metadata_csv(source, dest / METADATA_FILE)
    return dest


# ---------------------------------------------------------------------------- all of it

def _dataset_check(root: Path, log: Log, progress: bool = False) -> list[str]:
    """Problems found by :func:`skinlab.data.check_dataset` in the unpacked download."""
    from skinlab.data.check import check_dataset

    log(f"checking the dataset in {root} ...")
    return check_dataset(root, progress=progress)


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
        log(f"dataset check: OK ({dest})")
    return dest
