"""The graded exercises through real nbgrader 0.9.6, headless, in a temporary course directory.

* the committed release (exercises/) equals a fresh ``generate_assignment`` of solutions/;
* every source notebook passes nbgrader's validation (its Python API);
* a simulated class (solutions/simulated_class.py) is graded in one batch by
  ``skinlab.grading.grade``: each submission gets exactly the points it deserves per test cell,
  tampering is flagged, grades export to CSV, and the feedback HTML holds no hidden test.

Slow (every notebook starts a kernel): marked ``grading``. ``SKINLAB_FULL_CLASS=1`` grades every
adversarial student on every assignment (40 notebooks) instead of the default 25.
"""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

from skinlab.course.exercises import exercise_ids
from skinlab import grading

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = exercise_ids(ROOT)
sys.path.insert(0, str(ROOT / "solutions"))
import simulated_class as sim  # noqa: E402

pytestmark = [pytest.mark.grading, pytest.mark.slow]
pytest.importorskip("nbgrader", reason="the grading extra (nbgrader) is not installed")


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    """Kernels start as `python` and nbgrader runs `alembic`: this environment's must be found."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course directory with the config and the source notebooks, released afresh."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    for aid in EXERCISES:
        (root / "solutions" / aid).mkdir(parents=True)
        shutil.copy(ROOT / "solutions" / aid / f"{aid}.ipynb", root / "solutions" / aid)
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + old
    try:
        grading.release(root)
    finally:
        os.environ["PATH"] = old
    return root


def _cells(path: Path) -> list[tuple]:
    nb = nbformat.read(str(path), as_version=4)
    return [(c.cell_type, c.get("id"), c.source, c.metadata.get("nbgrader")) for c in nb.cells]


@pytest.mark.parametrize("aid", EXERCISES)
def test_committed_release_equals_fresh_generate_assignment(course, aid):
    fresh = _cells(course / "exercises" / aid / f"{aid}.ipynb")
    committed = _cells(ROOT / "exercises" / aid / f"{aid}.ipynb")
    assert committed == fresh, "exercises/ is stale: run `python -m skinlab.grading release`"
    text = (ROOT / "exercises" / aid / f"{aid}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text


def test_source_notebooks_pass_nbgrader_validation():
    from nbgrader.validator import Validator
    from traitlets.config import Config

    config = Config()
    config.Execute.timeout = 120
    for aid in EXERCISES:
        result = Validator(config=config).validate(str(ROOT / "solutions" / aid / f"{aid}.ipynb"))
        assert result == {}, (aid, result)


def _hidden_lines(aid: str) -> list[str]:
    nb = nbformat.read(str(ROOT / "solutions" / aid / f"{aid}.ipynb"), as_version=4)
    lines = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    released = (ROOT / "exercises" / aid / f"{aid}.ipynb").read_text()
    return [line for line in lines if line not in released]  # e.g. an import also in the answer


def _html_text(path: Path) -> str:
    """The feedback page as a reader sees it: tags (syntax highlighting) removed, entities decoded."""
    text = re.sub(r"<[^>]+>", "", path.read_text())
    return re.sub(r"\s+", " ", html.unescape(text))


def _roster() -> dict[str, list[str]]:
    if os.environ.get("SKINLAB_FULL_CLASS"):
        return {aid: list(sim.STUDENTS) for aid in EXERCISES}
    basic = ["solution", "untouched", "mistake", "uses_reference"]
    roster = {aid: list(basic) for aid in EXERCISES}
    roster["ex2_class_weights"] += ["infinite_loop", "raises", "edits_test", "deletes_test"]
    roster["ex5_gradcam"] += ["raises"]  # its answer cell fails at import: nothing is defined
    return roster


def test_simulated_class_gets_the_grades_it_deserves(course, tmp_path):
    roster = _roster()
    submissions = tmp_path / "class"
    for aid, students in roster.items():
        sim.write_class(course / "exercises", submissions, assignments=[aid], students=students)
    n = sum(len(s) for s in roster.values())

    start = time.perf_counter()
    out = grading.grade(submissions, course, tmp_path / "grades")
    elapsed = time.perf_counter() - start
    print(f"\ngraded {n} notebooks in {elapsed:.0f} s ({elapsed / n:.1f} s per notebook)")

    # Per test cell, every submission gets exactly the points it deserves.
    with open(out["scores_by_test"]) as f:
        got = {(r["student_id"], r["assignment"], r["grade_id"]): float(r["score"]) for r in csv.DictReader(f)}
    expected = {
        (student, aid, gid): float(points)
        for aid, students in roster.items()
        for student in students
        for gid, points in sim.expected_points(aid, student).items()
    }
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, f"(got, expected) per (student, assignment, test): {wrong}"

    # Grades CSV: one row per submission, totals and the tampering flag.
    with open(out["grades"]) as f:
        rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    for aid, students in roster.items():
        for student in students:
            row = rows[student, aid]
            assert float(row["score"]) == sum(sim.expected_points(aid, student).values())
            assert float(row["max_score"]) == 10
            problem = sim.EXPECTED_TAMPERING.get(student)
            assert (problem in row["tampered"]) if problem else row["tampered"] == "", (student, aid, row)
    assert float(rows["solution", "ex1_split"]["score"]) == 10
    assert all(float(rows["untouched", aid]["score"]) == 0 for aid in roster)
    assert all(float(rows["uses_reference", aid]["score"]) == 0 for aid in roster)

    with open(out["tampered"]) as f:
        tampered = {(r["student_id"], r["assignment"], r["grade_id"], r["problem"]) for r in csv.DictReader(f)}
    assert tampered == {
        (student, aid, sim.TAMPERED_CELL[aid], sim.EXPECTED_TAMPERING[student])
        for aid, students in roster.items() for student in students if student in sim.EXPECTED_TAMPERING
    }

    # Feedback for everyone, explaining mistakes, without hidden tests.
    for aid, students in roster.items():
        hidden = _hidden_lines(aid)
        assert hidden
        for student in students:
            page = course / "feedback" / student / aid / f"{aid}.html"
            text = _html_text(page)
            assert "check_" in text  # the visible tests are shown (so the search below can hit)
            leaked = [line for line in hidden if line in text]
            assert not leaked, (student, aid, leaked)
    mistake_page = _html_text(course / "feedback" / "mistake" / "ex3_lenet" / "ex3_lenet.html")
    assert "no ReLU after the second convolution" in mistake_page
    reference_page = _html_text(course / "feedback" / "uses_reference" / "ex1_split" / "ex1_split.html")
    assert "not available while grading" in reference_page  # the verifier's verdict: no skinlab in the worker


def test_a_broken_submission_does_not_stop_the_batch(tmp_path):
    """Broken JSON next to a good notebook: the good one is graded, the broken one reported."""
    course = tmp_path / "course"
    (course / "solutions" / "ex2_class_weights").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copy(ROOT / "solutions" / "ex2_class_weights" / "ex2_class_weights.ipynb", course / "solutions" / "ex2_class_weights")
    grading.release(course, ["ex2_class_weights"])
    submissions = sim.write_class(course / "exercises", tmp_path / "class", ["ex2_class_weights"], ["mistake"])
    broken = submissions / "broken" / "ex2_class_weights" / "ex2_class_weights.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [')

    out = grading.grade(submissions, course, tmp_path / "grades", jobs=1)  # the serial path

    with open(out["grades"]) as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(rows["mistake"]["score"]) == sum(sim.expected_points("ex2_class_weights", "mistake").values())
    assert "unreadable" in rows["broken"]["tampered"]
    assert "broken" in out["errors"].read_text()
