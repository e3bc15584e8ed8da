"""What the checks of exercises 1, 2 and 5 take on the worker's word (``Check.self_report``).

A point may rest only on values the verifier judges itself, from inputs it chose. Where a check
grants points on what the worker says about itself ("it raised", hook counts) it declares that
with ``self_report`` (docs/GRADING.md lists them, the feedback names the cells); every other
check of these exercises declares nothing.
"""

from __future__ import annotations

import pytest

from skinlab import grading  # noqa: F401 - registers the checks
from skinlab.grading.checking import CHECKS

MODULES = ("skinlab.grading.ex1_split", "skinlab.grading.ex2_class_weights", "skinlab.grading.ex5_gradcam")

# The checks that rest on the worker's report, and why.
SELF_REPORTED = {
    # the worker says the function raised ValueError; the message is judged against labels
    # the verifier drew (the empty class), so a forged "raised" with any message earns nothing
    "check_weights_missing_class": "raised",
    # the hook counts are counted on the worker's model, which the verifier never sees
    "check_cam_hooks_removed": "hook counts",
}


def _checks_of(module: str) -> list[str]:
    return sorted(name for name, spec in CHECKS.items() if spec.judge.__module__ == module)


@pytest.mark.parametrize("module", MODULES)
def test_the_exercise_has_checks(module):
    assert _checks_of(module)


@pytest.mark.parametrize("name", sorted(SELF_REPORTED))
def test_checks_that_believe_the_worker_say_so(name):
    report = CHECKS[name].self_report
    assert isinstance(report, str) and report.strip(), name
    assert SELF_REPORTED[name] in report
    assert len(report) <= 120  # a short phrase: the feedback quotes it


@pytest.mark.parametrize("module", MODULES)
def test_no_other_check_of_these_exercises_declares_a_self_report(module):
    for name in _checks_of(module):
        if name not in SELF_REPORTED:
            assert CHECKS[name].self_report == "", (name, CHECKS[name].self_report)
