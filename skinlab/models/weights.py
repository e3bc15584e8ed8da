"""Pretrained weights: found on disk, fetched once at most, loaded strictly, never silently absent.

When weights are missing a builder raises :class:`WeightsUnavailableError` telling you where to
put the file, unless it was given ``allow_random_init=True`` (then a loud
:class:`RandomInitWarning`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.request
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

DOWNLOAD_TIMEOUT_S = 10.0


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are not on disk and could not be fetched."""


class RandomInitWarning(UserWarning):
    """A model asked for pretrained weights is running on random initialisation."""


def load_pretrained(model: nn.Module, name: str, locate: Callable[[], Path],
                    allow_random_init: bool) -> None:
    """Load the state dict in the file ``locate()`` returns into ``model``, strictly.

    ``locate`` raises :class:`WeightsUnavailableError` when the file is not there; so does an
    unreadable file. Then: raise, or with ``allow_random_init`` warn and keep ``model`` as it is.
    """
    try:
        model.load_state_dict(load_state_file(locate()), strict=True)
    except WeightsUnavailableError as exc:
        if not allow_random_init:
            raise
        warnings.warn(
            f"{name}: PRETRAINED WEIGHTS UNAVAILABLE, USING RANDOM INITIALISATION "
            "(allow_random_init=True). Results will be far below transfer learning. "
            f"Reason: {exc}",
            RandomInitWarning,
            stacklevel=5,  # load_pretrained < builder < ModelSpec.build < build_model < caller
        )


def load_state_file(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated download, wrong file...
        raise WeightsUnavailableError(
            f"could not read the weights file {path} ({exc}); delete it and fetch it again"
        ) from exc


def download_weights(url: str, dst: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> bool:
    """Fetch ``url`` to ``dst`` atomically; True on success, False when offline or on a bad hash.

    The file name carries a sha256 prefix (torchvision convention, ``name-<hash>.pth``): checked.
    """
    dst = Path(dst)
    match = re.search(r"-([a-f0-9]+)\.", dst.name)
    tmp_name = None
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=timeout) as response, tempfile.NamedTemporaryFile(
            dir=dst.parent, delete=False, suffix=".partial"
        ) as tmp:
            tmp_name = tmp.name
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                tmp.write(chunk)
        if match and not digest.hexdigest().startswith(match.group(1)):
            warnings.warn(
                f"downloaded {url} but its sha256 does not start with {match.group(1)}: discarded",
                stacklevel=3,
            )
            return False
        os.replace(tmp_name, dst)
        tmp_name = None
        return True
    except OSError:  # URLError, timeouts, DNS failure, read-only cache dir
        return False
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
