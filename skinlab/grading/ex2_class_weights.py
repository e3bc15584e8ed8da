"""Exercise 2 checks: ``median_frequency_weights`` (chapter 4, ``skinlab.balance``)."""

from __future__ import annotations

import numpy as np

from .guard import _construct, call, own_work

def _weights_reference(labels, num_classes):
    from skinlab.balance import median_frequency_weights

    return median_frequency_weights(labels, num_classes)


def _run_weights(fn, labels, num_classes, _on):
    import torch

    result = call("median_frequency_weights", fn, labels, num_classes, _on=_on)
    if not isinstance(result, torch.Tensor):
        raise AssertionError(
            f"median_frequency_weights should return a torch.Tensor (it is passed to "
            f"nn.CrossEntropyLoss(weight=...)); got {type(result).__name__}"
        )
    if result.dtype != torch.float32:
        raise AssertionError(
            f"the weights should be float32 (the dtype of the model's logits); got {result.dtype}"
        )
    if tuple(result.shape) != (num_classes,):
        raise AssertionError(
            f"expected one weight per class, shape ({num_classes},); got {tuple(result.shape)}"
        )
    return result


def check_weights_output(median_frequency_weights):
    """A float32 tensor of shape (num_classes,), from a list, a numpy array or a tensor of labels."""
    import torch

    own_work("median_frequency_weights", median_frequency_weights)
    labels = [0, 1, 1, 2, 2, 2, 3, 3, 3, 3]
    for kind, value in (
        ("a list", labels),
        ("a numpy array", np.array(labels)),
        ("a torch tensor", torch.tensor(labels)),
    ):
        _run_weights(median_frequency_weights, value, 4, _on=f"labels given as {kind}")


def check_weights_values(median_frequency_weights, labels, num_classes: int):
    """Equal to w_c = median(f) / f_c with f_c = count_c / N (to 1e-6 relative)."""
    import torch

    own_work("median_frequency_weights", median_frequency_weights)
    labels = list(np.asarray(labels).tolist())
    expected = _weights_reference(labels, num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    shown = labels if len(labels) <= 12 else f"{len(labels)} labels with counts {counts.tolist()}"
    got = _run_weights(median_frequency_weights, list(labels), num_classes, _on=f"labels={shown}")
    got = got.detach().cpu()
    if torch.allclose(got, expected, rtol=1e-6, atol=1e-6):
        return
    c = int((got - expected).abs().argmax())
    freq = counts / counts.sum()
    hint = ""
    if np.allclose(got.numpy(), 1 / freq, rtol=1e-4):
        hint = " Your weights are 1/f_c: multiply by the median frequency, so the median class weighs 1."
    elif np.allclose(got.numpy(), (1 / freq) / (1 / freq).sum(), rtol=1e-4):
        hint = " Your weights are normalised to sum to 1; normalise by the median frequency instead."
    elif np.allclose(got.numpy(), freq / np.median(freq), rtol=1e-4):
        hint = " Your weights are upside down (f_c / median): rare classes must get the larger weights."
    elif np.allclose(np.sort(got.numpy()), np.sort(expected.numpy()), rtol=1e-4):
        hint = " The values are right but in the wrong order: weight c must belong to class index c."
    raise AssertionError(
        f"for labels={shown} (num_classes={num_classes}): the weight of class {c} is "
        f"{float(got[c]):.6g}, expected {float(expected[c]):.6g} (off by {float(got[c] - expected[c]):+.3g}). "
        f"Expected all: {[round(float(v), 4) for v in expected]}, yours: {[round(float(v), 4) for v in got]}."
        + hint
    )


def check_weights_missing_class(median_frequency_weights, labels=(0, 0, 2, 2, 3), num_classes: int = 4):
    """A class without samples raises ValueError that names it."""
    own_work("median_frequency_weights", median_frequency_weights)
    counts = np.bincount(list(labels), minlength=num_classes)
    empty = [int(c) for c in np.flatnonzero(counts == 0)]
    try:
        result = call("median_frequency_weights", median_frequency_weights, list(labels), num_classes,
                      _on=f"labels={list(labels)}, num_classes={num_classes}")
    except ValueError as exc:
        if not all(str(c) in str(exc) for c in empty):
            raise AssertionError(
                f"the ValueError should name the empty class(es) {empty}; its message was: {exc}"
            ) from None
        return
    raise AssertionError(
        f"labels={list(labels)} with num_classes={num_classes} has no sample of class {empty}: "
        f"its frequency is 0 and its weight would be infinite. Raise a ValueError naming the "
        f"class instead (yours returned {result!r})."
    )
