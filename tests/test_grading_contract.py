"""The grading contract (issue #20): points only for values the verifier recomputes.

What a check takes on the word of the process that ran the student's code is declared on the
check (``self_report``), worth a small share of its exercise, listed in docs/GRADING.md and said
on the feedback of its cell. The attacks that show each defence live with the exercises' tests
(tests/test_grading_ex3.py, _ex4.py, ...) and in the adversarial class.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

import skinlab.grading  # noqa: F401 - registers every check
from skinlab.course.exercises import exercise_ids
from skinlab.grading import feedback, testcells, verifier
from skinlab.grading.checking import CHECKS

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "GRADING.md").read_text()
MAX_SHARE = 0.2  # of an exercise's points


def _source(aid: str) -> dict:
    return json.loads((ROOT / "solutions" / aid / f"{aid}.ipynb").read_text())


def _contract_table() -> str:
    start = DOC.index("### The contract: points from values the verifier recomputes")
    return DOC[start:DOC.index("## Threat model", start)]


def test_every_self_reporting_check_is_in_the_documented_table_and_no_other():
    table = _contract_table()
    documented = set(re.findall(r"\(`(check_\w+)`\)", table))
    declared = {name for name, spec in CHECKS.items() if spec.self_report}
    assert declared == documented
    assert declared, "the table documents at least the hooks cell of exercise 5"
    for name in declared:  # a short phrase: the feedback quotes it
        assert 10 <= len(CHECKS[name].self_report.strip()) <= 160, name


@pytest.mark.parametrize("aid", exercise_ids(ROOT))
def test_self_reported_points_are_a_small_stated_share(aid):
    tests = testcells.test_cells(_source(aid))
    total = sum(t.points for t in tests)
    resting = {t.grade_id: t.points for t in tests if verifier.self_reports(t)}
    assert sum(resting.values()) <= MAX_SHARE * total, resting
    table = _contract_table()
    for gid, points in resting.items():
        row = next((line for line in table.splitlines() if f"`{gid}`" in line), "")
        assert f"| {points:g} of {total:g} |" in row, (gid, row)


def test_the_feedback_says_which_passed_cells_rest_on_the_student_s_report():
    hooks = next(t for t in testcells.test_cells(_source("ex5_gradcam")) if t.grade_id == "test_cam_hooks_removed")
    told = verifier.self_reports(hooks)
    assert told == CHECKS["check_cam_hooks_removed"].self_report
    text = feedback._verdict_output({"message": "", "self_report": told})["text"]
    assert "reported about itself, which the grader cannot recompute: " + told in text
    plain = feedback._verdict_output({"message": "", "self_report": ""})["text"]
    assert plain == "passed (verified outside your notebook)\n"
    failed = feedback._verdict_output({"message": "no", "self_report": told})
    assert failed["output_type"] == "error" and failed["evalue"] == "no"


def test_verdicts_carry_the_self_report_of_their_cell():
    fields = verifier.CellVerdict("g", 1.0, 1.0, "").__dict__
    assert fields["self_report"] == ""


# ---------------------------------------------------------------------------- one folder per exercise


@pytest.mark.parametrize("aid", exercise_ids(ROOT))
def test_each_exercise_is_one_folder_of_the_grading_package(aid):
    """Its Exercise, judges and probes; the probes import nothing the worker lacks."""
    import ast

    from skinlab.grading.exercise import exercises

    folder = ROOT / "skinlab" / "grading" / aid
    assert {p.name for p in folder.glob("*.py")} == {"__init__.py", "judges.py", "probes.py"}
    declared = exercises()[aid]
    checks = [c for c in CHECKS.values() if c.judge.__module__ == f"skinlab.grading.{aid}.judges"]
    assert checks and {a for c in checks for a in c.answers} <= set(declared.answers)
    allowed = {"numpy", "pandas", "torch", *sys.stdlib_module_names}  # what the worker has
    tree = ast.parse((folder / "probes.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert (node.level == 0 and node.module.split(".")[0] in allowed) \
                or (node.level == 2 and node.module == "probe_base"), ast.dump(node)
        elif isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] in allowed for a in node.names), ast.dump(node)


def test_the_worker_refuses_what_the_exercises_declare():
    from skinlab.grading.exercise import blocked_packages

    assert blocked_packages() == ("pytorch_grad_cam", "skinlab")
