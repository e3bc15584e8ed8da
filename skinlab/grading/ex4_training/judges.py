"""Exercise 4 checks: ``train_one_epoch`` and ``evaluate`` (chapter 8, ``skinlab.engine``).

Probes (what runs the student's code): ``probes.py`` beside this file. They build the tiny MLP, the
loader and the optimizer from the parameters and report what the student's function returned,
the model's state afterwards and the mode of every forward call. The reference runs here, on the
same tiny MLP built by the same builder from the same seed.

The worker's reply can be forged by the student's code, so every point rests on values this
process recomputes: the returned numbers, the parameters and the BatchNorm running statistics.
What the worker says about itself (the mode of each forward call, whether a ``.grad`` appeared)
only takes points away, with a clearer message; the one property no value shows (no autograd
graph while evaluating) is declared with ``self_report`` on ``check_evaluate_mode``.

The two answers share the exercise, not their checks: the checks of ``train_one_epoch`` run only
``train_one_epoch`` and those of ``evaluate`` only ``evaluate``.
"""

from __future__ import annotations

import copy

import numpy as np

from ..checking import check
from .probes import sgd as _sgd
from .probes import state_arrays as _state_arrays
from .probes import tiny_loader as _tiny_loader
from .probes import tiny_mlp as _tiny_mlp
from .probes import warm_batchnorm as _warm_batchnorm

PROBES = "ex4_training"
_TOL = 1e-6


# ------------------------------------------------------------------ hidden-test inputs


def _fresh_batches(rng: np.random.Generator) -> dict:
    """n samples in batches of batch_size with a short last batch of at least 2 (BatchNorm)."""
    batch_size = int(rng.integers(3, 13))
    n = batch_size * int(rng.integers(1, 6)) + int(rng.integers(2, batch_size))
    return {"seed": int(rng.integers(0, 100_000)), "n": n, "batch_size": batch_size}


def _fresh_train_matches(rng: np.random.Generator) -> dict:
    params = _fresh_batches(rng)
    params["momentum"] = round(float(rng.uniform(0.0, 0.95)), 3)
    params["lr"] = round(float(rng.uniform(0.01, 0.2)), 3)
    return params


def _fresh_seed(rng: np.random.Generator) -> dict:
    return {"seed": int(rng.integers(0, 100_000))}


# ------------------------------------------------------------------ reading what came back


def _as_number(item, what: str, name: str) -> float:
    if not isinstance(item, dict):
        raise AssertionError(f"{name}: unexpected description of the returned {what}")
    if item.get("kind") == "tensor":
        raise AssertionError(
            f"{name} should return Python numbers; its {what} is a tensor ({item.get('repr')}): use .item()"
        )
    value = item.get("value")
    if item.get("kind") != "number" or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AssertionError(
            f"{name} should return (mean_loss, accuracy) as numbers; its {what} is {item.get('repr')}"
        )
    return float(value)


def _unpack(seen: dict, name: str) -> tuple[float, float]:
    """The returned (mean_loss, accuracy) as floats, or the AssertionError that says what is wrong."""
    if not isinstance(seen, dict) or seen.get("tuple") is not True:
        got = seen.get("repr") if isinstance(seen, dict) else seen
        raise AssertionError(f"{name} should return a tuple (mean_loss, accuracy); got {got}")
    items = seen.get("items")
    if not isinstance(items, list) or len(items) != 2:
        raise AssertionError(f"{name} should return a tuple (mean_loss, accuracy)")
    return _as_number(items[0], "mean loss", name), _as_number(items[1], "accuracy", name)


def _modes(seen: dict, name: str) -> list[tuple[bool, bool]]:
    modes = seen.get("modes") if isinstance(seen, dict) else None
    if not isinstance(modes, list) or not all(
        isinstance(m, list) and len(m) == 2 and all(isinstance(v, bool) for v in m) for m in modes
    ):
        raise AssertionError(f"{name}: the modes of the forward calls could not be read")
    return [(m[0], m[1]) for m in modes]


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol  # False for NaN


