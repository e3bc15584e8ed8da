"""Files written whole or not at all: checkpoints, JSON and figures of a run folder.

A reader (a resumed run, the book, another process) never sees half a file: :func:`atomic_write`
writes a temporary file in the target's folder, flushes it to disk, then renames it over the
target (``os.replace`` is atomic within one file system). A failure, ``KeyboardInterrupt``
included, leaves the previous file as it was and no temporary file behind.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

__all__ = ["TEMP_MARK", "atomic_write", "write_json"]

# Temporary files are ``.<name>.tmp-<pid>-<random>``: hidden, and easy to find when a killed
# process left one behind (``engine.fit`` removes stale ``.*.pt.tmp-*``).
TEMP_MARK = ".tmp-"


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """``with atomic_write(path) as handle:`` write to ``handle``; ``path`` appears on success.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (UTF-8 text). Parent folders are created.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, mode.replace("w", "x"), **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only there when something failed


def write_json(obj, path: str | os.PathLike) -> Path:
    """``obj`` as indented JSON (values JSON lacks, such as paths, as ``str``), atomically."""
    text = json.dumps(obj, indent=2, default=str)  # fails before any file is touched
    with atomic_write(path, "w") as handle:
        handle.write(text)
    return Path(path)
