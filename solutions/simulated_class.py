"""A simulated class: submissions that an honest autograder must grade right.

For each assignment: the solution, the untouched release, an infinite loop, an answer that
raises, a plausible partial mistake, the same mistake with the failing test cell edited or
deleted, and an answer that calls the reference implementation. ``expected_points`` gives the
points each must get per test cell (``POINTS``: the exercise sources' cell headers). Used by
``tests/test_exercises.py``; instructors can try the grader on it:

    python solutions/simulated_class.py /tmp/class          # writes /tmp/class/<student>/<id>/<id>.ipynb
    python -m skinlab.grading grade /tmp/class
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import nbformat

from skinlab.course.exercises import exercise_ids, test_points

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import bank  # noqa: E402

ASSIGNMENT_IDS = exercise_ids(ROOT)


# ---------------------------------------------------------------------------- answers
# Each exercise's answers are in its bank, solutions/<id>/answers.py (bank.py).
with_default_fractions = bank.with_default_fractions


MISTAKES = {aid: bank.answers(aid).MISTAKE for aid in ASSIGNMENT_IDS}

# The test cell that the mistake fails, which the "edits"/"deletes" students tamper with.
TAMPERED_CELL = {aid: bank.answers(aid).TAMPERED_CELL for aid in ASSIGNMENT_IDS}

# Three routes to the reference: an alias wrapped in a function, a module alias, a subclass,
# importlib with a computed name (only the runtime guard can see it), the library itself.
USES_REFERENCE = {aid: bank.answers(aid).USES_REFERENCE for aid in ASSIGNMENT_IDS}

INFINITE_LOOP = {aid: bank.answers(aid).INFINITE_LOOP for aid in ASSIGNMENT_IDS}

RAISES = {aid: bank.answers(aid).RAISES for aid in ASSIGNMENT_IDS}

# ---------------------------------------------------------------------------- expected points

# {test grade_id: points} per exercise, read from the exercise's source cell headers.
POINTS = {aid: test_points(aid, ROOT) for aid in ASSIGNMENT_IDS}

# Test cells each submission fails (all others pass).
_MISTAKE_FAILS = {aid: bank.answers(aid).MISTAKE_FAILS for aid in ASSIGNMENT_IDS}
_EVALUATE_CELLS = {"test_evaluate_matches", "test_evaluate_mode", "test_evaluate_changes_nothing"}


def _fails(aid: str, student: str) -> set[str]:
    every = set(POINTS[aid])
    if student == "solution":
        return set()
    if student in ("mistake", "edits_test", "deletes_test"):
        return _MISTAKE_FAILS[aid]
    if aid == "ex4_training" and student in ("infinite_loop", "raises"):
        return every - _EVALUATE_CELLS  # evaluate is their own, correct
    return every  # untouched release, raises, infinite loop, uses_reference


STUDENTS = ("solution", "untouched", "infinite_loop", "raises", "mistake", "edits_test", "deletes_test",
            "uses_reference")


def expected_points(aid: str, student: str) -> dict[str, int]:
    """{test grade_id: points} that ``student`` deserves on ``aid``."""
    fails = _fails(aid, student)
    return {gid: (0 if gid in fails else pts) for gid, pts in POINTS[aid].items()}


EXPECTED_TAMPERING = {"edits_test": "edited", "deletes_test": "deleted"}

# ---------------------------------------------------------------------------- notebooks


def solution_answers(aid: str) -> dict[str, str]:
    """The solution's answer cells, markers removed: {grade_id: source}."""
    nb = nbformat.read(str(ROOT / "solutions" / aid / f"{aid}.ipynb"), as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            out[meta["grade_id"]] = re.sub(r"\n? *### (BEGIN|END) SOLUTION", "", cell.source)
    return out


def answer_sources(aid: str, student: str) -> dict[str, str]:
    """{answer grade_id: source} of ``student`` (not "untouched") on ``aid``."""
    answers = solution_answers(aid)
    chosen = {
        "solution": {},
        "infinite_loop": INFINITE_LOOP[aid],
        "raises": RAISES[aid],
        "mistake": MISTAKES[aid],
        "edits_test": MISTAKES[aid],
        "deletes_test": MISTAKES[aid],
        "uses_reference": USES_REFERENCE[aid],
    }[student]
    answers.update({k: v.strip("\n") for k, v in chosen.items() if v is not None})
    return answers


def submission(release_nb: Path, aid: str, student: str) -> nbformat.NotebookNode:
    """The notebook ``student`` hands in for ``aid``, built from the release notebook."""
    nb = nbformat.read(str(release_nb), as_version=4)
    if student == "untouched":
        return nb
    answers = answer_sources(aid, student)
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if meta.get("solution") and gid in answers:
            cell = copy.deepcopy(cell)
            cell.source = answers[gid]
        elif gid == TAMPERED_CELL[aid] and student == "deletes_test":
            continue
        elif gid == TAMPERED_CELL[aid] and student == "edits_test":
            cell = copy.deepcopy(cell)
            cell.source = "# this test is wrong, my answer is fine\nassert True"
        cells.append(cell)
    nb.cells = cells
    return nb


def write_class(release_dir: Path, out: Path, assignments=tuple(POINTS), students=STUDENTS) -> Path:
    """Write ``out/<student>/<id>/<id>.ipynb`` for every student and assignment."""
    for aid in assignments:
        for student in students:
            nb = submission(Path(release_dir) / aid / f"{aid}.ipynb", aid, student)
            target = Path(out) / student / aid / f"{aid}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(target))
    return Path(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python solutions/simulated_class.py OUT_DIR")
    print(write_class(ROOT / "exercises", Path(sys.argv[1])))
