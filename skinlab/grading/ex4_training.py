"""Exercise 4 checks: ``train_one_epoch`` and ``evaluate`` (chapter 8, ``skinlab.engine``)."""

from __future__ import annotations

import copy

import numpy as np

from .guard import _construct, call, own_work

def _tiny_mlp(seed: int, dropout: float = 0.0, batchnorm: bool = True):
    """8 → 16 → 3 MLP, optionally with BatchNorm and Dropout, seeded."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    layers = [nn.Linear(8, 16)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(16, 3))
    return nn.Sequential(*layers)


def _tiny_loader(seed: int, n: int = 26, batch_size: int = 8):
    """A DataLoader in a fixed order (no shuffling): n samples, a short last batch."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)


def _as_number(value, what: str, name: str) -> float:
    import numbers

    import torch

    if isinstance(value, torch.Tensor):
        raise AssertionError(
            f"{name} should return Python numbers; its {what} is a tensor ({value!r}): use .item()"
        )
    if not isinstance(value, numbers.Real):
        raise AssertionError(f"{name} should return (mean_loss, accuracy) as numbers; its {what} is {value!r}")
    return float(value)


def _unpack(result, name: str):
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError(f"{name} should return a tuple (mean_loss, accuracy); got {result!r}")
    return _as_number(result[0], "mean loss", name), _as_number(result[1], "accuracy", name)


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


def check_train_matches(train_one_epoch, seed: int = 0, n: int = 26, batch_size: int = 8, momentum: float = 0.9):
    """After one epoch the parameters equal the reference's (same start, same batches; 1e-6)."""
    import torch

    own_work("train_one_epoch", train_one_epoch)

    def setup():
        model = _tiny_mlp(seed)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
        return model, opt

    ref_model, ref_opt = setup()
    ref_loss, ref_acc = _reference_train(ref_model, _tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss(), ref_opt)
    model, opt = setup()
    model.eval()  # the student's function must switch to training mode itself
    result = call("train_one_epoch", train_one_epoch, model, _tiny_loader(seed, n, batch_size),
                  torch.nn.CrossEntropyLoss(), opt, torch.device("cpu"),
                  _on=f"{n} samples in batches of {batch_size}")
    diff = _max_param_diff(model, ref_model)
    if diff > 1e-6:
        fresh, _ = setup()
        if _max_param_diff(model, fresh) == 0:
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
            if _max_param_diff(model, m) < 1e-6:
                raise AssertionError(message)
        raise AssertionError(
            f"after one epoch your parameters differ from the reference's by up to {diff:.3g} "
            "(same model, same batches, same optimizer). Each batch: zero the gradients, forward, "
            "loss, backward, optimizer.step(); one pass over the loader."
        )
    loss, acc = _unpack(result, "train_one_epoch")
    if abs(loss - ref_loss) > 1e-6 * max(1.0, abs(ref_loss)) or abs(acc - ref_acc) > 1e-6:
        raise AssertionError(
            f"the parameters are right, but train_one_epoch returned (loss={loss:.6g}, "
            f"accuracy={acc:.6g}); expected ({ref_loss:.6g}, {ref_acc:.6g}): the per-sample mean "
            "of the losses computed during the epoch, and the fraction of samples predicted right"
        )


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


def _explain_means(name, loss, acc, want_loss, want_acc, mean_of_means, n, batch_size):
    if abs(loss - want_loss) > 1e-5 * max(1, abs(want_loss)):
        hint = ""
        if abs(loss - mean_of_means) < 1e-5:
            last = n % batch_size
            hint = (f" You averaged the batch means; the last batch has only {last} samples, so it "
                    f"must weigh {last}/{n}: add loss.item() * batch_size and divide by {n} at the end.")
        elif abs(loss - want_loss * n) < 1e-3 * n:
            hint = " That is the sum over samples: divide by the number of samples."
        raise AssertionError(
            f"{name} returned mean loss {loss:.6g}; expected {want_loss:.6g} (the mean over the {n} "
            f"samples, batches of {batch_size})." + hint
        )
    if abs(acc - want_acc) > 1e-6:
        hint = " Return a fraction in [0, 1], not a percentage." if abs(acc - 100 * want_acc) < 1e-4 else ""
        raise AssertionError(
            f"{name} returned accuracy {acc:.6g}; expected {want_acc:.6g} (correct predictions / "
            f"{n} samples)." + hint
        )


def check_train_returns(train_one_epoch, seed: int = 0, n: int = 26, batch_size: int = 8):
    """Returns (mean loss per sample, accuracy); a short last batch weighs by its size.

    The learning rate is 0, so the returned numbers depend on the averaging alone.
    """
    import torch

    own_work("train_one_epoch", train_one_epoch)
    model = _tiny_mlp(seed, batchnorm=False)
    want_loss, want_acc, mean_of_means = _per_sample_expectations(model, _tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss())
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    result = call("train_one_epoch", train_one_epoch, model, _tiny_loader(seed, n, batch_size),
                  torch.nn.CrossEntropyLoss(), opt, torch.device("cpu"),
                  _on=f"{n} samples in batches of {batch_size}")
    loss, acc = _unpack(result, "train_one_epoch")
    _explain_means("train_one_epoch", loss, acc, want_loss, want_acc, mean_of_means, n, batch_size)


