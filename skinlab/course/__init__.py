"""The course around the package, one job per module. What the chapters use: the book's profiles
(:mod:`.profile`), the top of every page (:mod:`.page`), the models' configurations
(:mod:`.configs`), the runs shared between chapters (:mod:`.runcache`, keyed by :mod:`.codekey`).
The book build: :mod:`.bookbuild` (``python -m skinlab.course.bookbuild``), :mod:`.execute` (the
chapters executed side by side before Sphinx reads them), :mod:`.browser`, :mod:`.audit`. The
exercises: :mod:`.exercises`.

Nothing here assumes that the package lives inside the course's repository (it may be installed
anywhere): course commands take the course folder as an argument, else use :func:`course_root`.
"""

from __future__ import annotations

import os
from pathlib import Path

COURSE_ENV = "SKINLAB_COURSE_DIR"
CONFIG_FILE = "_config.yml"  # the book's Jupyter Book configuration marks the course folder

__all__ = ["COURSE_ENV", "CONFIG_FILE", "course_root"]


def course_root(path: str | os.PathLike | None = None) -> Path:
    """The course folder: ``path`` when given; else ``$SKINLAB_COURSE_DIR`` (the book build sets
    it for the chapters' kernels); else the current folder or the nearest one above it that holds
    ``_config.yml`` (a chapter opened in Jupyter runs in ``book/``); else the current folder."""
    if path is not None:
        return Path(path).resolve()
    if os.environ.get(COURSE_ENV):
        return Path(os.environ[COURSE_ENV]).resolve()
    here = Path.cwd().resolve()
    return next((folder for folder in (here, *here.parents) if (folder / CONFIG_FILE).is_file()), here)
