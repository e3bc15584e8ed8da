"""Exercise 3 probes: the student's ``LeNet`` built, run and described (worker side, no skinlab).

A model is described by what its ``forward`` does, not by how ``__init__`` declares it: a
process-wide forward hook (removed afterwards) records every ``nn.Conv2d`` / ``nn.Linear`` call in
the order the forward pass makes it, with the layer's hyper-parameters and the shape of its output.
The declared layers (in registration order) come too, for the messages.

Every point rests on values (issue #20): a *trace* first finds the layers in forward order, puts
the grader's weights in them (:func:`grader_weights`, drawn from the request's seed, the same
function the verifier calls), runs the model again and reports each layer's input and output
and the model's output. The judge (``skinlab.grading.ex3_lenet``) recomputes each layer and the
whole LeNet-5 from the images and the weights it chose itself: what this process says about its
layers is only believed where those values confirm it.
"""

from __future__ import annotations

from ..probe_base import answer, to_plain, type_name

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


def _count(parameters) -> int:
    """Parameters counted; a lazy layer's (not yet shaped before its first forward) count 0."""
    from torch.nn.parameter import UninitializedParameter

    return int(sum(p.numel() for p in parameters if not isinstance(p, UninitializedParameter)))


def _layer(module) -> dict:
    import torch
    from torch import nn

    bias = getattr(module, "bias", None)
    entry = {"type": type_name(module), "bias": isinstance(bias, torch.Tensor),
             "params": _count(module.parameters())}
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


def grader_weights(seed: int, index: int, weight_shape, bias_shape):
    """The weight and bias (None without one) the grader puts in the ``index``-th layer that forward
    calls: N(0, 1/fan_in) and U(-0.5, 0.5), from ``seed`` alone. The verifier calls this too."""
    import torch

    g = torch.Generator().manual_seed(int(seed) + 7919 + 104729 * (int(index) + 1))
    weight_shape = tuple(int(n) for n in weight_shape)
    fan_in = max(1, int(torch.tensor(weight_shape[1:]).prod().item()) if len(weight_shape) > 1 else 1)
    weight = torch.randn(weight_shape, generator=g) / fan_in ** 0.5
    bias = None if bias_shape is None else torch.rand(tuple(int(n) for n in bias_shape), generator=g) - 0.5
    return weight, bias


def _shape(value):
    import torch

    return list(value.shape) if isinstance(value, torch.Tensor) else None


def _forward(call, model, x, on: str, *, values: bool, catch: bool, modules: list | None = None) -> dict:
    """Run ``model(x)`` and record each Conv2d / Linear call in forward order.

    With ``values``, each call's input and output (numpy) and the model's output come too.
    ``modules`` (a list) receives the distinct layers called, in order. With ``catch``, an
    exception of the student's forward is reported (``raised``) instead of propagated, so the
    judge can first say which declared layer is wrong. Time limits and the in-kernel guard's
    verdicts (AssertionError) always propagate.
    """
    import torch
    from torch import nn

    declared = _declared(model)
    registered = {id(m): i for i, m in enumerate(declared)}
    modules = [] if modules is None else modules  # distinct layers called, by identity (never ==)
    del modules[:]
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
        entry["shape"] = _shape(output)
        entry["weight_shape"] = _shape(getattr(module, "weight", None))
        entry["bias_shape"] = _shape(getattr(module, "bias", None))
        shares = None
        for attr in ("weight", "bias"):
            p = getattr(module, attr, None)
            if isinstance(p, torch.Tensor):
                owner = owners.setdefault(id(p), number)
                if owner != number and shares is None:
                    shares = owner
        entry["shares"] = shares
        if values:
            entry["input"] = to_plain(inputs[0]) if inputs else None
            entry["output"] = to_plain(output)
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


def _load_grader_weights(modules: list, seed: int) -> None:
    """The grader's weights into the layers, numbered in the order forward first calls them."""
    import torch

    with torch.no_grad():
        for index, module in enumerate(modules):
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            if not isinstance(weight, torch.Tensor):
                continue
            w, b = grader_weights(seed, index, weight.shape, bias.shape if isinstance(bias, torch.Tensor) else None)
            weight.copy_(w)
            if b is not None:
                bias.copy_(b)


def _trace(call, answers, args: tuple, on: str, seed: int, batch: int, *, scale: float = 1.0) -> dict:
    """Build the model, put the grader's weights in the layers forward calls, switch it to eval
    mode and run it again, recording every layer's input and output values."""
    import torch

    model = _build(call, answers, args, on, seed)
    bad = _not_module(model)
    if bad:
        return bad
    x = lenet_input(seed, batch, scale)
    where = f"a batch of {batch} images"
    modules = []
    with torch.no_grad():
        first = _forward(call, model, x.clone(), where, values=False, catch=True, modules=modules)
        if "raised" in first:
            return first
        _load_grader_weights(modules, seed)
        call(NAME, model.eval, _on="model.eval()")
        return _forward(call, model, x.clone(), where, values=True, catch=True)


# ------------------------------------------------------------------------------ probes


def parameters(call, answers) -> dict:
    """``LeNet()``: its parameter count and declared layers, and a trace of it (seed 0, 2 images)."""
    import torch

    model = _build(call, answers, (), "LeNet() with the default num_classes", 0)
    bad = _not_module(model)
    if bad:
        return bad
    with torch.no_grad():  # lazy layers (nn.LazyLinear) take their shapes from a first forward
        call(NAME, model, lenet_input(0, 2), _on="a batch of 2 images")
    seen = {"module": True, "total": _count(model.parameters()),
            "declared": [_layer(m) for m in _declared(model)]}
    seen["trace"] = _trace(call, answers, (), "LeNet() with the default num_classes", 0, 2)
    return seen


def output(call, answers, num_classes, batch, seed) -> dict:
    """What the model returns for ``batch`` images (a trace: the judge wants values behind it)."""
    args, on = ((), "LeNet()") if num_classes == 7 else ((num_classes,), f"LeNet({num_classes})")
    return _trace(call, answers, args, on, seed, batch)


def layers(call, answers, num_classes, batch, seed) -> dict:
    """The layers in forward order, with the grader's weights: their inputs and outputs."""
    return _trace(call, answers, (num_classes,), f"num_classes={num_classes}", seed, batch)


def logits(call, answers, seed, batch) -> dict:
    """``LeNet()`` with the grader's weights on ``batch`` images of scale 3: its layers and output."""
    return _trace(call, answers, (), "LeNet()", seed, batch, scale=3.0)


def equivalent(call, answers, seed, num_classes, batch) -> dict:
    """``LeNet(num_classes)`` with the grader's weights, in eval mode: its layers and output."""
    return _trace(call, answers, (num_classes,), f"LeNet({num_classes})", seed, batch)
