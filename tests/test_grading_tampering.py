"""Tampered nbgrader metadata is flagged (issue #20, item 5), without nbgrader.

A submission is built from the release notebook with one tampering each; the detection function
(``find_tampering``, against the source notebook) and the collect step (``_submit``, which writes
the rows of tampered.csv) must name the cell and the reason. The scores were already right (the
verifier reads the source notebook); only the report was silent.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from skinlab.grading import collect, report
from skinlab.grading.collect import _Batch, find_tampering

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import adversarial_class as adv  # noqa: E402  (the tampering edits the adversarial class makes)
AID = "ex4_training"
RELEASE = ROOT / "exercises" / AID / f"{AID}.ipynb"
SOURCE = ROOT / "solutions" / AID / f"{AID}.ipynb"


def _release():
    return nbformat.read(str(RELEASE), as_version=4)


_cell = adv.cell_of
_extra_graded_cell = adv.extra_graded_cell


def _answer_locked_and_graded(nb):
    adv.answer_locked_and_graded(nb, "evaluate")


def _test_as_answer(nb):
    adv.mark_test_cell_as_answer(nb, "test_evaluate_mode")


def _test_points(nb):
    _cell(nb, "test_train_mode").metadata["nbgrader"]["points"] = 100


TAMPERINGS = {
    "extra_graded": (_extra_graded_cell, ("free_points", "extra graded cell: its grade_id is not in the source (points 50)")),
    "answer_locked": (_answer_locked_and_graded, ("evaluate", "answer cell re-marked as locked/grade/points")),
    "test_as_answer": (_test_as_answer, ("test_evaluate_mode", "test cell re-marked as an answer (solution: true)")),
    "test_points": (_test_points, ("test_train_mode", "metadata changed")),
}


def _write(tmp_path, nb, name="sub.ipynb"):
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def test_untouched_release_gives_no_row(tmp_path):
    assert find_tampering(RELEASE, _write(tmp_path, _release()), SOURCE) == []
    assert find_tampering(RELEASE, _write(tmp_path, _release()), None) == []


def test_answered_notebook_gives_no_row(tmp_path):
    nb = _release()  # an honest answer: the cell's source changes, its metadata does not
    _cell(nb, "evaluate").source = "def evaluate(model, loader, loss_fn):\n    return 0.0, 0.0\n"
    # a student's own scratch cells carry no nbgrader metadata
    nb.cells.append(nbformat.v4.new_code_cell("print('hi')"))
    assert find_tampering(RELEASE, _write(tmp_path, nb), SOURCE) == []


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_each_tampering_is_flagged_with_its_reason(tmp_path, name):
    tamper, expected = TAMPERINGS[name]
    nb = _release()
    tamper(nb)
    assert find_tampering(RELEASE, _write(tmp_path, nb), SOURCE) == [expected]


def test_all_tamperings_at_once_one_row_each(tmp_path):
    nb = _release()
    for tamper, _ in TAMPERINGS.values():
        tamper(nb)
    found = find_tampering(RELEASE, _write(tmp_path, nb), SOURCE)
    assert sorted(found) == sorted(expected for _, expected in TAMPERINGS.values())


def test_answer_cell_given_points_only(tmp_path):
    nb = _release()
    _cell(nb, "train_one_epoch").metadata["nbgrader"]["points"] = 3
    assert find_tampering(RELEASE, _write(tmp_path, nb), SOURCE) == [
        ("train_one_epoch", "answer cell re-marked as points")]


def test_extra_cell_with_points_but_no_grade_flag(tmp_path):
    nb = _release()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["nbgrader"] = {"grade_id": "sneaky", "points": 7}
    nb.cells.append(cell)
    assert find_tampering(RELEASE, _write(tmp_path, nb), SOURCE) == [
        ("sneaky", "extra graded cell: its grade_id is not in the source (points 7)")]


def test_metadata_compared_with_the_source_not_the_release(tmp_path):
    """A release whose metadata was altered (here: a test cell's points) must not hide the change:
    the source notebook is what the verifier grades from."""
    release = _release()
    _cell(release, "test_train_mode").metadata["nbgrader"]["points"] = 100
    release_path = _write(tmp_path, release, "release.ipynb")
    sub = _write(tmp_path, release, "sub.ipynb")  # the student copies that altered release
    assert find_tampering(release_path, sub, SOURCE) == [("test_train_mode", "metadata changed")]
    assert find_tampering(release_path, sub, None) == []  # the release alone cannot see it


def _course(tmp_path):
    course = tmp_path / "course"
    (course / "exercises" / AID).mkdir(parents=True)
    (course / "solutions" / AID).mkdir(parents=True)
    shutil.copy(RELEASE, course / "exercises" / AID / f"{AID}.ipynb")
    shutil.copy(SOURCE, course / "solutions" / AID / f"{AID}.ipynb")
    return course


def _submission(tmp_path, student, tamper=None):
    nb = _release()
    if tamper:
        tamper(nb)
    folder = tmp_path / "SUBMISSIONS" / student / AID
    folder.mkdir(parents=True)
    nbformat.write(nb, str(folder / f"{AID}.ipynb"))
    return folder


def test_collect_writes_the_rows_of_tampered_csv(tmp_path):
    """The collect step (``_submit``) records each tampering; the report keeps them in
    tampered.csv's history and the grades.csv ``tampered`` column."""
    course = _course(tmp_path)
    batch = _Batch()
    collect._submit(course, _submission(tmp_path, "honest"), "honest", AID, batch)
    for name, (tamper, _) in TAMPERINGS.items():
        collect._submit(course, _submission(tmp_path, name, tamper), name, AID, batch)
    rows = {(r["student_id"], r["grade_id"], r["problem"]) for r in batch.tampered}
    assert rows == {(name, *expected) for name, (_, expected) in TAMPERINGS.items()}
    assert all(r["assignment"] == AID for r in batch.tampered)
    kept = report._class_tampering(course, batch)
    assert {(r["student_id"], r["grade_id"], r["problem"]) for r in kept} == rows
    assert "honest" not in {r["student_id"] for r in kept}


def test_report_shows_tampering_to_the_instructor(tmp_path, monkeypatch, capsys):
    """tampered.csv, the grades.csv ``tampered`` column and a warning on stderr."""
    course = _course(tmp_path)
    batch = _Batch()
    collect._submit(course, _submission(tmp_path, "honest"), "honest", AID, batch)
    collect._submit(course, _submission(tmp_path, "cheat", _test_as_answer), "cheat", AID, batch)

    def export(course_, path):  # nbgrader's export, without a gradebook
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, ["assignment", "student_id", "score", "max_score"])
            w.writeheader()
            for student in ("cheat", "honest"):
                w.writerow(dict(assignment=AID, student_id=student, score=10, max_score=10))

    monkeypatch.setattr(report, "_export_grades", export)
    monkeypatch.setattr(report, "_cell_scores", lambda course_: [])
    out = tmp_path / "out"
    out.mkdir()
    paths, _ = report._report(course, out, batch, [])
    with open(paths["tampered"]) as f:
        assert [(r["student_id"], r["grade_id"], r["problem"]) for r in csv.DictReader(f)] == [
            ("cheat", "test_evaluate_mode", "test cell re-marked as an answer (solution: true)")]
    with open(paths["grades"]) as f:
        tampered = {r["student_id"]: r["tampered"] for r in csv.DictReader(f)}
    assert tampered == {"cheat": "test_evaluate_mode test cell re-marked as an answer (solution: true)", "honest": ""}
    err = capsys.readouterr().err
    assert "1 notebook(s) of this batch" in err and "tampered.csv" in err


def test_report_is_quiet_for_an_honest_batch(tmp_path, monkeypatch, capsys):
    course = _course(tmp_path)
    batch = _Batch()
    collect._submit(course, _submission(tmp_path, "honest"), "honest", AID, batch)
    monkeypatch.setattr(report, "_export_grades", lambda c, p: p.write_text("assignment,student_id,score,max_score\n"
                                                                           f"{AID},honest,10,10\n"))
    monkeypatch.setattr(report, "_cell_scores", lambda course_: [])
    out = tmp_path / "out"
    out.mkdir()
    report._report(course, out, batch, [])
    assert "tampered.csv" not in capsys.readouterr().err
