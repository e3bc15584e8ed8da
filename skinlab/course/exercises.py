"""The course's graded exercises, read from their one source each: ``solutions/<id>/<id>.py``.

An exercise exists because its source does; its test cells and their points are the source's cell
headers (``# %% test grade_id=test_split_output points=2``). Nothing else lists them: the
notebook builder (``solutions/build.py``), the grading commands and the simulated class all ask
here. The percent format itself is described in ``solutions/build.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import course_root

__all__ = ["exercise_ids", "exercise_source", "parse", "test_points"]

_ID = re.compile(r"ex\d+_[a-z0-9_]+")
_HEADER = re.compile(r"^# %%(?P<rest>.*)$")


def exercise_ids(course: str | os.PathLike | None = None) -> tuple[str, ...]:
    """Every exercise of the course, in order (ex1, ex2 …): each ``<id>`` with a source
    ``solutions/<id>/<id>.py`` (or its notebook), or, in a course that holds only the students'
    release, ``exercises/<id>/<id>.ipynb``."""
    root = course_root(course)
    found = set()
    for folder, names in (("solutions", ("{}.py", "{}.ipynb")), ("exercises", ("{}.ipynb",))):
        if (root / folder).is_dir():
            found |= {p.name for p in (root / folder).iterdir()
                      if _ID.fullmatch(p.name) and any((p / n.format(p.name)).is_file() for n in names)}
    return tuple(sorted(found, key=lambda aid: (int(re.match(r"ex(\d+)", aid).group(1)), aid)))


def exercise_source(aid: str, course: str | os.PathLike | None = None) -> Path:
    path = course_root(course) / "solutions" / aid / f"{aid}.py"
    if not path.is_file():
        known = ", ".join(exercise_ids(course)) or "none"
        raise FileNotFoundError(f"no exercise source {path} (exercises of this course: {known})")
    return path


def parse(text: str) -> list[tuple[str, dict, str]]:
    """[(kind, options, source)] with kind in markdown/code/answer/test, one per ``# %%`` cell."""
    cells, kind, options, lines = [], None, {}, []

    def flush():
        if kind is not None:
            body = "\n".join(lines).strip("\n")
            if kind == "markdown":
                body = "\n".join(re.sub(r"^# ?", "", line) for line in body.split("\n"))
            cells.append((kind, options, body))

    for line in text.split("\n"):
        m = _HEADER.match(line)
        if not m:
            lines.append(line)
            continue
        flush()
        rest = m.group("rest").strip()
        kind = "code"
        if rest.startswith("[markdown]"):
            kind, rest = "markdown", rest[len("[markdown]"):].strip()
        elif rest.split(" ")[0] in ("answer", "test"):
            kind, rest = rest.split(" ")[0], rest[len(rest.split(" ")[0]):].strip()
        options = dict(item.split("=", 1) for item in rest.split()) if rest else {}
        lines = []
    flush()
    if cells and cells[0][0] == "code" and not cells[0][2].strip():
        cells = cells[1:]  # text before the first header (module docstring) is not a cell
    return cells


def test_points(aid: str, course: str | os.PathLike | None = None) -> dict[str, int]:
    """{test grade_id: points} of exercise ``aid``, in notebook order."""
    source = exercise_source(aid, course)
    out = {}
    for kind, options, _ in parse(source.read_text()):
        if kind == "test":
            try:
                out[options["grade_id"]] = int(options["points"])
            except (KeyError, ValueError):
                raise ValueError(f"{source}: a test cell header needs grade_id=… and points=N (an integer); "
                                 f"got {options}") from None
    return out
