"""A check is written once and runs in two places.

``@check("split_by_lesion", fresh=...)`` turns a *judge* ``judge(observe, **params)`` into the
``check_*`` function that test cells call. The judge asks for observations with
``observe("ex1_split.no_leak", **params)``: it names a probe (``skinlab.grading.ex1_split.probes``), which
runs the student's answer on inputs built from ``params`` and returns plain data, and then judges
that data against the reference, raising ``AssertionError`` in the student's words.

* In the student's kernel (the test cell): ``observe`` runs the probe in-process under the guard
  (``guard.call``). Quick feedback while the student works; not a verdict, because the student's
  code shares that process and can change anything in it.
* In the verifier (``skinlab.grading.verifier``): ``observe`` sends the request to a sandboxed
  worker process that ran the notebook's code, and judges what comes back in a process where
  student code never ran. Hidden tests there use inputs drawn at grading time (``fresh``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .guard import call as guarded_call
from .guard import own_work
from .probe_base import roundtrip

CHECKS: dict[str, "Check"] = {}


@dataclass(frozen=True)
class Check:
    name: str
    answers: tuple[str, ...]  # the notebook names this check calls (its first is the argument)
    judge: Callable
    fresh: Callable[[np.random.Generator], dict] | None  # hidden-test inputs drawn at grading
    # What the check takes on the word of the process that ran the student's code ("" when every
    # point rests on values the verifier recomputes from inputs it drew). docs/GRADING.md lists
    # these, and the feedback says which test cells rest on them.
    self_report: str = ""

    def params(self, args=(), kwargs=None) -> dict:
        """The judge's keyword arguments for a test cell's ``check_x(answer, *args, **kwargs)``."""
        bound = inspect.signature(self.judge).bind(None, *args, **(kwargs or {}))
        bound.apply_defaults()
        return {k: v for k, v in bound.arguments.items() if k != "observe"}


def probe_function(name: str):
    """``"ex3_lenet.layers"``: the function ``layers`` of ``skinlab/grading/ex3_lenet/probes.py``."""
    exercise, func = name.split(".")
    return getattr(importlib.import_module(f"{__package__}.{exercise}.probes"), func)


class InKernel:
    """``observe`` in the student's kernel: the probe runs here, under the guard."""

    def __init__(self, answers: dict):
        self.answers = answers

    def __call__(self, probe: str, **params):
        return roundtrip(probe_function(probe)(guarded_call, self.answers, **params))


def check(*answers: str, fresh: Callable[[np.random.Generator], dict] | None = None, self_report: str = ""):
    """Register ``judge`` and return the public ``check_*(answer, ...)`` that test cells call.

    ``self_report`` names what the judge believes from the worker's own report rather than from
    a value it recomputes (a hook count, "it raised"): such a check is worth a small stated share.
    """

    def decorate(judge):
        spec = Check(judge.__name__, tuple(answers), judge, fresh, self_report)
        CHECKS[spec.name] = spec

        @functools.wraps(judge)
        def in_kernel(answer, *args, **kwargs):
            own_work(answers[0], answer)
            return judge(InKernel({answers[0]: answer}), *args, **kwargs)

        sig = inspect.signature(judge)
        params = list(sig.parameters.values())[1:]
        in_kernel.__signature__ = sig.replace(
            parameters=[inspect.Parameter(answers[0], inspect.Parameter.POSITIONAL_OR_KEYWORD), *params])
        in_kernel.spec = spec
        return in_kernel

    return decorate
