"""Exercise 4, ``train_one_epoch`` and ``evaluate`` (chapter 8, ``skinlab.engine``).

``judges.py``: the checks (trusted, in the verifier); ``probes.py``: what runs the student's
code (copied into the grading worker: no ``skinlab`` import); the bank of answers:
``solutions/ex4_training/answers.py``.
"""

from ..exercise import Exercise

EXERCISE = Exercise(
    id="ex4_training",
    answers={"train_one_epoch": ("skinlab.engine",), "evaluate": ("skinlab.engine",)},
    prints=("skinlab.engine", ("train_one_epoch", "evaluate", "_run_eval", "_to_device")),
    grading_cost_s=9.0,
)

from . import judges  # noqa: E402
from .judges import *  # noqa: E402,F401,F403

# What ``from skinlab.grading import *`` takes from here: the check_* functions test cells call.
__all__ = sorted(name for name in vars(judges) if name.startswith("check_"))
