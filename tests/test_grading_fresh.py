"""Hidden-test inputs drawn at grading time must not change a verdict's meaning.

The verifier draws every check's hidden inputs from the batch seed (``Check.fresh``). A draw that
the task does not cover (two empty classes where the task asks to name "the" empty class) turns a
right answer wrong for some seeds only; CI met exactly that once. Here, for the solution and for
each simulated mistake, every check gives the same verdict at every one of many draws.
"""

from __future__ import annotations

import linecache
import sys
from pathlib import Path

import numpy as np
import pytest

from skinlab.grading.checking import CHECKS, probe_function
from skinlab.grading.probe_base import roundtrip

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import simulated_class as sim  # noqa: E402

DRAWS = {"ex4_training": 6, "ex3_lenet": 12}  # training and model checks cost more per draw
DEFAULT_DRAWS = 40


def _define(sources: dict[str, str]) -> dict:
    ns = {"__name__": "__main__"}
    for gid, src in sources.items():
        filename = f"<cell {gid} {id(ns)}>"
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
        exec(compile(src, filename, "exec"), ns)
    return ns


def _plain_call(name, fn, *args, _on="", **kwargs):
    return fn(*args, **kwargs)


def _verdict(spec, ns: dict, params: dict) -> bool:
    answers = {name: ns[name] for name in spec.answers}

    def observe(probe, **p):
        return roundtrip(probe_function(probe)(_plain_call, answers, **p))

    try:
        spec.judge(observe, **params)
        return True
    except AssertionError:
        return False


def _cases():
    for aid in sim.ASSIGNMENT_IDS:
        names = set(sim.solution_answers(aid))
        for spec in CHECKS.values():
            if spec.fresh is not None and spec.answers[0] in names:
                for student in ("solution", "mistake"):
                    yield pytest.param(aid, student, spec.name, id=f"{aid}-{student}-{spec.name}")


@pytest.mark.slow  # every check of every exercise at several draws
@pytest.mark.parametrize("aid, student, check", list(_cases()))
def test_a_verdict_does_not_depend_on_the_draw(aid, student, check):
    spec = CHECKS[check]
    ns = _define(sim.answer_sources(aid, student))
    verdicts = []
    for i in range(DRAWS.get(aid, DEFAULT_DRAWS)):
        params = spec.params(kwargs=spec.fresh(np.random.default_rng([20261129, i])))
        verdicts.append(_verdict(spec, ns, params))
    if student == "solution":
        assert all(verdicts), f"the solution fails {check} at draws {[i for i, v in enumerate(verdicts) if not v]}"
    assert len(set(verdicts)) == 1, (
        f"{student}'s {aid} passes {check} at some hidden draws and fails at others: "
        f"{['pass' if v else 'fail' for v in verdicts]}"
    )