def _record_modes(model):
    import torch

    seen = []
    handle = model.register_forward_pre_hook(
        lambda mod, inp: seen.append((mod.training, torch.is_grad_enabled()))
    )
    return seen, handle


def check_train_mode(train_one_epoch, seed: int = 0):
    """The model is in training mode during the epoch (it may be in eval mode when called)."""
    import torch

    own_work("train_one_epoch", train_one_epoch)
    model = _tiny_mlp(seed, dropout=0.5).eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    seen, handle = _record_modes(model)
    try:
        call("train_one_epoch", train_one_epoch, model, _tiny_loader(seed), torch.nn.CrossEntropyLoss(),
             opt, torch.device("cpu"), _on="a model that starts in eval mode")
    finally:
        handle.remove()
    if not seen:
        raise AssertionError("train_one_epoch never called the model")
    if not all(training for training, _ in seen):
        raise AssertionError(
            "the model was in evaluation mode while training, so Dropout and BatchNorm behaved as "
            "at test time: call model.train() at the start of train_one_epoch"
        )
    if not all(grad for _, grad in seen):
        raise AssertionError("gradients were disabled during training: do not use torch.no_grad() in train_one_epoch")


def check_evaluate_matches(evaluate, seed: int = 0, n: int = 26, batch_size: int = 8):
    """(mean loss per sample, accuracy) in eval mode, equal to the reference's (1e-6)."""
    import torch
    from skinlab.engine import evaluate as reference_evaluate

    own_work("evaluate", evaluate)
    model = _tiny_mlp(seed, dropout=0.5)
    _warm_batchnorm(model, seed)
    model.train()
    want_loss, want_acc = reference_evaluate(copy.deepcopy(model), _tiny_loader(seed + 1, n, batch_size), torch.nn.CrossEntropyLoss(), torch.device("cpu"))
    probe = copy.deepcopy(model).eval()
    _, _, mean_of_means = _per_sample_expectations(probe, _tiny_loader(seed + 1, n, batch_size), torch.nn.CrossEntropyLoss())
    torch.manual_seed(seed)
    result = call("evaluate", evaluate, model, _tiny_loader(seed + 1, n, batch_size), torch.nn.CrossEntropyLoss(),
                  torch.device("cpu"), _on=f"{n} samples in batches of {batch_size}")
    loss, acc = _unpack(result, "evaluate")
    if abs(loss - want_loss) > 1e-5 * max(1, abs(want_loss)) and abs(loss - mean_of_means) > 1e-5:
        raise AssertionError(
            f"evaluate returned mean loss {loss:.6g}; expected {want_loss:.6g}. Is the model in "
            "evaluation mode (model.eval(): Dropout off, BatchNorm uses its running statistics)?"
        )
    _explain_means("evaluate", loss, acc, want_loss, want_acc, mean_of_means, n, batch_size)


def _warm_batchnorm(model, seed):
    """Give BatchNorm running statistics that differ from the batch statistics."""
    import torch

    g = torch.Generator().manual_seed(seed + 99)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(2 + 3 * torch.randn(16, 8, generator=g))


def check_evaluate_mode(evaluate, seed: int = 0):
    """Eval mode and no autograd graph while evaluating; no parameter gets a .grad."""
    import torch

    own_work("evaluate", evaluate)
    model = _tiny_mlp(seed, dropout=0.5).train()
    seen, handle = _record_modes(model)
    try:
        call("evaluate", evaluate, model, _tiny_loader(seed), torch.nn.CrossEntropyLoss(), torch.device("cpu"),
             _on="a model that starts in training mode")
    finally:
        handle.remove()
    if not seen:
        raise AssertionError("evaluate never called the model")
    if any(training for training, _ in seen):
        raise AssertionError(
            "the model was in training mode during evaluate (Dropout active, BatchNorm using batch "
            "statistics): call model.eval() first"
        )
    if any(grad for _, grad in seen):
        raise AssertionError(
            "evaluate ran the model with gradients enabled: wrap the loop in `with torch.no_grad():` "
            "(no autograd graph: less memory, faster)"
        )
    if any(p.grad is not None for p in model.parameters()):
        raise AssertionError("evaluate created parameter gradients (.grad): do not call backward() when evaluating")


def check_evaluate_changes_nothing(evaluate, seed: int = 0):
    """Parameters and BatchNorm running statistics are the same after evaluate."""
    import torch

    own_work("evaluate", evaluate)
    model = _tiny_mlp(seed, dropout=0.5)
    _warm_batchnorm(model, seed)
    model.train()
    before = copy.deepcopy(model.state_dict())
    call("evaluate", evaluate, model, _tiny_loader(seed), torch.nn.CrossEntropyLoss(), torch.device("cpu"),
         _on="a model with BatchNorm")
    for key, value in model.state_dict().items():
        if not torch.equal(value, before[key]):
            what = ("BatchNorm running statistics" if "running" in key or "num_batches" in key
                    else "parameters")
            raise AssertionError(
                f"evaluate changed the model's {what} ({key}): "
                + ("the model was in training mode, so BatchNorm updated its statistics on the "
                   "evaluation data; call model.eval()" if what != "parameters"
                   else "evaluation must never update the model (no optimizer, no backward)")
            )
