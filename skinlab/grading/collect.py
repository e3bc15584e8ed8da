"""Step 1 of grading: put every notebook of SUBMISSIONS into ``submitted/`` or into skipped.csv.

A notebook is compared with the release (tampering), and cells duplicated by accident are
de-duplicated so that nbgrader can grade it.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..course.exercises import exercise_ids


def _nbmeta(cell) -> dict:
    meta = cell.get("metadata", {}) if isinstance(cell.get("metadata"), dict) else {}
    meta = meta.get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _has_points(meta) -> bool:
    return meta.get("points") not in (None, 0, 0.0, "", "0")


def _graded(meta) -> bool:
    """nbgrader would count points for the cell: ``grade: true`` or points set."""
    return bool(meta.get("grade")) or _has_points(meta)


def _metadata_problem(source, meta) -> str | None:
    """Why the submitted nbgrader metadata ``meta`` of a cell is not what the source notebook has
    for its grade_id (``source``: that cell's metadata there, None if the source has no such
    grade_id), or None. The verifier reads the source, so the points stay right; this says who tried."""
    if source is None:
        return (f"extra graded cell: its grade_id is not in the source (points {meta.get('points', 0)!r})"
                if _graded(meta) else None)
    if source.get("solution") and not source.get("grade"):  # an answer cell
        marks = [k for k in ("locked", "grade") if meta.get(k)] + (["points"] if _has_points(meta) else [])
        return f"answer cell re-marked as {'/'.join(marks)}" if marks else None
    if source.get("grade"):  # a test cell
        if meta.get("solution"):
            return "test cell re-marked as an answer (solution: true)"
        return None  # grade/points/locked: "metadata changed" (find_tampering)
    if _graded(meta):  # a locked cell of the source, not graded there
        return f"graded, but not graded in the source (points {meta.get('points', 0)!r})"
    return None


def find_tampering(release_nb, submitted_nb, source_nb=None) -> list[tuple[str, str]]:
    """[(grade_id, problem)] for locked/test cells of the release that were deleted or edited, and
    for nbgrader metadata that differs from the source notebook's (``source_nb``, default the
    release; metadata of both is the same): an extra graded cell, an answer cell re-marked as
    locked/graded, a test cell re-marked as an answer, a test cell's points changed."""
    import nbformat

    rel = nbformat.read(str(release_nb), as_version=4)
    src = nbformat.read(str(source_nb), as_version=4) if source_nb is not None else rel
    try:
        sub = nbformat.read(str(submitted_nb), as_version=4)
    except Exception as exc:  # unreadable JSON is tampering of its own kind
        return [("(notebook)", f"unreadable: {exc}")]
    by_id = {}
    for cell in sub.cells:
        gid = _nbmeta(cell).get("grade_id")
        if gid:
            by_id.setdefault(gid, []).append(cell)
    kinds = {}
    for cell in src.cells:
        meta = _nbmeta(cell)
        if meta.get("grade_id"):
            kinds.setdefault(meta["grade_id"], meta)
    problems = []
    for cell in rel.cells:
        meta = _nbmeta(cell)
        gid = meta.get("grade_id")
        if not gid or not (meta.get("locked") or meta.get("grade")) or meta.get("solution"):
            continue
        meta = kinds.get(gid, meta)
        copies = by_id.get(gid, [])
        if not copies:
            problems.append((gid, "deleted"))
            continue
        if len(copies) > 1:
            problems.append((gid, "duplicated"))
        other = copies[0]
        if other.source.strip() != cell.source.strip():
            problems.append((gid, "edited"))
        elif not _nbmeta(other).get("solution") and {k: _nbmeta(other).get(k) for k in ("grade", "points", "locked")} != {
            k: meta.get(k) for k in ("grade", "points", "locked")
        }:
            problems.append((gid, "metadata changed"))
    flagged = set()
    for cell in sub.cells:  # every cell with nbgrader metadata, against the source's
        meta = _nbmeta(cell)
        gid = meta.get("grade_id")
        if not gid or not isinstance(gid, str):
            continue
        problem = _metadata_problem(kinds.get(gid), meta)
        if problem and (gid, problem) not in flagged:
            flagged.add((gid, problem))
            problems.append((gid, problem))
    return problems