def _loose_pair(seen) -> tuple[float, float] | None:
    """The returned pair as floats, one-element tensors included (``_unpack`` is the strict reading)."""
    items = seen.get("items") if isinstance(seen, dict) and seen.get("tuple") is True else None
    if not isinstance(items, list) or len(items) != 2:
        return None
    values = []
    for item in items:
        value = item.get("value") if isinstance(item, dict) and item.get("kind") in ("number", "tensor") else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        values.append(float(value))
    return values[0], values[1]


def _pair_text(seen) -> str:
    """What was returned, as the student would print it, for messages."""

    def text(item) -> str:
        if not isinstance(item, dict):
            return str(item)
        value = item.get("value")
        if item.get("kind") == "number" and isinstance(value, (int, float)):
            return f"{value:.6g}"
        return str(item.get("repr"))

    items = seen.get("items") if isinstance(seen, dict) and seen.get("tuple") is True else None
    if not isinstance(items, list):
        return text(seen) if not isinstance(seen, dict) else str(seen.get("repr"))
    return "(" + ", ".join(text(item) for item in items) + ")"


def _first_difference(state, want: dict, tol: float = _TOL) -> str | None:
    """The first entry of ``want`` (a state_dict this process built) that ``state`` does not match.

    Missing, another shape, a count (``num_batches_tracked``) not equal, or a float further than
    ``tol`` or not finite. None when every entry matches.
    """
    if not isinstance(state, dict):
        raise AssertionError("the model's state after the call could not be read")
    for key, value in want.items():
        got = state.get(key)
        if isinstance(got, np.ndarray) and value.ndim == 0 and got.shape == (1,):
            got = got.reshape(())  # the codec sends a 0-d array (num_batches_tracked) as shape (1,)
        if not isinstance(got, np.ndarray) or got.shape != value.shape:
            return key
        if value.dtype.kind in "biu":
            if got.dtype.kind not in "biu" or not np.array_equal(got, value):
                return key
            continue
        if got.dtype.kind != "f":
            return key
        d = np.abs(got.astype(np.float64) - value.astype(np.float64))
        if not (np.isfinite(d).all() and d.max(initial=0.0) <= tol):
            return key
    return None


def _is_batchnorm_statistic(key: str) -> bool:
    return "running" in key or "num_batches" in key


# ------------------------------------------------------------------ the reference


def _reference_train(model, loader, criterion, optimizer, zero_grad=True, train_mode=True):
    """The reference epoch, or a variant with a classic mistake (to name the student's)."""
    import torch

    if zero_grad and train_mode:
        from skinlab.engine import train_one_epoch

        return train_one_epoch(model, loader, criterion, optimizer, torch.device("cpu"))
    model.train(train_mode)
    total, correct, seen = 0.0, 0, 0
    for x, y in loader:
        if zero_grad:
            optimizer.zero_grad()
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return total / seen, correct / seen


def _max_param_diff(a, b) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def _state_param_diff(state, model) -> float:
    """Largest difference between the parameters in ``state`` (arrays by name) and ``model``'s.

    inf when a parameter is missing, has another shape or is not finite.
    """
    if not isinstance(state, dict):
        return float("inf")
    worst = 0.0
    for key, param in model.named_parameters():
        got = state.get(key)
        want = param.detach().cpu().numpy()
        if not isinstance(got, np.ndarray) or got.shape != want.shape:
            return float("inf")
        d = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max(initial=0.0))
        if not np.isfinite(d):
            return float("inf")
        worst = max(worst, d)
    return worst


