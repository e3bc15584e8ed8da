"""Files written whole or not at all: checkpoints, JSON and figures of a run folder.

Also :func:`exclusive`: one process at a time in a folder (the book executes chapters side by side,
and two of them may ask for the same cached run).

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

__all__ = ["TEMP_MARK", "atomic_write", "exclusive", "write_json"]

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


@contextmanager
def exclusive(path: str | os.PathLike):
    """``with exclusive(folder):`` one process at a time, on this machine, in ``folder``.

    An advisory lock (``fcntl.flock``) on ``<folder>.lock`` beside it: a second process blocks
    until the first leaves, then sees what it wrote. The lock goes with the process that holds it
    (a killed holder frees it), so a crash never leaves the folder locked. Where ``fcntl`` does not
    exist (Windows) it only runs the body.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: one process at a time is the caller's care
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
