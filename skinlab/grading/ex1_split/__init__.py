"""Exercise 1, the lesion-level split (chapter 3, ``skinlab.split``).

``judges.py``: the checks (trusted, in the verifier); ``probes.py``: what runs the student's
code (copied into the grading worker: no ``skinlab`` import); the bank of answers:
``solutions/ex1_split/answers.py``.
"""

from ..exercise import Exercise

EXERCISE = Exercise(
    id="ex1_split",
    answers={"split_by_lesion": ("skinlab.split",)},
    prints=("skinlab.split", ("split_by_lesion", "split_by_lesion_greedy", "fold_counts", "_check_fractions")),
    grading_cost_s=8.0,
)

from . import judges  # noqa: E402
from .judges import *  # noqa: E402,F401,F403

# What ``from skinlab.grading import *`` takes from here: the check_* functions test cells call.
__all__ = sorted(name for name in vars(judges) if name.startswith("check_"))