def _per_sample_expectations(model, loader, criterion):
    import torch

    with torch.no_grad():
        losses, correct, batch_means = [], 0, []
        for x, y in loader:
            logits = model(x)
            losses.append(criterion(logits, y).item() * len(y))
            batch_means.append(criterion(logits, y).item())
            correct += (logits.argmax(1) == y).sum().item()
    n = len(loader.dataset)
    return sum(losses) / n, correct / n, float(np.mean(batch_means))


def _evaluate_case(seed: int, n: int, batch_size: int, data_seed: int, warm: bool):
    """What evaluate must give on the probe's model, built here as ``evaluate_run`` builds it.

    Returns the model's state (evaluate must leave it as it is), and the reference's eval-mode
    mean loss, accuracy and mean of the batch means (a mistake ``_explain_means`` names).
    """
    import torch
    from skinlab.engine import evaluate as reference_evaluate

    model = _tiny_mlp(seed, dropout=0.5)
    if warm:
        _warm_batchnorm(model, seed)
    model.train()  # as the probe hands it over: evaluate must switch to eval mode itself
    state = _state_arrays(model)
    want_loss, want_acc = reference_evaluate(copy.deepcopy(model), _tiny_loader(data_seed, n, batch_size),
                                             torch.nn.CrossEntropyLoss(), torch.device("cpu"))
    _, _, mean_of_means = _per_sample_expectations(copy.deepcopy(model).eval(), _tiny_loader(data_seed, n, batch_size),
                                                   torch.nn.CrossEntropyLoss())
    return state, want_loss, want_acc, mean_of_means


def _shows_evaluation(seen, want_loss: float, want_acc: float, mean_of_means: float, n: int) -> bool:
    """Whether the returned pair is this model's eval-mode (loss, accuracy).

    The mode checks must not cost twice what ``check_evaluate_matches`` already costs, so the usual
    averaging and return mistakes still count here (a mean of batch means, a sum, a percentage, a
    count, a one-element tensor): each of them needs the eval-mode outputs all the same.
    """
    pair = _loose_pair(seen)
    if pair is None:
        return False
    loss, acc = pair
    return (any(_close(loss, w, 1e-5 * max(1.0, abs(w))) for w in (want_loss, mean_of_means, want_loss * n))
            and any(_close(acc, w, 1e-6 * max(1.0, abs(w))) for w in (want_acc, 100 * want_acc, want_acc * n)))


def _check_unchanged(after, state: dict) -> None:
    """evaluate left the model as this process built it (not as the worker says it was before)."""
    if not isinstance(after, dict):
        raise AssertionError("evaluate: the model's state could not be read")
    key = _first_difference(after, state)
    if key is None:
        return
    if _is_batchnorm_statistic(key):
        raise AssertionError(
            f"evaluate changed the model's BatchNorm running statistics ({key}): the model was in "
            "training mode, so BatchNorm updated its statistics on the evaluation data; call model.eval()"
        )
    raise AssertionError(
        f"evaluate changed the model's parameters ({key}): evaluation must never update the model "
        "(no optimizer, no backward)"
    )


def _explain_means(name, loss, acc, want_loss, want_acc, mean_of_means, n, batch_size):
    if not _close(loss, want_loss, 1e-5 * max(1, abs(want_loss))):
        hint = ""
        if _close(loss, mean_of_means, 1e-5):
            last = n % batch_size
            hint = (f" You averaged the batch means; the last batch has only {last} samples, so it "
                    f"must weigh {last}/{n}: add loss.item() * batch_size and divide by {n} at the end.")
        elif _close(loss, want_loss * n, 1e-3 * n):
            hint = " That is the sum over samples: divide by the number of samples."
        raise AssertionError(
            f"{name} returned mean loss {loss:.6g}; expected {want_loss:.6g} (the mean over the {n} "
            f"samples, batches of {batch_size})." + hint
        )
    if not _close(acc, want_acc, 1e-6):
        hint = " Return a fraction in [0, 1], not a percentage." if _close(acc, 100 * want_acc, 1e-4) else ""
        raise AssertionError(
            f"{name} returned accuracy {acc:.6g}; expected {want_acc:.6g} (correct predictions / "
            f"{n} samples)." + hint
        )


