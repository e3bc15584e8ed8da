"""The verifier's verdicts for a batch: computed in parallel, stored in the gradebook, kept for feedback.

* :func:`verify_batch` runs :func:`verifier.verify` for every submitted notebook (one
  self-contained unit each: its notebook, its sandboxed worker, its verdicts), ``jobs`` at a time.
* :func:`apply_to_gradebook` writes the verifier's points where they differ from nbgrader's
  in-kernel result, as nbgrader stores an instructor's override (``Grade.manual_score``), so
  ``nbgrader export``, the feedback and ``grades.csv`` all show them; it returns the
  disagreements with their reasons. Only this (the grader's) process writes the gradebook.
* ``<course>/verified/<student>/<assignment>.json`` keeps each notebook's verdicts; the feedback
  preprocessor shows them in place of whatever the test cells printed in the student's kernel.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from . import testcells, verifier

VERIFIED_DIR = "verified"


def source_notebook(course: Path, assignment: str) -> dict:
    return json.loads((course / "solutions" / assignment / f"{assignment}.ipynb").read_text())


def verify_unit(course: Path, student: str, assignment: str, notebook: Path, *, seed: int,
                sandboxed: bool, time_limit: float, limits=None) -> dict:
    """Verdicts of one submission, as a JSON-able record (an unreadable notebook scores 0)."""
    started = time.monotonic()
    record = {"student": student, "assignment": assignment, "seed": seed, "sandboxed": sandboxed}
    source = source_notebook(course, assignment)
    try:
        submitted = json.loads(Path(notebook).read_text(encoding="utf-8"))
        if not isinstance(submitted, dict) or not isinstance(submitted.get("cells"), list):
            raise ValueError("not a notebook")
    except (OSError, ValueError) as exc:
        cells = [verifier.CellVerdict(t.grade_id, 0.0, t.points, f"your notebook could not be read ({exc})")
                 for t in testcells.test_cells(source)]
        record["unreadable"] = str(exc)[:200]
    else:
        try:
            cells = verifier.verify(assignment, source, submitted, seed=seed, sandboxed=sandboxed,
                                    time_limit=time_limit, limits=limits)
        except Exception as exc:  # noqa: BLE001 - one notebook must never stop the batch
            cells = [verifier.CellVerdict(t.grade_id, 0.0, t.points, f"your notebook could not be graded ({type(exc).__name__}: {exc})"[:500])
                     for t in testcells.test_cells(source)]
            record["unreadable"] = f"{type(exc).__name__}: {exc}"[:200]
    record["cells"] = [asdict(c) for c in cells]
    record["seconds"] = round(time.monotonic() - started, 2)
    return record


def _verify_and_save(args) -> dict:
    course, unit, seed, sandboxed, time_limit, limits = args
    return verify_batch(course, [unit], seed=seed, sandboxed=sandboxed, jobs=1, time_limit=time_limit,
                        limits=limits)[0]


def verify_batch(course: Path, units, *, seed: int, sandboxed: bool, jobs: int = 1,
                 time_limit: float = 10.0, limits=None) -> list[dict]:
    """``units`` = [(student, assignment, notebook path)]; records written under ``verified/``."""
    course = Path(course)

    def one(unit):
        student, assignment, notebook = unit
        record = verify_unit(course, student, assignment, notebook, seed=seed, sandboxed=sandboxed,
                             time_limit=time_limit, limits=limits)
        path = course / VERIFIED_DIR / student / f"{assignment}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)
        return record

    # Processes, not threads: the judges seed torch's global generator to rebuild their reference
    # models, and two judges in one process would race on it.
    import multiprocessing

    if jobs <= 1 or len(units) <= 1:
        return [one(unit) for unit in units]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_verify_and_save, [(course, unit, seed, sandboxed, time_limit, limits) for unit in units]))


def load_record(course: Path, student: str, assignment: str) -> dict | None:
    path = Path(course) / VERIFIED_DIR / student / f"{assignment}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def open_gradebook(course: Path):
    """The course's gradebook, opened in this process.

    nbgrader's ``Gradebook`` runs ``alembic`` as a program (to check the database schema): this
    interpreter's ``bin/`` goes first on ``PATH`` meanwhile, so ``.venv/bin/python -m
    skinlab.grading`` works without an activated environment.
    """
    from nbgrader.api import Gradebook

    old = os.environ.get("PATH")
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + (old or "")
    try:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="skinlab") as gb:
            yield gb
    finally:
        if old is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old


def apply_to_gradebook(course: Path, records: list[dict]) -> list[dict]:
    """Store the verifier's points as overrides (every test cell), and list where nbgrader's in-kernel points differ.

    Returns one row per disagreement: student, assignment, grade_id, in_kernel (None when
    nbgrader produced no score, e.g. the kernel died), verified, reason. A submission nbgrader
    could not grade at all gets its submission record created so that its verified points count.
    """
    from nbgrader.api import MissingEntry

    rows = []
    with open_gradebook(Path(course)) as gb:
        for record in records:
            student, assignment = record["student"], record["assignment"]
            gb.update_or_create_student(student)
            try:
                gb.find_submission(assignment, student)
            except MissingEntry:
                gb.add_submission(assignment, student)
            for cell in record["cells"]:
                grade = gb.find_grade(cell["grade_id"], assignment, assignment, student)
                in_kernel = grade.auto_score
                verified = float(cell["points"])
                # Always stored, agreeing or not: should nbgrader autograde the notebook again
                # (a batch autogrades only its own notebooks, but `nbgrader autograde --force` by
                # hand redoes them all), one that cheats only then must not replace its verified
                # points with new in-kernel ones.
                grade.manual_score = verified
                if in_kernel is None or abs(in_kernel - verified) >= 1e-9:
                    rows.append({"student_id": student, "assignment": assignment, "grade_id": cell["grade_id"],
                                 "in_kernel": in_kernel, "verified": verified,
                                 "reason": cell["message"] or "passed when verified outside the notebook"})
                grade.needs_manual_grade = False
            gb.db.commit()
    return rows


def ensure_autograded(course: Path, student: str, assignment: str, notebook: Path) -> bool:
    """Write ``autograded/<student>/<id>/<id>.ipynb`` when nbgrader could not (a kernel that died
    takes nbgrader's whole notebook with it), so the verified points get their feedback page:
    the source notebook with the student's answers, no outputs. True when it wrote one."""
    import copy

    import nbformat

    target = Path(course) / "autograded" / student / assignment / f"{assignment}.ipynb"
    if target.is_file():
        return False
    source = nbformat.read(str(Path(course) / "solutions" / assignment / f"{assignment}.ipynb"), as_version=4)
    try:
        submitted = nbformat.read(str(notebook), as_version=4)
        answers = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in submitted.cells
                   if c.metadata.get("nbgrader", {}).get("solution")}
    except Exception:  # noqa: BLE001 - unreadable: the answers stay empty
        answers = {}
    out = copy.deepcopy(source)
    for cell in out.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = answers.get(meta.get("grade_id"), "")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(out, str(target))
    return True
