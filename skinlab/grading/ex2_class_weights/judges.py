"""Exercise 2 checks: ``median_frequency_weights`` (chapter 4, ``skinlab.balance``).

Probes (what runs the student's code): ``probes.py`` beside this file.
"""

from __future__ import annotations

import re

import numpy as np

from ..checking import check

PROBES = "ex2_class_weights"


def _fresh_labels(rng: np.random.Generator) -> dict:
    """Hidden-test input drawn at grading time: 3-8 classes, imbalanced, every class present."""
    num_classes = int(rng.integers(3, 9))
    p = rng.dirichlet(np.full(num_classes, 0.6))
    labels = np.concatenate([np.arange(num_classes), rng.choice(num_classes, int(rng.integers(8, 400)), p=p)])
    return {"labels": rng.permutation(labels).tolist(), "num_classes": num_classes}


def _fresh_missing(rng: np.random.Generator) -> dict:
    """One class without samples (the task asks to name "the class index"), anywhere in 3-8 classes."""
    num_classes = int(rng.integers(3, 9))
    missing = {int(rng.integers(num_classes))}
    present = [c for c in range(num_classes) if c not in missing]
    # Every other class appears at least once, so exactly one class is empty and an answer that
    # names "the" empty class is right whatever the draw.
    extra = rng.choice(present, int(rng.integers(0, 30)))
    labels = rng.permutation(np.concatenate([present, extra]).astype(int))
    return {"labels": labels.tolist(), "num_classes": num_classes}


def _weights_reference(labels, num_classes):
    from skinlab.balance import median_frequency_weights

    return median_frequency_weights(labels, num_classes)


