"""Exercise 2, median-frequency class weights (chapter 4, ``skinlab.balance``).

``judges.py``: the checks (trusted, in the verifier); ``probes.py``: what runs the student's
code (copied into the grading worker: no ``skinlab`` import); the bank of answers:
``solutions/ex2_class_weights/answers.py``.
"""

from ..exercise import Exercise

EXERCISE = Exercise(
    id="ex2_class_weights",
    answers={"median_frequency_weights": ("skinlab.balance",)},
    prints=("skinlab.balance", ("median_frequency_weights", "class_counts")),
    grading_cost_s=6.5,
)

from . import judges  # noqa: E402
from .judges import *  # noqa: E402,F401,F403

# What ``from skinlab.grading import *`` takes from here: the check_* functions test cells call.
__all__ = sorted(name for name in vars(judges) if name.startswith("check_"))
