"""Exercise 2 probes: ``median_frequency_weights`` on label lists (worker side, no skinlab)."""

from __future__ import annotations

import numpy as np

from ..probe_base import answer, to_plain, type_name

NAME = "median_frequency_weights"


def describe(result) -> dict:
    """What the judge needs of a returned value: its type, dtype, shape and numbers."""
    values = to_plain(result)
    if values is None and isinstance(result, (list, tuple)) and result and \
            all(type(v) in (int, float) for v in result):  # plain numbers only: no student __float__ runs
        values = np.asarray(result, dtype=np.float64)
    return {"type": type_name(result), "dtype": str(getattr(result, "dtype", "")),
            "shape": list(getattr(result, "shape", ()) or ()), "values": values}


def weights_output(call, answers) -> list:
    """The same labels given as a list, a numpy array and a torch tensor."""
    import torch

    fn = answer(answers, NAME)
    labels = [0, 1, 1, 2, 2, 2, 3, 3, 3, 3]
    seen = []
    for kind, value in (("a list", labels), ("a numpy array", np.array(labels)),
                        ("a torch tensor", torch.tensor(labels))):
        seen.append({"kind": kind, **describe(call(NAME, fn, value, 4, _on=f"labels given as {kind}"))})
    return seen


def weights_values(call, answers, labels, num_classes) -> dict:
    fn = answer(answers, NAME)
    shown = labels if len(labels) <= 12 else f"{len(labels)} labels"
    return describe(call(NAME, fn, list(labels), num_classes, _on=f"labels={shown}"))


def weights_missing_class(call, answers, labels, num_classes) -> dict:
    fn = answer(answers, NAME)
    try:
        result = call(NAME, fn, list(labels), num_classes,
                      _on=f"labels={list(labels)}, num_classes={num_classes}")
    except ValueError as exc:
        return {"raised": "ValueError", "message": str(exc)[:500]}
    return {"returned": repr(result)[:200]}
