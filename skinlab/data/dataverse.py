"""HAM10000's home, Harvard Dataverse (doi:10.7910/DVN/DBW86T), as pooch reaches it.

pooch's :class:`~pooch.downloaders.DataverseRepository` resolves the DOI on the server (``GET
{server}/api/datasets/:persistentId?persistentId=doi:...``). What pooch lacks is here:

* reading the listing's fields for each file: ``id``, ``filename``, ``filesize``, ``checksum
  {type, value}`` (older servers: ``md5``) and, for a table Dataverse ingested into a ``.tab``,
  ``originalFileName`` / ``originalFileSize``: such a file is fetched with ``?format=original``,
  which returns it as uploaded (here: the metadata csv), and the listed checksum is the original's;
* :class:`ResumingDownloader`, a pooch downloader that keeps ``name.part`` between runs and
  resumes it with an HTTP Range request (pooch restarts a cut download from zero).
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from skinlab.data.layout import ARCHIVES, METADATA_FILE, METADATA_STEM

DATAVERSE_SERVER = "https://dataverse.harvard.edu"
HAM10000_DOI = "doi:10.7910/DVN/DBW86T"
SERVER_ENV_VAR = "SKINLAB_DATAVERSE_URL"

_CHUNK = 1 << 20
# identity: byte offsets of a resumed download must be offsets in the file, not in a gzip stream.
_HEADERS = {"User-Agent": "skinlab-download/0.1 (pooch)", "Accept-Encoding": "identity"}

Log = Callable[[str], None]


class DownloadError(RuntimeError):
    """The download could not be completed; the message says why in one line."""


class _Transient(Exception):
    """A failure worth retrying: connection trouble, truncated body, HTTP 5xx."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


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

    @property
    def known_hash(self) -> str | None:
        """The checksum as pooch writes it ("md5:...", "sha1:...", "sha256:...")."""
        if not (self.checksum and self.checksum_type):
            return None
        import hashlib

        algorithm = self.checksum_type.lower().replace("-", "")
        if algorithm not in hashlib.algorithms_available:
            raise DownloadError(f"unknown checksum type {self.checksum_type!r} for {self.name}")
        return f"{algorithm}:{self.checksum}"


# ---------------------------------------------------------------------------- network errors

def _causes(err: BaseException):
    """The error and what caused it, outermost first (requests wraps urllib3 wraps socket)."""
    seen: set[int] = set()
    while isinstance(err, BaseException) and id(err) not in seen:
        seen.add(id(err))
        yield err
        wrapped = err.args[0] if err.args and isinstance(err.args[0], BaseException) else None
        err = getattr(err, "reason", None) or wrapped or err.__cause__ or err.__context__


def _reason(err: BaseException) -> str:
    """A one-line description of a network error: its innermost cause."""
    root = list(_causes(err))[-1]
    text = f"{type(root).__name__}: {root}" if str(root) else type(root).__name__
    return " ".join(text.split())


def _is_offline(err: BaseException) -> bool:
    """True for failures that mean 'no route to the server at all' (DNS, refused connection)."""
    from urllib3.exceptions import NewConnectionError  # NameResolutionError is one too

    return any(isinstance(e, (NewConnectionError, socket.gaierror, ConnectionRefusedError))
               for e in _causes(err))


def _host(server: str) -> str:
    return urllib.parse.urlsplit(server).netloc or server


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
    """All files of the latest version of dataset `doi` on `server`, resolved by pooch.

    Raises DownloadError in one line when the server cannot be reached (offline?) or
    answers something that is not a Dataverse dataset listing.
    """
    import requests
    from pooch.downloaders import DataverseRepository

    bare_doi = doi.removeprefix("doi:")
    for attempt in range(retries + 1):
        try:
            response = DataverseRepository._get_api_response(bare_doi, server, timeout=timeout,
                                                             headers=_HEADERS)
        except requests.RequestException as err:
            # No route at all (DNS failure, refused): retrying would only delay the message.
            if _is_offline(err) or attempt == retries:
                raise DownloadError(f"cannot reach {_host(server)}: offline? ({_reason(err)})") from None
        else:
            if response.status_code < 500 or attempt == retries:
                break
        time.sleep(backoff * 2**attempt)
    if response.status_code >= 400:
        raise DownloadError(f"{_host(server)} answered HTTP {response.status_code} for the listing "
                            f"of {doi} ({response.url})")
    repository = DataverseRepository(bare_doi, server)
    repository.api_response = response
    try:
        files = repository.api_response.json()["data"]["latestVersion"]["files"]
        return [_remote_from_listing(entry) for entry in files]
    except (ValueError, KeyError, TypeError) as err:
        raise DownloadError(f"unexpected listing from {response.url}: not a Dataverse dataset "
                            f"({type(err).__name__}: {err})") from None


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
            if METADATA_FILE not in chosen or remote.name == METADATA_FILE:
                chosen[METADATA_FILE] = remote
    missing = [name for name in (METADATA_FILE, *ARCHIVES) if name not in chosen]
    if missing:
        listed = ", ".join(sorted(f.name for f in files)) or "nothing"
        raise DownloadError(f"the dataset listing lacks {', '.join(missing)} (it lists: {listed})")
    return chosen


