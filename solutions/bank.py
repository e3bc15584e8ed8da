"""The bank of answers, one module per exercise: ``solutions/<id>/answers.py``.

Each holds what students hand in for that exercise — the plausible mistake and the cells it
fails, an infinite loop, an answer that raises, routes to the reference, and the adversarial
class's copies and attacks — written once, read by ``simulated_class.py``,
``adversarial_class.py`` and the tests. It sits beside the exercise's source, out of the
installed package; nbgrader releases no ``*.py``.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

from skinlab.split import DEFAULT_FRACTIONS

HERE = Path(__file__).resolve().parent


def with_default_fractions(answer: str) -> str:
    """``answer`` (student code) with the name ``DEFAULT_FRACTIONS`` written out as its value.

    A student's answer runs where ``skinlab`` cannot be imported (the grading worker blocks it), so
    its default fractions are a literal; writing that literal from ``skinlab.split`` keeps every
    simulated answer on the course's defaults. An answer left unconverted fails loudly (NameError).
    """
    return answer.replace("DEFAULT_FRACTIONS", repr(tuple(DEFAULT_FRACTIONS)))


@functools.lru_cache(maxsize=None)
def answers(aid: str):
    """The bank module of exercise ``aid``."""
    path = HERE / aid / "answers.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: exercise {aid} has no bank of answers")
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the bank modules import this one
    spec = importlib.util.spec_from_file_location(f"skinlab_bank_{aid}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
