"""Exercise 5, ``grad_cam`` (chapter 10, ``skinlab.gradcam``).

``judges.py``: the checks (trusted, in the verifier); ``probes.py``: what runs the student's
code (copied into the grading worker: no ``skinlab`` import); the bank of answers:
``solutions/ex5_gradcam/answers.py``.
"""

from ..exercise import Exercise

EXERCISE = Exercise(
    id="ex5_gradcam",
    answers={"grad_cam": ("skinlab.gradcam", "pytorch_grad_cam")},
    prints=("skinlab.gradcam", ("grad_cam", "ActivationsAndGradients", "_minmax")),
    grading_cost_s=5.5,
)

from . import judges  # noqa: E402
from .judges import *  # noqa: E402,F401,F403

# What ``from skinlab.grading import *`` takes from here: the check_* functions test cells call.
__all__ = sorted(name for name in vars(judges) if name.startswith("check_"))