# ------------------------------------------------------------------ train_one_epoch


@check("train_one_epoch", fresh=_fresh_train_matches)
def check_train_matches(observe, seed: int = 0, n: int = 26, batch_size: int = 8, momentum: float = 0.9,
                        lr: float = 0.1):
    """After one epoch the parameters equal the reference's (same start, same batches; 1e-6)."""
    import torch

    seed, n, batch_size, momentum, lr = int(seed), int(n), int(batch_size), float(momentum), float(lr)

    def setup():
        model = _tiny_mlp(seed)
        return model, _sgd(model, lr, momentum)

    ref_model, ref_opt = setup()
    ref_loss, ref_acc = _reference_train(ref_model, _tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss(), ref_opt)
    seen = observe(f"{PROBES}.train_run", seed=seed, n=n, batch_size=batch_size, lr=lr, momentum=momentum)
    state = seen.get("state") if isinstance(seen, dict) else None
    diff = _state_param_diff(state, ref_model)
    if not diff <= _TOL:
        fresh, _ = setup()
        if _state_param_diff(state, fresh) == 0:
            raise AssertionError(
                "the parameters did not change during the epoch: call loss.backward() and then "
                "optimizer.step() for every batch"
            )
        for variant, message in (
            (dict(zero_grad=False), "gradients were not zeroed: call optimizer.zero_grad() before "
             "each loss.backward(), otherwise every step also applies the gradients of all earlier batches"),
            (dict(train_mode=False), "the model was in evaluation mode while training (BatchNorm "
             "used its running statistics): call model.train() at the start of train_one_epoch"),
        ):
            m, o = setup()
            _reference_train(m, _tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss(), o, **variant)
            if _state_param_diff(state, m) < _TOL:
                raise AssertionError(message)
        raise AssertionError(
            f"after one epoch your parameters differ from the reference's by up to {diff:.3g} "
            "(same model, same batches, same optimizer). Each batch: zero the gradients, forward, "
            "loss, backward, optimizer.step(); one pass over the loader."
        )
    loss, acc = _unpack(seen.get("result"), "train_one_epoch")
    if not (_close(loss, ref_loss, _TOL * max(1.0, abs(ref_loss))) and _close(acc, ref_acc, _TOL)):
        raise AssertionError(
            f"the parameters are right, but train_one_epoch returned (loss={loss:.6g}, "
            f"accuracy={acc:.6g}); expected ({ref_loss:.6g}, {ref_acc:.6g}): the per-sample mean "
            "of the losses computed during the epoch, and the fraction of samples predicted right"
        )


@check("train_one_epoch", fresh=_fresh_batches)
def check_train_returns(observe, seed: int = 0, n: int = 26, batch_size: int = 8):
    """Returns (mean loss per sample, accuracy); a short last batch weighs by its size.

    The learning rate is 0, so the returned numbers depend on the averaging alone.
    """
    import torch

    seed, n, batch_size = int(seed), int(n), int(batch_size)
    model = _tiny_mlp(seed, batchnorm=False)
    want_loss, want_acc, mean_of_means = _per_sample_expectations(
        model, _tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss())
    seen = observe(f"{PROBES}.train_run", seed=seed, n=n, batch_size=batch_size, lr=0.0, momentum=0.0,
                   batchnorm=False, start_eval=False)
    loss, acc = _unpack(seen.get("result") if isinstance(seen, dict) else None, "train_one_epoch")
    _explain_means("train_one_epoch", loss, acc, want_loss, want_acc, mean_of_means, n, batch_size)


_EVAL_WHILE_TRAINING = (
    "the model was in evaluation mode while training, so Dropout and BatchNorm behaved as at test "
    "time: call model.train() at the start of train_one_epoch"
)


