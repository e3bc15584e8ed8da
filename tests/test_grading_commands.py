"""``python -m skinlab.grading grade``: what happens to honest students' notebooks and what the
reports say, through real nbgrader 0.9.6 on a temporary course that starts as a fresh clone
(nbgrader_config.py, solutions/ and exercises/ only: no gradebook.db).

* a duplicated answer or test cell is de-duplicated and graded (10/10), and flagged;
* a course without a gradebook gets its assignments created (the committed release untouched);
  nothing graded means a non-zero exit;
* grades.csv's ``status`` says graded / not submitted / ungradable: why, for every pair;
* a second batch keeps the first batch's tampering flags;
* notebooks filed under a wrong name or folder are listed in skipped.csv.

The unit tests at the top need no nbgrader; the rest are marked ``grading`` (each nbgrader call
costs ~3 s, each notebook ~6 s).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from skinlab.course.exercises import exercise_ids
from skinlab.grading import commands

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = exercise_ids(ROOT)
sys.path.insert(0, str(ROOT / "solutions"))
import simulated_class as sim  # noqa: E402

AID = "ex2_class_weights"
RELEASE = ROOT / "exercises" / AID / f"{AID}.ipynb"
ANSWER = "median_frequency_weights"
TEST_CELL = "test_weights_example"
DEDUP = "duplicated (de-duplicated)"


def _gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _duplicate(nb, grade_id, first_source=None):
    """``nb`` with the cell ``grade_id`` copied right after itself (as Jupyter's copy/paste does:
    same metadata, a new cell id); ``first_source`` replaces the source of the first copy."""
    nb = copy.deepcopy(nb)
    i = next(i for i, c in enumerate(nb.cells) if _gid(c) == grade_id)
    twin = copy.deepcopy(nb.cells[i])
    twin["id"] = nb.cells[i]["id"] + "-copy"
    if first_source is not None:
        nb.cells[i].source = first_source
    nb.cells.insert(i + 1, twin)
    return nb


def _solution():
    return sim.submission(RELEASE, AID, "solution")


def _write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _fresh_course(root: Path, solutions: bool = True) -> Path:
    """A course as a fresh clone has it: config, sources and release, no gradebook.db."""
    root.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    if solutions:
        (root / "solutions" / AID).mkdir(parents=True)
        shutil.copy(ROOT / "solutions" / AID / f"{AID}.ipynb", root / "solutions" / AID)
    (root / "exercises" / AID).mkdir(parents=True)
    shutil.copy(RELEASE, root / "exercises" / AID)
    return root


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------- without nbgrader


def test_deduplicate_keeps_the_last_answer_and_the_first_test_cell():
    release = nbformat.read(str(RELEASE), as_version=4)
    nb = _duplicate(_duplicate(_solution(), TEST_CELL), ANSWER, first_source="wrong = 1")
    n = len(nb.cells)

    fixes = commands._deduplicate(nb, release)

    assert sorted(fixes) == sorted([(TEST_CELL, DEDUP), (ANSWER, DEDUP)])
    assert len(nb.cells) == n - 1  # the test cell's second copy is gone, both answers stay
    gids = [_gid(c) for c in nb.cells if _gid(c)]
    assert len(gids) == len(set(gids)) == len([c for c in release.cells if _gid(c)])
    sources = [c.source for c in nb.cells]
    first = sources.index("wrong = 1")
    assert "nbgrader" not in nb.cells[first].metadata  # an ordinary cell, still run
    assert _gid(nb.cells[first + 1]) == ANSWER and "def median_frequency_weights" in nb.cells[first + 1].source
    assert commands._deduplicate(_solution(), release) == []


def test_nbgrader_failures_names_the_student_and_the_exception():
    log = "\n".join([
        "[AutogradeApp | ERROR] There was an error processing assignment: /c/submitted/ann/ex2_class_weights",
        "[AutogradeApp | ERROR] Traceback (most recent call last):",
        '      File "overwritecells.py", line 159, in <listcomp>',
        "    KeyError: 'grade_id'",
        "    ",
        "[AutogradeApp | WARNING] Attribute 'checksum' for cell test_weights_more has changed!",
        "[AutogradeApp | ERROR] There was an error processing assignment 'ex2_class_weights' for student 'ann'",
        "[AutogradeApp | ERROR] There was an error processing assignment 'ex3_lenet' for student 'bob'",
    ])
    assert commands._nbgrader_failures(log) == {
        ("ann", AID): "nbgrader error: KeyError: 'grade_id'",
        ("bob", "ex3_lenet"): "nbgrader could not grade it",
    }


@pytest.mark.parametrize("names, aid", [
    (["ex2_class_weights (1)"], AID), (["Exercise 3"], "ex3_lenet"), (["notes", "ex5"], "ex5_gradcam"),
    (["week2", "mine"], None), (["index"], None),
])
def test_guess_from_name(names, aid):
    assert commands._guess_from_name(names, exercise_ids(ROOT)) == aid


# ---------------------------------------------------------------------------- real nbgrader


@pytest.fixture(scope="module")
def first_batch(tmp_path_factory):
    """One batch on a fresh course: duplicated cells, a broken notebook, three misfiled ones."""
    pytest.importorskip("nbgrader", reason="the grading extra (nbgrader) is not installed")
    root = tmp_path_factory.mktemp("batches")
    course = _fresh_course(root / "course")
    sub = root / "batch1"
    _write(_duplicate(_solution(), TEST_CELL), sub / "dup_test" / AID / f"{AID}.ipynb")
    wrong = sim.answer_sources(AID, "mistake")[ANSWER]  # the first copy is wrong, the last one right
    _write(_duplicate(_solution(), ANSWER, first_source=wrong), sub / "dup_answer" / AID / f"{AID}.ipynb")
    broken = sub / "broken" / AID / f"{AID}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [')
    _write(_solution(), sub / "misfiled" / AID / f"{AID} (1).ipynb")
    _write(_solution(), sub / "loose" / f"{AID}.ipynb")
    _write(_solution(), sub / "odd" / "week2" / "mine.ipynb")
    _write(_solution(), sub / "odd" / ".ipynb_checkpoints" / "mine-checkpoint.ipynb")  # not listed

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        out = commands.grade(sub, course, root / "out1", jobs=1)
    submitted = {s: nbformat.read(str(course / "submitted" / s / AID / f"{AID}.ipynb"), as_version=4)
                 for s in ("dup_test", "dup_answer")}
    return dict(course=course, root=root, sub=sub, out=out, stderr=stderr.getvalue(), submitted=submitted)


@pytest.mark.grading
@pytest.mark.slow
def test_duplicated_cells_are_graded_and_flagged(first_batch):
    rows = {r["student_id"]: r for r in _rows(first_batch["out"]["grades"])}
    for student, gid in (("dup_test", TEST_CELL), ("dup_answer", ANSWER)):
        assert float(rows[student]["score"]) == 10, rows[student]
        assert rows[student]["tampered"] == f"{gid} {DEDUP}"
        gids = [_gid(c) for c in first_batch["submitted"][student].cells if _gid(c)]
        assert len(gids) == len(set(gids)), gids  # what nbgrader saw
    scores = [r for r in _rows(first_batch["out"]["scores_by_test"]) if r["student_id"] == "dup_answer"]
    assert scores and all(float(r["score"]) == float(r["max_score"]) for r in scores)
    assert {(r["student_id"], r["grade_id"], r["problem"]) for r in _rows(first_batch["out"]["tampered"])
            if r["problem"] == DEDUP} == {("dup_test", TEST_CELL, DEDUP), ("dup_answer", ANSWER, DEDUP)}
    # The student's own file is left as it was.
    original = nbformat.read(str(first_batch["sub"] / "dup_test" / AID / f"{AID}.ipynb"), as_version=4)
    assert [_gid(c) for c in original.cells].count(TEST_CELL) == 2


@pytest.mark.grading
@pytest.mark.slow
def test_a_fresh_course_gets_its_assignment_created(first_batch):
    course = first_batch["course"]
    assert (course / "gradebook.db").is_file()
    assert sorted(r["student_id"] for r in _rows(first_batch["out"]["grades"]) if r["status"] == "graded") == \
        ["dup_answer", "dup_test"]
    assert (course / "exercises" / AID / f"{AID}.ipynb").read_bytes() == RELEASE.read_bytes()
    assert "creating it from solutions/" in first_batch["stderr"]


@pytest.mark.grading
@pytest.mark.slow
def test_status_tells_graded_ungradable_and_not_submitted_apart(first_batch):
    rows = {(r["student_id"], r["assignment"]): r for r in _rows(first_batch["out"]["grades"])}
    students = {"dup_test", "dup_answer", "broken", "misfiled", "loose", "odd"}
    assert set(rows) == {(s, AID) for s in students}  # every pair of the class
    status = {s: rows[s, AID]["status"] for s in students}
    assert status["dup_test"] == status["dup_answer"] == "graded"
    assert status["broken"].startswith("ungradable: unreadable notebook: Notebook does not appear to be JSON")
    assert "\n" not in status["broken"]
    assert status["misfiled"] == f"not submitted (skipped misfiled/{AID}/{AID} (1).ipynb: see skipped.csv)"
    assert status["odd"].startswith("not submitted")
    assert float(rows["broken", AID]["score"]) == float(rows["misfiled", AID]["score"]) == 0
    assert "1 of 3 notebooks could not be graded" in first_batch["stderr"]


@pytest.mark.grading
@pytest.mark.slow
def test_misfiled_notebooks_are_listed_in_skipped_csv(first_batch):
    skipped = {r["path"]: r for r in _rows(first_batch["out"]["skipped"])}
    assert set(skipped) == {f"misfiled/{AID}/{AID} (1).ipynb", f"loose/{AID}.ipynb", "odd/week2/mine.ipynb"}
    assert skipped[f"misfiled/{AID}/{AID} (1).ipynb"]["reason"] == f"named '{AID} (1).ipynb', not {AID}.ipynb"
    assert skipped[f"loose/{AID}.ipynb"]["reason"] == "not in an exercise folder"
    assert skipped["odd/week2/mine.ipynb"]["reason"] == "unknown exercise folder 'week2'"
    assert all(r["guess"] == AID for r in skipped.values())
    assert skipped["odd/week2/mine.ipynb"]["guessed_from"] == "cells"
    assert {r["student_id"] for r in skipped.values()} == {"misfiled", "loose", "odd"}
    warnings = [line for line in first_batch["stderr"].splitlines() if "skipped 3 notebook" in line]
    assert len(warnings) == 1 and "skipped.csv" in warnings[0]


@pytest.mark.grading
@pytest.mark.slow
def test_a_second_batch_keeps_the_first_batchs_flags(first_batch):
    """Batch 2 resubmits dup_test (clean): its flag goes, dup_answer's stays, broken stays broken."""
    course, root = first_batch["course"], first_batch["root"]
    _write(_solution(), root / "batch2" / "dup_test" / AID / f"{AID}.ipynb")
    with contextlib.redirect_stderr(io.StringIO()):
        out = commands.grade(root / "batch2", course, root / "out2", jobs=1)

    rows = {r["student_id"]: r for r in _rows(out["grades"])}
    assert rows["dup_test"]["tampered"] == "" and float(rows["dup_test"]["score"]) == 10
    assert rows["dup_answer"]["tampered"] == f"{ANSWER} {DEDUP}" and float(rows["dup_answer"]["score"]) == 10
    assert rows["broken"]["tampered"].startswith("(notebook) unreadable")
    assert rows["broken"]["status"].startswith("ungradable: unreadable notebook")
    assert rows["misfiled"]["status"] == "not submitted"
    tampered = {(r["student_id"], r["grade_id"]) for r in _rows(out["tampered"])}
    assert tampered == {("dup_answer", ANSWER), ("broken", "(notebook)")}
    assert _rows(out["skipped"]) == []


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    """The command as run from a fresh clone with the venv not activated (its bin/ not on PATH)."""
    env = dict(os.environ, PATH="/usr/bin:/bin")
    return subprocess.run([sys.executable, "-m", "skinlab.grading", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.grading
@pytest.mark.slow
def test_cli_grades_a_fresh_course_dir(tmp_path):
    pytest.importorskip("nbgrader")
    course = _fresh_course(tmp_path / "course")
    _write(_solution(), tmp_path / "class" / "ann" / AID / f"{AID}.ipynb")

    proc = _cli("--course-dir", str(course), "grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"),
                cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    [row] = _rows(tmp_path / "out" / "grades.csv")
    assert (row["student_id"], row["score"], row["status"], row["tampered"]) == ("ann", "10.0", "graded", "")


@pytest.mark.grading
@pytest.mark.slow
def test_cli_exits_nonzero_when_nothing_was_graded(tmp_path):
    pytest.importorskip("nbgrader")
    course = _fresh_course(tmp_path / "course")
    broken = tmp_path / "class" / "ann" / AID / f"{AID}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [')

    proc = _cli("--course-dir", str(course), "grade", str(tmp_path / "class"), cwd=tmp_path)

    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: none of the 1 submitted notebooks could be graded: "
                      f"see the status column of {course / 'grades' / 'grades.csv'}"], proc.stderr
    [row] = _rows(course / "grades" / "grades.csv")
    assert row["status"].startswith("ungradable: unreadable notebook")


@pytest.mark.grading
@pytest.mark.slow
def test_cli_names_the_fix_when_the_assignment_cannot_be_created(tmp_path):
    pytest.importorskip("nbgrader")
    course = _fresh_course(tmp_path / "course", solutions=False)
    _write(_solution(), tmp_path / "class" / "ann" / AID / f"{AID}.ipynb")

    proc = _cli("--course-dir", str(course), "grade", str(tmp_path / "class"), cwd=tmp_path)

    assert proc.returncode == 1
    [error] = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert f"the gradebook has no assignment {AID}" in error and f"copy solutions/{AID}/ into" in error, proc.stderr
    assert not (course / "autograded").exists()


# ---------------------------------------------------------------------------- no sandbox here


def test_grade_refuses_in_one_line_where_it_cannot_sandbox(tmp_path, monkeypatch):
    from skinlab.grading import sandbox

    monkeypatch.setattr(sandbox, "unavailable_reason", lambda: "bwrap is not installed (test)")
    course = _fresh_course(tmp_path / "course")
    _write(_solution(), tmp_path / "sub" / "alice" / AID / f"{AID}.ipynb")
    proc_err = io.StringIO()
    with contextlib.redirect_stderr(proc_err), pytest.raises(commands.SandboxUnavailableError) as info:
        commands.grade(tmp_path / "sub", course, tmp_path / "out", jobs=1)
    message = str(info.value)
    assert "\n" not in message and "bwrap is not installed (test)" in message and "--unsandboxed" in message
    assert not (course / "submitted").exists(), "nothing is graded (or copied) when it refuses"
    assert commands.main(["--course-dir", str(course), "grade", str(tmp_path / "sub")]) == 1


@pytest.mark.grading
@pytest.mark.slow
def test_grading_unsandboxed_says_so_in_every_output(tmp_path, monkeypatch):
    from skinlab.grading import sandbox

    monkeypatch.setattr(sandbox, "unavailable_reason", lambda: "bwrap is not installed (test)")
    course = _fresh_course(tmp_path / "course")
    _write(_solution(), tmp_path / "sub" / "alice" / AID / f"{AID}.ipynb")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        out = commands.grade(tmp_path / "sub", course, tmp_path / "out", jobs=1, unsandboxed=True)
    assert "WITHOUT a sandbox" in stderr.getvalue()
    row = next(r for r in _rows(out["grades"]) if r["student_id"] == "alice")
    assert row["graded_by"] == "verifier (UNSANDBOXED)" and float(row["score"]) == 10.0
    assert json.loads(out["grading"].read_text())["sandboxed"] is False
    page = (course / "feedback" / "alice" / AID / f"{AID}.html").read_text()
    assert "without a sandbox" in page
