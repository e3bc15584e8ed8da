"""Exercise 4 probes: ``train_one_epoch`` and ``evaluate`` on a tiny MLP (worker side, no skinlab).

The input builders live here so that the judge (``skinlab.grading.ex4_training``) builds the very
same model and batches for its reference run: same seed, same code, same numbers.
"""

from __future__ import annotations

import numbers

from ..probe_base import answer, to_plain

TRAIN = "train_one_epoch"
EVALUATE = "evaluate"


# ------------------------------------------------------------------------- inputs (shared)


def tiny_mlp(seed: int, dropout: float = 0.0, batchnorm: bool = True):
    """8 → 16 → 3 MLP, optionally with BatchNorm and Dropout, seeded."""
    import torch
    import torch.nn as nn

    torch.manual_seed(int(seed))
    layers = [nn.Linear(8, 16)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(float(dropout)))
    layers.append(nn.Linear(16, 3))
    return nn.Sequential(*layers)


def tiny_loader(seed: int, n: int = 26, batch_size: int = 8):
    """A DataLoader in a fixed order (no shuffling): n samples, a short last batch."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(int(n), 8, generator=g)
    y = torch.randint(0, 3, (int(n),), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=int(batch_size), shuffle=False)


def warm_batchnorm(model, seed: int):
    """Give BatchNorm running statistics that differ from the batch statistics."""
    import torch

    g = torch.Generator().manual_seed(int(seed) + 99)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(2 + 3 * torch.randn(16, 8, generator=g))
    return model


def sgd(model, lr: float, momentum: float):
    import torch

    return torch.optim.SGD(model.parameters(), lr=float(lr), momentum=float(momentum))


# ------------------------------------------------------------------------- what is reported


def _short_repr(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _describe_item(value) -> dict:
    import torch

    if isinstance(value, torch.Tensor):
        item = {"kind": "tensor", "repr": _short_repr(value)}
        if value.numel() == 1 and not value.is_complex():
            # A returned tensor is a mistake for check_*_matches, but its value still shows the
            # mode the numbers were computed in (check_evaluate_mode, ..._changes_nothing).
            item["value"] = float(value.detach().cpu().reshape(()))
        return item
    if isinstance(value, numbers.Real):
        return {"kind": "number", "value": float(value)}
    return {"kind": "other", "repr": _short_repr(value)}


def describe_result(result) -> dict:
    """A returned ``(mean_loss, accuracy)`` as plain data: numbers, or what was returned instead."""
    if not isinstance(result, tuple) or len(result) != 2:
        return {"tuple": False, "repr": _short_repr(result)}
    return {"tuple": True, "items": [_describe_item(v) for v in result]}


def state_arrays(model) -> dict:
    return {str(k): to_plain(v) for k, v in model.state_dict().items()}


def _record_modes(model):
    """Record (training, grad enabled) at every forward call of ``model`` (inference_mode: no grad)."""
    import torch

    seen = []
    handle = model.register_forward_pre_hook(
        lambda mod, inp: seen.append([bool(mod.training), bool(torch.is_grad_enabled())])
    )
    return seen, handle


# ------------------------------------------------------------------------- probes


def train_run(call, answers, seed, n, batch_size, lr, momentum, dropout=0.0, batchnorm=True,
              start_eval=True) -> dict:
    """One epoch of the student's train_one_epoch on the tiny MLP (fresh SGD optimizer).

    Returns what it returned, the model's state_dict afterwards and the mode of every forward call.
    """
    import torch

    fn = answer(answers, TRAIN)
    model = tiny_mlp(seed, dropout=dropout, batchnorm=batchnorm)
    opt = sgd(model, lr, momentum)
    if start_eval:
        model.eval()  # the student's function must switch to training mode itself
    on = f"{n} samples in batches of {batch_size}" + (" (a model that starts in eval mode)" if start_eval else "")
    seen, handle = _record_modes(model)
    try:
        with torch.enable_grad():  # whatever an earlier call left behind: grad mode starts on
            result = call(TRAIN, fn, model, tiny_loader(seed, n, batch_size), torch.nn.CrossEntropyLoss(),
                          opt, torch.device("cpu"), _on=on)
    finally:
        handle.remove()
    return {"result": call(TRAIN, describe_result, result, _on=on), "state": state_arrays(model),
            "modes": seen}


def evaluate_run(call, answers, seed, n, batch_size, data_seed, dropout=0.5, warm=True) -> dict:
    """The student's evaluate on the tiny MLP (BatchNorm warmed, called in training mode).

    Returns what it returned, the state_dict afterwards, the mode of every forward call and whether
    any parameter has a ``.grad`` afterwards. No "before": the judge builds that state itself.
    """
    import torch

    fn = answer(answers, EVALUATE)
    model = tiny_mlp(seed, dropout=dropout)
    if warm:
        warm_batchnorm(model, seed)
    model.train()
    torch.manual_seed(int(seed))  # Dropout, should the student leave it on: reproducible
    on = f"{n} samples in batches of {batch_size} (a model that starts in training mode)"
    seen, handle = _record_modes(model)
    try:
        with torch.enable_grad():  # evaluate itself must turn gradients off
            result = call(EVALUATE, fn, model, tiny_loader(data_seed, n, batch_size),
                          torch.nn.CrossEntropyLoss(), torch.device("cpu"), _on=on)
    finally:
        handle.remove()
    return {"result": call(EVALUATE, describe_result, result, _on=on), "after": state_arrays(model),
            "modes": seen,
            "grads": any(p.grad is not None for p in model.parameters())}
