"""Exercise 3 probes: the student's ``LeNet`` built, run and described (worker side, no skinlab).

A model is described by what its ``forward`` does, not by how ``__init__`` declares it: a
process-wide forward hook (removed afterwards) records every ``nn.Conv2d`` / ``nn.Linear`` call in
the order the forward pass makes it, with the layer's hyper-parameters, the shape of its output
and, when the judge needs them, its weight and bias as numpy arrays. The declared layers (in
registration order) come too, for the messages. The judge (``skinlab.grading.ex3_lenet``)
compares all this with the reference.
"""

from __future__ import annotations

from ._base import answer, to_plain, type_name

NAME = "LeNet"


def lenet_input(seed: int, batch: int, scale: float = 1.0):
    """The images a check feeds the model: ``scale`` x N(0, 1), shape (batch, 3, 32, 32)."""
    import torch

    x = torch.randn(int(batch), 3, 32, 32, generator=torch.Generator().manual_seed(int(seed)))
    return x * scale if scale != 1.0 else x


# ------------------------------------------------------------------------------ describing


def _plain(value):
    """An attribute of a layer as plain data: ints, tuples of ints, strings; else its repr."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return value[:100]
    if isinstance(value, (tuple, list)) and len(value) <= 4 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [int(v) for v in value]
    return repr(value)[:100]


def _layer(module) -> dict:
    import torch
    from torch import nn

    bias = getattr(module, "bias", None)
    entry = {"type": type_name(module), "bias": isinstance(bias, torch.Tensor),
             "params": int(sum(p.numel() for p in module.parameters()))}
    if isinstance(module, nn.Conv2d):
        entry.update(kind="Conv2d", **{k: _plain(getattr(module, a, None)) for k, a in (
            ("in", "in_channels"), ("out", "out_channels"), ("kernel", "kernel_size"), ("stride", "stride"),
            ("padding", "padding"), ("dilation", "dilation"), ("groups", "groups"))})
    else:
        entry.update(kind="Linear", **{k: _plain(getattr(module, a, None))
                                       for k, a in (("in", "in_features"), ("out", "out_features"))})
    return entry


def _declared(model) -> list:
    """The model's own Conv2d / Linear layers, in registration order (the order of __init__)."""
    from torch import nn

    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _output(out, values: bool) -> dict:
    import torch

    seen = {"type": type_name(out), "shape": list(out.shape) if isinstance(out, torch.Tensor) else None}
    if values and isinstance(out, torch.Tensor):
        seen["values"] = to_plain(out)
    return seen


def _build(call, answers, args: tuple, on: str, seed: int):
    """Seed torch (the weights are the student's own initialisation) and build the model."""
    import torch

    LeNet = answer(answers, NAME)
    torch.manual_seed(int(seed))
    return call(NAME, LeNet, *args, _on=on)


def _not_module(model):
    import torch

    if isinstance(model, torch.nn.Module):
        return None
    return {"module": False, "type": type_name(model)}


def _forward(call, model, x, on: str, *, weights: bool, values: bool, catch: bool) -> dict:
    """Run ``model(x)`` and record each Conv2d / Linear call in forward order.

    With ``catch``, an exception of the student's forward is reported (``raised``) instead of
    propagated, so the judge can first say which declared layer is wrong. Time limits and the
    in-kernel guard's verdicts (AssertionError) always propagate.
    """
    import torch
    from torch import nn

    declared = _declared(model)
    registered = {id(m): i for i, m in enumerate(declared)}
    modules = []  # the distinct layers called, by identity (never ==: a module may redefine it)
    owners = {}  # id(parameter) -> the number of the first called layer holding it
    calls = []

    def hook(module, inputs, output):
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            return None
        number = next((i for i, m in enumerate(modules) if m is module), None)
        if number is None:
            number = len(modules)
            modules.append(module)
        entry = _layer(module)
        entry["module"] = number
        entry["declared"] = registered.get(id(module), -1)
        entry["shape"] = list(output.shape) if isinstance(output, torch.Tensor) else None
        shares = None
        for attr in ("weight", "bias"):
            p = getattr(module, attr, None)
            if isinstance(p, torch.Tensor):
                owner = owners.setdefault(id(p), number)
                if owner != number and shares is None:
                    shares = owner
                if weights:
                    entry[attr] = to_plain(p)
        entry["shares"] = shares
        calls.append(entry)
        return None

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    seen = {"module": True, "declared": [_layer(m) for m in declared]}
    try:
        out = call(NAME, model, x, _on=on)
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - the student's forward; the judge reports it
        if not catch:
            raise
        seen.update(layers=calls, raised={"type": type_name(exc), "message": str(exc)[:1000]})
        return seen
    finally:
        handle.remove()
        owners.clear()
    seen.update(layers=calls, output=_output(out, values))
    return seen


# ------------------------------------------------------------------------------ probes


def parameters(call, answers) -> dict:
    """``LeNet()``: its parameter count, and its declared layers with theirs."""
    model = _build(call, answers, (), "LeNet() with the default num_classes", 0)
    bad = _not_module(model)
    if bad:
        return bad
    return {"module": True, "total": int(sum(p.numel() for p in model.parameters())),
            "declared": [_layer(m) for m in _declared(model)]}


def output(call, answers, num_classes, batch, seed) -> dict:
    """The type and shape of what the model returns for ``batch`` images."""
    args, on = ((), "LeNet()") if num_classes == 7 else ((num_classes,), f"LeNet({num_classes})")
    model = _build(call, answers, args, on, seed)
    bad = _not_module(model)
    if bad:
        return bad
    out = call(NAME, model, lenet_input(seed, batch), _on=f"a batch of {batch} images")
    return {"module": True, "output": _output(out, values=False)}


def layers(call, answers, num_classes, batch, seed) -> dict:
    """The layers in forward order with their output shapes (no weights)."""
    model = _build(call, answers, (num_classes,), f"num_classes={num_classes}", seed)
    return _not_module(model) or _forward(
        call, model, lenet_input(seed, batch), f"a batch of {batch} images 3x32x32",
        weights=False, values=False, catch=True)


def logits(call, answers, seed, batch) -> dict:
    """What ``LeNet()`` returns for ``batch`` images of scale 3 (softmax or logits?)."""
    model = _build(call, answers, (), "LeNet()", seed)
    bad = _not_module(model)
    if bad:
        return bad
    out = call(NAME, model, lenet_input(seed, batch, scale=3.0), _on=f"a batch of {batch} images")
    return {"module": True, "output": _output(out, values=True)}


def equivalent(call, answers, seed, num_classes, batch) -> dict:
    """Eval mode, no gradients: the layers in forward order with their weights, and the output."""
    import torch

    model = _build(call, answers, (num_classes,), f"LeNet({num_classes})", seed)
    bad = _not_module(model)
    if bad:
        return bad
    call(NAME, model.eval, _on="model.eval()")
    with torch.no_grad():
        # The grader's weights, not the answer's own: an answer could otherwise pick weights
        # (zeros, large biases) under which a missing ReLU changes nothing.
        g = torch.Generator().manual_seed(seed + 7919)
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=g) / fan_in ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.rand(module.bias.shape, generator=g) - 0.5)
        return _forward(call, model, lenet_input(seed, batch), f"a batch of {batch} images",
                        weights=True, values=True, catch=True)
