"""What the grader knows about one exercise, declared once in its folder.

Each exercise is a folder of this package (``ex3_lenet/``): its ``__init__`` declares an
:class:`Exercise` (the answers the notebook defines, the reference they must not run, the code
the book prints, the grading cost), ``judges.py`` holds its checks (trusted, in the verifier) and
``probes.py`` the worker-side halves (no ``skinlab`` import: copied into the worker). The guard,
the similarity report, the batch commands and the worker read these facts from here; the bank of
answers (solution, mistakes, copies, attacks) lives beside the source notebook, in
``solutions/<exercise>/answers.py``, out of the installed package.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Exercise:
    id: str
    # The names the student's notebook defines, each mapped to the modules it must not run: the
    # reference of the exercise (and, for Grad-CAM, the library the reference reproduces).
    answers: dict[str, tuple[str, ...]]
    # The module the book prints and the names a copy of it inlines (the similarity report's
    # reference besides the solution notebook).
    prints: tuple[str, tuple[str, ...]]
    # Seconds one notebook takes to autograde on one core (docs/PERFORMANCE.md): batches of
    # parallel nbgrader calls are balanced with it.
    grading_cost_s: float


def folders() -> list[str]:
    """The exercise folders of the grading package, in order."""
    return sorted(p.parent.name for p in HERE.glob("ex*/probes.py"))


@functools.lru_cache(maxsize=None)
def exercises() -> dict[str, Exercise]:
    """{exercise id: its Exercise}, read from each folder's ``EXERCISE``."""
    found = {}
    for name in folders():
        declared = importlib.import_module(f"{__package__}.{name}").EXERCISE
        if declared.id != name:
            raise RuntimeError(f"skinlab/grading/{name}/ declares the exercise {declared.id!r}")
        found[name] = declared
    return found


def exercise_of(answer: str) -> Exercise | None:
    return next((e for e in exercises().values() if answer in e.answers), None)


def reference_modules(answer: str) -> tuple[str, ...]:
    """The modules the answer called ``answer`` must not run."""
    found = exercise_of(answer)
    return found.answers[answer] if found else ()


def siblings(answer: str) -> tuple[str, ...]:
    """The other answers of the same exercise: they share a verdict on using the reference."""
    found = exercise_of(answer)
    return tuple(a for a in found.answers if a != answer) if found else ()


def blocked_packages() -> tuple[str, ...]:
    """The top-level packages no answer may import while graded (the worker refuses them)."""
    return tuple(sorted({m.split(".")[0] for e in exercises().values() for ms in e.answers.values() for m in ms}))
