"""Sentences of the book that check themselves against the numbers beside them.

A chapter that draws a conclusion from a number words it from the result, with a branch for
every outcome (:func:`outcome`), and states in a hidden cell the condition under which the
sentence it printed is true (:func:`require`). When the condition fails, the cell raises, the
strict build fails, and the page never shows a sentence its own numbers contradict, on the
synthetic sample as on HAM10000.

    diff = metrics.paired_difference(y, prob_a, prob_b, lesions)        # B - A, paired interval
    word = claims.outcome(diff)                                          # "better" | "worse" | "within the noise"
    claims.require(word != "better" or diff["low"] > 0, "B is better than A on these images")
"""

from __future__ import annotations

import math


class ClaimError(AssertionError):
    """A sentence on the page is not true for the numbers the page computed."""


def require(condition: bool, claim: str, **numbers) -> None:
    """Raise :class:`ClaimError` quoting ``claim`` (and ``numbers``) unless ``condition`` holds."""
    if not condition:
        shown = ", ".join(f"{k}={v!r}" for k, v in numbers.items())
        raise ClaimError(f"the page says {claim!r}, which its own numbers contradict" + (f" ({shown})" if shown else ""))


def outcome(interval: dict, margin: float = 0.0) -> str:
    """``"better"`` when the whole interval of a difference (``low``, ``high``) lies above
    ``margin``, ``"worse"`` when it lies below ``-margin``, else ``"within the noise"``.

    ``interval`` is a :func:`skinlab.metrics.paired_difference` result, or any dict with ``low``
    and ``high`` (e.g. the min-max of differences over seeds)."""
    low, high = float(interval["low"]), float(interval["high"])
    if math.isnan(low) or math.isnan(high):
        return "within the noise"
    if low > margin:
        return "better"
    if high < -margin:
        return "worse"
    return "within the noise"


def seeds_interval(differences) -> dict:
    """A difference measured over several seeds as ``{"value": mean, "low": min, "high": max,
    "n": seeds}``: the spread a reader can check by re-running each seed (min-max, not a
    confidence interval; with 3 seeds, "better" means better at every seed)."""
    d = [float(x) for x in differences]
    if not d:
        raise ValueError("no differences: a comparison over seeds needs at least one seed")
    return {"value": sum(d) / len(d), "low": min(d), "high": max(d), "n": len(d)}
