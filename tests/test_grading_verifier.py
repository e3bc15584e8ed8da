"""The verifier grades every simulated submission right, from a process that never runs student code.

Each submission of ``solutions/simulated_class.py`` is verified as the grade command does it:
the test cells are read from the source notebook, the student's notebook code runs in a worker
process, and the judges compare what comes back with the reference. Here the worker runs
unsandboxed (the sandbox has its own tests, and the grade command's end-to-end test runs both).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

from skinlab.grading import testcells, verifier
from skinlab.grading.checking import CHECKS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import simulated_class as sim  # noqa: E402


def source(aid):
    return json.loads((ROOT / "solutions" / aid / f"{aid}.ipynb").read_text())


def submitted(aid, student):
    nb = sim.submission(ROOT / "exercises" / aid / f"{aid}.ipynb", aid, student)
    return json.loads(nbformat.writes(nb))


def points(aid, nb, seed=0, time_limit=2.0):
    verdicts = verifier.verify(aid, source(aid), nb, seed=seed, sandboxed=False, time_limit=time_limit)
    return {v.grade_id: v.points for v in verdicts}, {v.grade_id: v.message for v in verdicts}


@pytest.mark.parametrize("aid", sim.ASSIGNMENT_IDS)
def test_every_test_cell_parses_into_registered_checks(aid):
    cells = testcells.test_cells(source(aid))
    assert [c.grade_id for c in cells] == list(sim.POINTS[aid])
    for cell in cells:
        assert cell.calls, f"{cell.grade_id} calls no check"
        assert all(c.check in CHECKS for c in cell.calls)
        # every hidden call either draws fresh inputs at grading time or takes none
        for call in cell.calls:
            if call.hidden:
                spec = CHECKS[call.check]
                assert spec.fresh is not None or not spec.params(), f"{call.check} has no fresh inputs"


@pytest.mark.parametrize("aid", sim.ASSIGNMENT_IDS)
@pytest.mark.parametrize("student", ["solution", "untouched", "mistake", "uses_reference", "raises", "infinite_loop"])
def test_simulated_submission_gets_the_points_it_deserves(aid, student):
    got, messages = points(aid, submitted(aid, student))
    assert got == sim.expected_points(aid, student), messages
    if student == "uses_reference":
        assert all("reference" in m or "skinlab" in m for m in messages.values() if m), messages
    if student == "infinite_loop":
        assert any("did not finish" in m for m in messages.values()), messages


@pytest.mark.parametrize("aid", sim.ASSIGNMENT_IDS)
def test_hidden_inputs_change_with_the_batch_seed(aid):
    spec_calls = [(cell, i, call) for cell in testcells.test_cells(source(aid))
                  for i, call in enumerate(cell.calls) if call.hidden and CHECKS[call.check].fresh]
    if not spec_calls:
        pytest.skip(f"{aid} has no hidden test with parameters")
    cell, i, call = spec_calls[0]
    a = testcells.call_params(aid, cell, i, call, seed=1)
    assert a == testcells.call_params(aid, cell, i, call, seed=1)  # re-gradable
    assert any(testcells.call_params(aid, cell, i, call, seed=s) != a for s in range(2, 6))