# ---------------------------------------------------------------------------- resuming downloader

@dataclass
class ResumingDownloader:
    """A pooch downloader that resumes: bytes received stay in ``part`` until the file is whole.

    pooch calls it with the URL and a temporary file; it appends what ``part`` still lacks (a
    Range request from its size; a server that ignores Range restarts it), retries connection
    errors and HTTP 5xx ``retries`` times with exponential ``backoff``, then moves ``part`` into
    pooch's temporary file, which pooch verifies against the listed checksum and renames. A
    download cut for good raises :class:`DownloadError` and leaves ``part`` for the next run.
    """

    part: Path
    size: int | None = None  # the listed size: a part this big is complete, a bigger one wrong
    retries: int = 3
    backoff: float = 1.0
    timeout: float = 60.0
    progress: bool = True
    log: Log = _stderr

    def __call__(self, url: str, output_file: str, pooch) -> None:
        failures = 0
        while True:
            try:
                self._fetch(url)
                break
            except _Transient as err:
                failures += 1
                if failures > self.retries:
                    raise DownloadError(
                        f"{self.name}: download failed after {failures} attempts ({err}); "
                        f"run again to resume from {self.part.name}") from None
                wait = self.backoff * 2 ** (failures - 1)
                self.log(f"{self.name}: {err}; retrying in {wait:g} s ({failures}/{self.retries})")
                time.sleep(wait)
        self.part.touch()  # (nothing received at all: let the checksum say so)
        os.replace(self.part, output_file)

    @property
    def name(self) -> str:
        return self.part.name.removesuffix(".part")

    def _fetch(self, url: str) -> None:
        """Append the missing bytes to ``part``; raise _Transient for anything worth retrying."""
        import requests
        import urllib3
        from tqdm import tqdm

        offset = self.part.stat().st_size if self.part.exists() else 0
        if self.size is not None and offset > self.size:
            self.log(f"{self.name}: partial file is larger than the listed size; starting over")
            offset = 0
        if self.size is not None and offset == self.size:
            return  # complete already; pooch verifies it
        headers = {**_HEADERS, "Range": f"bytes={offset}-"} if offset else _HEADERS
        try:
            response = requests.get(url, headers=headers, stream=True, timeout=self.timeout)
        except requests.RequestException as err:
            raise _Transient(_reason(err)) from None
        with response:
            status = response.status_code
            if status == 416 and offset:  # nothing left to send: let the checksum decide
                return
            if status >= 500:
                raise _Transient(f"HTTP {status}")
            if status >= 400:
                raise DownloadError(f"{self.name}: server answered HTTP {status} ({url})")
            mode = "wb"
            if offset and status == 206:
                start = response.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
                if start.strip() != str(offset):
                    self.part.unlink()
                    raise _Transient(f"server resumed at {response.headers.get('Content-Range')!r}, "
                                     f"not at byte {offset}")
                self.log(f"{self.name}: resuming at byte {offset}")
                mode = "ab"
            elif offset:
                self.log(f"{self.name}: server ignored the Range request; starting over")
                offset = 0
            length = response.headers.get("Content-Length")
            received = 0
            with open(self.part, mode) as out, tqdm(
                total=self.size, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=self.name, disable=not self.progress, leave=False,
            ) as bar:
                # Straight from urllib3, which keeps every byte of a body cut short (requests'
                # iter_content drops the last chunk read): the length is checked below.
                response.raw.enforce_content_length = False
                try:
                    while chunk := response.raw.read(_CHUNK, decode_content=False):
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                except (OSError, urllib3.exceptions.HTTPError) as err:
                    raise _Transient(f"connection lost after {offset + received} bytes "
                                     f"({_reason(err)})") from None
        if length is not None and received < int(length):
            raise _Transient(f"connection closed after {offset + received} of "
                             f"{offset + int(length)} bytes")