@check("train_one_epoch", fresh=_fresh_seed)
def check_train_mode(observe, seed: int = 0):
    """The model is in training mode during the epoch (it may be in eval mode when called).

    The model has BatchNorm and is handed over in eval mode. BatchNorm updates its running
    statistics only in training mode, from each batch, so after the epoch they must equal those of
    the reference epoch run here (model.train() at the start, one forward per batch). The learning
    rate is 0, so the optimizer plays no part: a forgotten zero_grad() or step() costs the points of
    check_train_matches, not this one, and the parameters must stay as they were.
    """
    import torch

    seed, n, batch_size = int(seed), 26, 8
    model = _tiny_mlp(seed).eval()
    _reference_train(model, _tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss(), _sgd(model, 0.0, 0.0))
    want = _state_arrays(model)
    seen = observe(f"{PROBES}.train_run", seed=seed, n=n, batch_size=batch_size, lr=0.0, momentum=0.0,
                   start_eval=True)
    # The modes the worker reports only take the point away, with the clearer message; a pass
    # rests on the state, which the worker can only get right by training in training mode.
    modes = _modes(seen, "train_one_epoch")
    if not modes:
        raise AssertionError("train_one_epoch never called the model")
    if not all(training for training, _ in modes):
        raise AssertionError(_EVAL_WHILE_TRAINING)
    if not all(grad for _, grad in modes):
        raise AssertionError("gradients were disabled during training: do not use torch.no_grad() in train_one_epoch")
    state = seen.get("state")
    key = _first_difference(state, want)
    if key is None:
        return
    if not _is_batchnorm_statistic(key):
        raise AssertionError(
            f"the learning rate was 0, yet the parameters changed ({key}): train_one_epoch should "
            "change them only through optimizer.step()"
        )
    untouched = {k: v for k, v in _state_arrays(_tiny_mlp(seed)).items() if _is_batchnorm_statistic(k)}
    if _first_difference(state, untouched) is None:  # BatchNorm never saw a batch in training mode
        raise AssertionError(_EVAL_WHILE_TRAINING)
    batches = -(-n // batch_size)
    counted = next((state.get(k) for k in want if k.endswith("num_batches_tracked")), None)
    if isinstance(counted, np.ndarray) and counted.size == 1 and counted.item() != batches:
        raise AssertionError(
            f"BatchNorm counted {counted.item()} batches during the epoch; the loader has {batches}: call "
            "the model once per batch (a second forward in training mode, e.g. for the accuracy, "
            "updates BatchNorm's running statistics again)"
        )
    raise AssertionError(
        f"after the epoch BatchNorm's running statistics ({key}) differ from the reference's: call "
        "model.train() at the start, then one forward pass per batch, in the loader's order"
    )


# ------------------------------------------------------------------ evaluate


@check("evaluate", fresh=_fresh_batches)
def check_evaluate_matches(observe, seed: int = 0, n: int = 26, batch_size: int = 8):
    """(mean loss per sample, accuracy) in eval mode, equal to the reference's (1e-6)."""
    seed, n, batch_size = int(seed), int(n), int(batch_size)
    _, want_loss, want_acc, mean_of_means = _evaluate_case(seed, n, batch_size, data_seed=seed + 1, warm=True)
    seen = observe(f"{PROBES}.evaluate_run", seed=seed, n=n, batch_size=batch_size, data_seed=seed + 1,
                   dropout=0.5, warm=True)
    loss, acc = _unpack(seen.get("result") if isinstance(seen, dict) else None, "evaluate")
    if not _close(loss, want_loss, 1e-5 * max(1, abs(want_loss))) and not _close(loss, mean_of_means, 1e-5):
        raise AssertionError(
            f"evaluate returned mean loss {loss:.6g}; expected {want_loss:.6g}. Is the model in "
            "evaluation mode (model.eval(): Dropout off, BatchNorm uses its running statistics)?"
        )
    _explain_means("evaluate", loss, acc, want_loss, want_acc, mean_of_means, n, batch_size)


@check("evaluate", fresh=_fresh_seed,
       self_report="no autograd graph and no backward() while evaluating (the grad mode of each "
                   "forward call and the parameters' .grad, as the worker reports them)")
def check_evaluate_mode(observe, seed: int = 0):
    """Eval mode and no autograd graph while evaluating; no parameter gets a .grad.

    The model (Dropout, warmed BatchNorm) is handed over in training mode. Eval mode is a value:
    the returned numbers must be the eval-mode ones computed here and the state must be unchanged.
    Gradients leave no value behind (evaluate does not step), so "no graph, no backward" rests on
    the worker's report: that part may fail the check, never pass it on its own.
    """
    seed, n, batch_size = int(seed), 26, 8
    state, want_loss, want_acc, mean_of_means = _evaluate_case(seed, n, batch_size, data_seed=seed, warm=True)
    seen = observe(f"{PROBES}.evaluate_run", seed=seed, n=n, batch_size=batch_size, data_seed=seed, dropout=0.5,
                   warm=True)
    modes = _modes(seen, "evaluate")
    if not modes:
        raise AssertionError("evaluate never called the model")
    if any(training for training, _ in modes):
        raise AssertionError(
            "the model was in training mode during evaluate (Dropout active, BatchNorm using batch "
            "statistics): call model.eval() first"
        )
    backward = seen.get("grads") is True  # a parameter got a .grad: backward() ran
    if any(grad for _, grad in modes):
        raise AssertionError(
            ("evaluate computed gradients during evaluation: it called backward() (the parameters got "
             "a .grad). Evaluation only measures the model: remove loss.backward() and " if backward else
             "evaluate ran the model with gradients enabled: ")
            + "wrap the loop in `with torch.no_grad():` (no autograd graph: less memory, faster)"
        )
    if seen.get("grads") is not False:
        raise AssertionError("evaluate created parameter gradients (.grad): do not call backward() when evaluating")
    result = seen.get("result")
    if not _shows_evaluation(result, want_loss, want_acc, mean_of_means, n):
        raise AssertionError(
            f"evaluate returned {_pair_text(result)}; in evaluation mode this model gives mean loss "
            f"{want_loss:.6g} and accuracy {want_acc:.6g} on these {n} samples. Call model.eval() "
            "before the loop (Dropout off, BatchNorm uses its running statistics) and return "
            "(mean_loss, accuracy); test_evaluate_matches says more about the numbers"
        )
    _check_unchanged(seen.get("after"), state)


@check("evaluate", fresh=_fresh_seed)
def check_evaluate_changes_nothing(observe, seed: int = 0):
    """Parameters and BatchNorm running statistics are the same after evaluate.

    "The same" means the state built here by the same builder (not what the worker reports as
    "before"), and the returned numbers must be the eval-mode ones: only an evaluate that really
    ran can leave that state behind.
    """
    seed, n, batch_size = int(seed), 26, 8
    state, want_loss, want_acc, mean_of_means = _evaluate_case(seed, n, batch_size, data_seed=seed, warm=True)
    seen = observe(f"{PROBES}.evaluate_run", seed=seed, n=n, batch_size=batch_size, data_seed=seed, dropout=0.5,
                   warm=True)
    _check_unchanged(seen.get("after") if isinstance(seen, dict) else None, state)
    result = seen.get("result")
    if not _shows_evaluation(result, want_loss, want_acc, mean_of_means, n):
        raise AssertionError(
            f"evaluate left the model as it was, but returned {_pair_text(result)}; in evaluation mode "
            f"this model gives mean loss {want_loss:.6g} and accuracy {want_acc:.6g} on these {n} "
            "samples. This test counts once evaluate really evaluates the model: see test_evaluate_matches"
        )
