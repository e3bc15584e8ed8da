"""A tiny fake Harvard Dataverse on 127.0.0.1 for the download tests.

Serves the dataset listing (`/api/datasets/:persistentId?persistentId=...`, with or without
a slash before the "?" as Dataverse does) and the
files (`/api/access/datafile/{id}`, `?format=original` for ingested tables), with
per-file faults: corrupt bytes, cut connections, HTTP 500 and ignored Range requests.
Every request is recorded so tests can assert what the client asked for.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALWAYS = 10**9  # a fault count that never runs out


@dataclass
class FakeFile:
    """One file of the fake dataset; the fault counters decrease as they fire."""

    id: int
    name: str
    data: bytes
    checksum_type: str = "MD5"
    original: bytes | None = None  # set for an ingested table: `data` is the .tab, this the csv
    original_name: str | None = None
    corrupt: int = 0  # serve wrong bytes this many times
    cut: int = 0  # send full headers, then half the body and close, this many times
    fail: int = 0  # answer 500 this many times
    honour_range: bool = True

    def checksum(self) -> str:
        # Dataverse lists the checksum of the saved original for an ingested file.
        payload = self.original if self.original is not None else self.data
        return hashlib.new(self.checksum_type.lower().replace("-", ""), payload).hexdigest()

    def listing(self) -> dict:
        data_file = {
            "id": self.id,
            "filename": self.name,
            "contentType": "application/zip" if self.name.endswith(".zip") else "text/plain",
            "filesize": len(self.data),
            "checksum": {"type": self.checksum_type, "value": self.checksum()},
        }
        if self.checksum_type == "MD5":
            data_file["md5"] = self.checksum()
        if self.original is not None:
            data_file.update(
                contentType="text/tab-separated-values",
                tabularData=True,
                originalFileFormat="text/csv",
                originalFormatLabel="Comma Separated Values",
                originalFileName=self.original_name,
                originalFileSize=len(self.original),
            )
        return {"label": self.name, "restricted": False, "version": 1, "dataFile": data_file}


@dataclass
class Request:
    path: str
    query: dict
    range: str | None
    status: int
    body_bytes: int  # bytes of body actually sent


@dataclass
class FakeDataverse:
    """Run with `with FakeDataverse(files) as server:`; `server.url` is the base URL."""

    files: list[FakeFile]
    doi: str = "doi:10.7910/DVN/DBW86T"
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval keeps shutdown() (and so each test) fast.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FakeDataverse:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def file(self, name: str) -> FakeFile:
        return next(f for f in self.files if f.name == name)

    def requests_for(self, name: str) -> list[Request]:
        path = f"/api/access/datafile/{self.file(name).id}"
        return [r for r in self.requests if r.path == path]

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _handler_for(server: FakeDataverse):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, status: int, body: bytes, headers: dict | None = None, send: int | None = None):
            sent = body if send is None else body[:send]
            # Record before writing: the client may finish reading before this thread resumes.
            parsed = urllib.parse.urlsplit(self.path)
            server.record(Request(parsed.path, dict(urllib.parse.parse_qsl(parsed.query)),
                                  self.headers.get("Range"), status, len(sent)))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(sent)
            self.wfile.flush()

        def do_GET(self):
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            range_header = self.headers.get("Range")

            if parsed.path.rstrip("/") == "/api/datasets/:persistentId":
                if query.get("persistentId") != server.doi:
                    body = json.dumps({"status": "ERROR", "message": "not found"}).encode()
                    return self._send(404, body)
                listing = {"status": "OK", "data": {"latestVersion": {
                    "versionState": "RELEASED", "files": [f.listing() for f in server.files]}}}
                return self._send(200, json.dumps(listing).encode(), {"Content-Type": "application/json"})

            prefix = "/api/access/datafile/"
            matches = [f for f in server.files if parsed.path == f"{prefix}{f.id}"]
            if not matches:
                return self._send(404, b"no such file")
            fake = matches[0]
            with server._lock:  # fault counters are shared between handler threads
                fail = fake.fail > 0
                fake.fail -= fail
            if fail:
                return self._send(500, b"internal error")
            wants_original = fake.original is not None and query.get("format") == "original"
            payload = fake.original if wants_original else fake.data
            start = 0
            if range_header and fake.honour_range:
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(payload):
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(payload)}"})
            body = payload[start:]
            with server._lock:
                corrupt, cut = fake.corrupt > 0, fake.cut > 0
                fake.corrupt -= corrupt
                fake.cut -= cut
            if corrupt and body:
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            headers = {"Content-Type": "application/octet-stream"}
            status = 200
            if start:
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(payload) - 1}/{len(payload)}"
            self._send(status, body, headers, send=len(body) // 2 if cut else None)
            # HTTP/1.0: returning closes the connection, which is what cuts a file short.

    return Handler