def _as_weights(seen: dict, num_classes: int, strict: bool = True) -> np.ndarray:
    """The returned weights as a float64 array, or the AssertionError that says what is wrong.

    ``strict`` (the output cell) also asks for a float32 torch.Tensor. The value cells judge the
    numbers after a cast: right weights returned as float64 (or as a numpy array) lose the output
    cell's 2 points, not all 10.
    """
    if strict and seen["type"] != "Tensor":
        raise AssertionError(
            f"median_frequency_weights should return a torch.Tensor (it is passed to "
            f"nn.CrossEntropyLoss(weight=...)); got {seen['type']}"
        )
    if strict and seen["dtype"] != "torch.float32":
        raise AssertionError(
            f"the weights should be float32 (the dtype of the model's logits); got {seen['dtype']}"
        )
    try:
        values = np.asarray(seen["values"], dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim == 0 or seen["values"] is None:
        raise AssertionError(f"median_frequency_weights should return a tensor of numbers; got {seen['type']}")
    shape = tuple(seen["shape"]) if strict else values.shape
    if shape != (num_classes,):
        raise AssertionError(
            f"expected one weight per class, shape ({num_classes},); got {shape}"
        )
    return values


# Whole numbers in a message, not parts of a decimal ("0.5") or of a longer number.
_NUMBER = re.compile(r"(?<![\d.])\d+(?!\d|\.\d)")
# What is not a class index: a count ("0 samples", "count 0", "frequency 0"), the class range
# ("0 to 3", "0..3", "range(4)") and a list of all the counts (compared with the real ones below).
_COUNT_AFTER = re.compile(r"^\s*(?:samples?|images?|labels?|examples?|occurrences?|instances?|entries|"
                          r"elements?|times?|counts?|items?|members?|observations?|rows?|data\b)", re.I)
_COUNT_BEFORE = re.compile(r"(?:counts?|frequency|frequencies|freq|n|number|size|total)\s*(?:of|is|=|:|==)?\s*$", re.I)
_RANGE = re.compile(r"(?<![\d.])0\s*(?:\.\.\.?|…|-|–|to)\s*(\d+)(?![\d.])|range\(\s*(\d+)\s*\)", re.I)
_LIST = re.compile(r"[\[(]\s*\d+(?:\s*,\s*\d+)+\s*,?\s*[\])]")


def _listed(classes) -> str:
    return ", ".join(map(str, classes))


def _message_problem(message: str, counts) -> str | None:
    """Why ``message`` does not name exactly the empty classes (None when it does).

    It must name every class without samples and no class that has samples: "class 0 1 2 3 4 5 6"
    names them all and so names nothing (it used to earn the points, since it contains the empty
    one's index). Numbers that are not class indices do not count: a number of samples, the range
    of the classes, the list of the per-class counts, num_classes itself (not an index).
    """
    counts = [int(c) for c in counts]
    num_classes = len(counts)
    empty = {c for c in range(num_classes) if counts[c] == 0}
    spans = []  # (start, end) of text that holds numbers that are not class indices
    for m in _LIST.finditer(message):
        if [int(v) for v in _NUMBER.findall(m.group())] == counts:  # the real counts, in order
            spans.append(m.span())
    for m in _RANGE.finditer(message):
        top = m.group(1) or m.group(2)
        if m.group(1) is not None and int(top) == num_classes - 1 or m.group(2) is not None and int(top) == num_classes:
            spans.append(m.span())
    named = set()
    for m in _NUMBER.finditer(message):
        if any(a <= m.start() < b for a, b in spans):
            continue
        value = int(m.group())
        if value == 0 and (_COUNT_AFTER.match(message[m.end():]) or _COUNT_BEFORE.search(message[:m.start()])):
            continue  # "has 0 samples", "count 0": the count of the empty class, not class 0
        if value < num_classes:
            named.add(value)
    if not named & empty:
        return "it names no empty class"
    if empty - named:
        return f"it does not name class {_listed(sorted(empty - named))}"
    if named - empty:
        extra = sorted(named - empty)
        return f"it also names class {_listed(extra)}, which {'has' if len(extra) == 1 else 'have'} samples"
    return None


@check("median_frequency_weights")
def check_weights_output(observe):
    """A float32 tensor of shape (num_classes,), from a list, a numpy array or a tensor of labels."""
    for seen in observe(f"{PROBES}.weights_output"):
        _as_weights(seen, 4)


@check("median_frequency_weights", fresh=_fresh_labels)
def check_weights_values(observe, labels, num_classes: int):
    """Equal to w_c = median(f) / f_c with f_c = count_c / N (to 1e-6 relative)."""
    labels = [int(v) for v in np.asarray(labels).reshape(-1).tolist()]
    num_classes = int(num_classes)
    expected = _weights_reference(labels, num_classes).numpy().astype(np.float64)
    counts = np.bincount(labels, minlength=num_classes)
    shown = labels if len(labels) <= 12 else f"{len(labels)} labels with counts {counts.tolist()}"
    got = _as_weights(observe(f"{PROBES}.weights_values", labels=labels, num_classes=num_classes), num_classes,
                      strict=False)
    if np.allclose(got, expected, rtol=1e-6, atol=1e-6):
        return
    c = int(np.abs(got - expected).argmax()) if np.isfinite(got).all() else int(np.flatnonzero(~np.isfinite(got))[0])
    freq = counts / counts.sum()
    hint = ""
    if np.allclose(got, 1 / freq, rtol=1e-4):
        hint = " Your weights are 1/f_c: multiply by the median frequency, so the median class weighs 1."
    elif np.allclose(got, (1 / freq) / (1 / freq).sum(), rtol=1e-4):
        hint = " Your weights are normalised to sum to 1; normalise by the median frequency instead."
    elif np.allclose(got, freq / np.median(freq), rtol=1e-4):
        hint = " Your weights are upside down (f_c / median): rare classes must get the larger weights."
    elif np.allclose(np.sort(got), np.sort(expected), rtol=1e-4):
        hint = " The values are right but in the wrong order: weight c must belong to class index c."
    raise AssertionError(
        f"for labels={shown} (num_classes={num_classes}): the weight of class {c} is "
        f"{got[c]:.6g}, expected {expected[c]:.6g} (off by {got[c] - expected[c]:+.3g}). "
        f"Expected all: {[round(float(v), 4) for v in expected]}, yours: {[round(float(v), 4) for v in got]}."
        + hint
    )


@check("median_frequency_weights", fresh=_fresh_missing,
       self_report="that your function raised (its message must name the empty class of labels drawn at grading time)")
def check_weights_missing_class(observe, labels=(0, 0, 2, 2, 3), num_classes: int = 4):
    """A class without samples raises ValueError that names it.

    That it raised is the worker's word (``self_report``); the verifier judges the message it
    reports against the empty class of the labels it drew itself (``fresh``)."""
    labels = [int(v) for v in labels]
    counts = np.bincount(labels, minlength=num_classes)
    empty = [int(c) for c in np.flatnonzero(counts == 0)]
    seen = observe(f"{PROBES}.weights_missing_class", labels=labels, num_classes=int(num_classes))
    if "raised" in seen:
        problem = _message_problem(str(seen.get("message", "")), counts)
        if problem:
            raise AssertionError(
                f"the ValueError should name the empty class {_listed(empty)} and no other class: {problem}; "
                f"its message was: {str(seen.get('message', ''))[:300]!r}"
            )
        return
    raise AssertionError(
        f"labels={labels} with num_classes={num_classes} has no sample of class {empty}: "
        f"its frequency is 0 and its weight would be infinite. Raise a ValueError naming the "
        f"class instead (yours returned {seen['returned']})."
    )
