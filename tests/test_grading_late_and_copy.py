"""``python -m skinlab.grading grade`` from a copy of the course, and a late batch in a graded class.

* a course folder copied with its ``skinlab/`` and graded from there: the sandboxed kernels import
  the skinlab the grader runs (the copy's, first on ``python -m``'s path), not the one the editable
  install points at (which the sandbox does not show): an honest notebook scores 10/10 with no
  disagreement between nbgrader's in-kernel points and the verifier's;
* a batch autogrades and generates feedback for its own notebooks only: the class graded before
  keeps its autograded notebooks, feedback pages and grades (files not rewritten), a late
  student is graded, a student who re-submits is re-graded, and grades.csv lists everybody.

Both are marked ``grading`` (real nbgrader, ~3 s per call, ~6 s per notebook).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import simulated_class as sim  # noqa: E402

AID = "ex2_class_weights"
RELEASE = ROOT / "exercises" / AID / f"{AID}.ipynb"


def _fresh_course(root: Path) -> Path:
    """A course as a fresh clone has it: config, sources and release, no gradebook.db."""
    (root / "solutions" / AID).mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copy(ROOT / "solutions" / AID / f"{AID}.ipynb", root / "solutions" / AID)
    (root / "exercises" / AID).mkdir(parents=True)
    shutil.copy(RELEASE, root / "exercises" / AID)
    return root


def _submit(folder: Path, student: str, kind: str = "solution") -> None:
    path = folder / student / AID / f"{AID}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(sim.submission(RELEASE, AID, kind), str(path))


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_batch_runs_nbgrader_without_force_and_leaves_classmates_out(tmp_path):
    from skinlab.grading import commands

    for student in ("ann", "bob", "x,ann"):
        (tmp_path / "submitted" / student / AID).mkdir(parents=True)
    assert commands._step_args(tmp_path, "autograde", AID, None) == ["autograde", AID, "--force", "--log-level=WARN"]
    args = commands._step_args(tmp_path, "autograde", "ex[23]_*", {("ann", AID), ("bob", "ex1_split")})
    # bob has no notebook of ex2/ex3 in the batch; a name with a comma is never in the list,
    # where it would exclude "ann" too
    assert args == ["autograde", "ex[23]_*", "--log-level=WARN", "--CourseDirectory.student_id_exclude=bob"]
    assert commands._step_args(tmp_path, "generate_feedback", AID, {("ann", AID)}) == \
        ["generate_feedback", AID, "--log-level=WARN"]  # nothing in autograded/ yet


@pytest.mark.grading
@pytest.mark.slow
def test_grading_from_a_copied_course_folder_uses_the_graders_skinlab(tmp_path):
    pytest.importorskip("nbgrader")
    course = _fresh_course(tmp_path / "coursecopy")
    shutil.copytree(ROOT / "skinlab", course / "skinlab", ignore=shutil.ignore_patterns("__pycache__"))
    _submit(tmp_path / "class", "ann")

    # From the copy, as an instructor who copied the course folder does: the grader runs the
    # copy's skinlab; the editable install points at this checkout's.
    env = dict(os.environ, PATH="/usr/bin:/bin")
    proc = subprocess.run([sys.executable, "-m", "skinlab.grading", "grade", str(tmp_path / "class"), "--jobs", "1"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=600)

    assert proc.returncode == 0, proc.stderr
    [row] = _rows(course / "grades" / "grades.csv")
    assert (row["student_id"], row["score"], row["status"]) == ("ann", "10.0", "graded"), row
    assert _rows(course / "grades" / "disagreements.csv") == [], "nbgrader's kernel scored differently"
    autograded = (course / "autograded" / "ann" / AID / f"{AID}.ipynb").read_text()
    assert "ModuleNotFoundError" not in autograded


def _snapshot(course: Path, students) -> dict:
    files = {}
    for s in students:
        for path in (course / "autograded" / s / AID / f"{AID}.ipynb", course / "feedback" / s / AID / f"{AID}.html"):
            files[path] = (path.stat().st_mtime_ns, path.read_bytes())
    return files


@pytest.mark.grading
@pytest.mark.slow
def test_a_late_batch_grades_only_its_own_notebooks(tmp_path):
    pytest.importorskip("nbgrader")
    import contextlib
    import io

    from skinlab.grading import commands

    course = _fresh_course(tmp_path / "course")
    _submit(tmp_path / "batch1", "ann")
    _submit(tmp_path / "batch1", "bob", "mistake")
    with contextlib.redirect_stderr(io.StringIO()):
        first = commands.grade(tmp_path / "batch1", course, tmp_path / "out1", jobs=1, seed=1)
    mistake = float(sum(sim.expected_points(AID, "mistake").values()))
    assert {r["student_id"]: float(r["score"]) for r in _rows(first["grades"])} == {"ann": 10.0, "bob": mistake}
    before = _snapshot(course, ["ann"])
    bob_before = _snapshot(course, ["bob"])

    # carl is late; bob re-submits, now right.
    _submit(tmp_path / "batch2", "carl")
    _submit(tmp_path / "batch2", "bob")
    with contextlib.redirect_stderr(io.StringIO()):
        second = commands.grade(tmp_path / "batch2", course, tmp_path / "out2", jobs=1, seed=2)

    assert _snapshot(course, ["ann"]) == before, "ann's autograded notebook or feedback page was rewritten"
    after = _snapshot(course, ["bob", "carl"])  # both exist: graded, with feedback
    assert all(after[p] != bob_before[p] for p in bob_before), "bob's re-submission was not re-graded"
    rows = {r["student_id"]: r for r in _rows(second["grades"])}
    assert {s: (float(r["score"]), r["status"]) for s, r in rows.items()} == \
        {"ann": (10.0, "graded"), "bob": (10.0, "graded"), "carl": (10.0, "graded")}
    assert _rows(second["disagreements"]) == []
    scores = {(r["student_id"], r["grade_id"]): float(r["score"]) for r in _rows(second["scores_by_test"])}
    assert {s for s, _ in scores} == {"ann", "bob", "carl"}
    assert sum(v for (s, _), v in scores.items() if s == "ann") == 10.0  # ann's verified points kept
    errors = (tmp_path / "out2" / "nbgrader_errors.log").read_text()
    assert errors == "", errors