DEDUPLICATED = "duplicated (de-duplicated)"
SKIPPED_FIELDS = ["student_id", "path", "reason", "guess", "guessed_from"]
TAMPERED_FIELDS = ["student_id", "assignment", "grade_id", "problem"]


@dataclass
class _Batch:
    """What one ``grade`` call found in SUBMISSIONS."""

    found: dict = field(default_factory=dict)       # assignment -> [student] put into submitted/
    tampered: list = field(default_factory=list)    # rows of tampered.csv for those notebooks
    skipped: list = field(default_factory=list)     # rows of skipped.csv
    students: set = field(default_factory=set)      # every student folder with a notebook in it

    @property
    def pairs(self) -> set:
        return {(student, aid) for aid, students in self.found.items() for student in students}


def _one_line(text, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _deduplicate(nb, release_nb) -> list[tuple[str, str]]:
    """Make the grade_ids of ``nb`` unique, in place; [(grade_id, problem)] for each one fixed.

    A cell duplicated by accident (Jupyter's copy/paste) keeps its nbgrader metadata, and nbgrader
    0.9.6 then fails on the notebook (``KeyError: 'grade_id'``: its ``DeduplicateIds`` leaves an
    empty ``nbgrader`` dict that ``OverwriteCells`` cannot read), so an honest notebook scored 0.
    A duplicated test or locked cell: the later copies are dropped (nbgrader restores the first
    from the gradebook anyway). A duplicated answer cell: every copy stays, in order (the kernel
    runs them all and the last definition wins, as in the student's notebook), and all but the
    last lose their nbgrader metadata. Metadata without a grade_id is removed too.
    """
    kinds = {}
    for cell in release_nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            kinds[meta["grade_id"]] = meta
    fixes = []
    copies: dict[str, list[int]] = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        if not isinstance(meta, dict) or not meta.get("grade_id"):
            del cell["metadata"]["nbgrader"]
            fixes.append(("(no grade_id)", "nbgrader metadata without a grade_id (removed)"))
            continue
        copies.setdefault(meta["grade_id"], []).append(i)
    drop = set()
    for gid, idxs in copies.items():
        if len(idxs) < 2:
            continue
        meta = kinds.get(gid) or nb.cells[idxs[-1]]["metadata"]["nbgrader"]
        if meta.get("solution") or not (meta.get("grade") or meta.get("locked")):
            for i in idxs[:-1]:
                del nb.cells[i]["metadata"]["nbgrader"]
        else:
            drop.update(idxs[1:])
        fixes.append((gid, DEDUPLICATED))
    if drop:
        nb.cells = [cell for i, cell in enumerate(nb.cells) if i not in drop]
    seen = set()
    for cell in nb.cells:  # a copy made outside Jupyter may repeat the cell id, which nbformat rejects
        if "id" in cell:
            if cell["id"] in seen:
                cell["id"] = uuid.uuid4().hex[:8]
            seen.add(cell["id"])
    return fixes


def _release_nb(course: Path, aid: str) -> Path:
    path = course / "exercises" / aid / f"{aid}.ipynb"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `python -m skinlab.grading release {aid}` in the course first")
    return path


def _clean_metadata(nb) -> list[tuple[str, str]]:
    """Remove cell metadata that is not what nbgrader and the grader read (a hostile or broken
    notebook could otherwise crash the batch for everyone): [(where, problem)] for each fix."""
    fixes = []
    for cell in nb.cells:
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
            fixes.append(("(cell)", "cell metadata that is not a mapping (removed)"))
        meta = cell["metadata"].get("nbgrader")
        if meta is not None and not (isinstance(meta, dict) and isinstance(meta.get("grade_id", ""), str)
                                     and all(isinstance(k, str) for k in meta)):
            del cell["metadata"]["nbgrader"]
            fixes.append(("(cell)", "malformed nbgrader metadata (removed)"))
    return fixes


def _submit(course: Path, src: Path, student: str, aid: str, batch: _Batch) -> None:
    """Copy the notebook ``src/<aid>.ipynb`` into ``submitted/``, cleaned and de-duplicated; note
    its tampering. Only the notebook is copied, never a link or another file: the grader runs as
    you, and a link to the solutions would otherwise come back in the student's feedback."""
    import nbformat

    release_nb = _release_nb(course, aid)
    dest = course / "submitted" / student / aid
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    notebook = src / f"{aid}.ipynb"
    for stale in (course / "autograded" / student / aid, course / "feedback" / student / aid):
        if stale.exists():  # graded from an older submission: not this one's result
            shutil.rmtree(stale)
    try:
        nb = nbformat.read(str(notebook), as_version=4)
        fixes = _clean_metadata(nb)
        fixes += _deduplicate(nb, nbformat.read(str(release_nb), as_version=4))
        nbformat.write(nb, str(dest / f"{aid}.ipynb"))
        source_nb = course / "solutions" / aid / f"{aid}.ipynb"  # what the verifier grades from
        problems = [p for p in find_tampering(release_nb, dest / f"{aid}.ipynb",
                                              source_nb if source_nb.is_file() else None)
                    if p[1] != "duplicated"] + fixes
    except Exception as exc:  # noqa: BLE001 - unreadable: nbgrader fails on it, the status says why
        shutil.copyfile(notebook, dest / f"{aid}.ipynb", follow_symlinks=False)
        problems = [("(notebook)", f"unreadable: {_one_line(exc)}")]
    batch.tampered += [dict(student_id=student, assignment=aid, grade_id=gid, problem=problem)
                       for gid, problem in problems]
    batch.found.setdefault(aid, []).append(student)


def _guess_from_name(names, known) -> str | None:
    """The assignment (of ``known``) that a file or folder name points to: its id, or "ex2", "exercise 2"…"""
    for name in names:
        low = name.lower()
        for aid in known:
            if aid in low:
                return aid
        m = re.search(r"(?<![a-z])ex(?:ercise)?[\s_-]*0*([1-9])(?!\d)", low)
        if m:
            for aid in known:
                if aid.startswith(f"ex{m.group(1)}_"):
                    return aid
    return None


def _guess_from_cells(course: Path, path: Path) -> str | None:
    """The assignment whose release shares most grade_ids with the notebook at ``path``."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
        _clean_metadata(nb)
    except Exception:  # noqa: BLE001 - a guess only
        return None
    gids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}
    best, overlap = None, 0
    for aid in exercise_ids(course):
        release = course / "exercises" / aid / f"{aid}.ipynb"
        if not gids or not release.is_file():
            continue
        rel = nbformat.read(str(release), as_version=4)
        n = len(gids & {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in rel.cells})
        if n > overlap:
            best, overlap = aid, n
    return best


def _skipped_row(course: Path, path: Path, rel: Path) -> dict:
    parts = rel.parts
    known = exercise_ids(course)
    if len(parts) == 1:
        reason = "not in a student folder"
    elif len(parts) == 2:
        reason = "not in an exercise folder"
    elif parts[1] in known and len(parts) == 3:
        reason = f"named {parts[2]!r}, not {parts[1]}.ipynb"
        if (path.parent / f"{parts[1]}.ipynb").is_file():
            reason += f" ({parts[1]}.ipynb next to it is graded)"
    elif parts[1] in known:
        reason = "in a subfolder of the exercise folder"
    else:
        reason = f"unknown exercise folder {parts[1]!r}"
    by_name = _guess_from_name([Path(parts[-1]).stem, *reversed(parts[1:-1])], known)
    by_cells = _guess_from_cells(course, path)
    if by_name and by_cells and by_name != by_cells:
        guess, source = by_cells, f"cells (name says {by_name})"
    else:
        guess = by_cells or by_name or ""
        source = " and ".join(k for k, v in (("name", by_name), ("cells", by_cells)) if v)
    return dict(student_id=parts[0] if len(parts) > 1 else "", path=rel.as_posix(), reason=reason,
                guess=guess, guessed_from=source)


# nbgrader finds a student's files through glob patterns built from the student id: a folder
# named "bo[b]" matched "bob", graded bob's notebook as its own and replaced his feedback.
GLOB_CHARACTERS = "*?[]"
# Copies that editors and archivers leave next to the real notebooks: never a submission.
_NOISE_FOLDERS = {".ipynb_checkpoints", "__MACOSX"}


def _student_folder_problem(name: str, siblings) -> str | None:
    """Why the student folder ``name`` cannot be graded under its name, with the fix (or None).

    ``siblings``: every folder name at the top of SUBMISSIONS (a name differing only in its
    Unicode form is another folder that would look identical in every report)."""
    if name.startswith("."):
        return (f"student folder {name!r} is hidden (its name starts with '.'): "
                f"rename it without the dot to have it graded")
    bad = sorted({ch for ch in name if ch in GLOB_CHARACTERS})
    if bad:
        return (f"student folder {name!r} has {' '.join(bad)} in its name, which nbgrader reads as a "
                f"pattern (it would grade a classmate's notebook): rename it without {' '.join(bad)}")
    nfc = unicodedata.normalize("NFC", name)
    twins = sorted(other for other in siblings if other != name and unicodedata.normalize("NFC", other) == nfc)
    if twins and name != nfc:
        graded = f"; {ascii(nfc)} is graded" if nfc in twins else ""
        return (f"student folder {ascii(name)} has the same name as {', '.join(map(ascii, twins))} in another "
                f"Unicode form (they look identical): merge them or rename one{graded}")
    return None


def _collect(submissions: Path, course: Path, wanted) -> _Batch:
    """Step 1: every notebook in SUBMISSIONS either goes into ``submitted/`` or into skipped.csv.

    A student is graded under the folder's name in Unicode NFC form (what macOS writes as NFD
    looks the same and is the same student); a folder that cannot be graded under its own name
    (hidden, glob characters, a twin in another Unicode form) is listed with the fix."""
    batch = _Batch()
    known = exercise_ids(course)
    siblings = {p.name for p in submissions.iterdir()}
    for path in sorted(submissions.rglob("*.ipynb")):
        rel = path.relative_to(submissions)
        parts = rel.parts
        if any(p in _NOISE_FOLDERS for p in parts) or parts[-1].startswith("._"):
            continue  # checkpoints, macOS resource forks
        student = unicodedata.normalize("NFC", parts[0]) if len(parts) > 1 else ""
        problem = _student_folder_problem(parts[0], siblings) if len(parts) > 1 else None
        if problem is None and any(p.startswith(".") for p in parts[1:]):
            problem = "in a hidden folder (its name starts with '.'): move the notebook out of it"
        if problem is not None:
            batch.skipped.append(dict(student_id=parts[0], path=rel.as_posix(), reason=problem, guess="",
                                      guessed_from=""))
            continue
        if path.is_symlink() or not path.is_file():
            if path.is_symlink():
                batch.skipped.append(dict(student_id=student, path=rel.as_posix(),
                                          reason="a symbolic link, not a notebook (not followed)", guess="",
                                          guessed_from=""))
            continue
        if len(parts) > 1:
            batch.students.add(student)
        if len(parts) == 3 and parts[1] in known and parts[2] == f"{parts[1]}.ipynb":
            if parts[1] in wanted:
                _submit(course, path.parent, student, parts[1], batch)
            continue  # an assignment not asked for is no mistake of the student's
        batch.skipped.append({**_skipped_row(course, path, rel), "student_id": student})
    return batch
