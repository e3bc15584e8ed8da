"""Exercise 3 checks: ``LeNet`` (chapter 6, ``skinlab.models``).

Probes (what runs the student's code): ``probes.py`` beside this file. A model is judged by what its
``forward`` does: its Conv2d / Linear layers are matched in the order the forward pass calls
them (declared in ``__init__`` in any order, in ``nn.Sequential`` blocks or not).

Points rest on values this process recomputes (issue #20). The probe puts the grader's weights
(``grader_weights``, drawn from the check's seed) in the layers, in forward order, and reports
each layer's input and output. What the worker says about the layers (kinds, sizes, counts) only
explains a failure; a structural cell passes when the values agree with it: each layer's output
is that layer recomputed here on its input with the grader's weights, the first layer gets the
images, and each layer's input is the previous one's output after an activation (and pooling).
The equivalence cell compares the output with the reference ``skinlab.models.LeNet`` holding the
grader's weights on the same images, never with weights the worker reports.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..checking import check
from .probes import grader_weights, lenet_input  # what both sides build from the seed

PROBES = "ex3_lenet"

_LENET_LAYERS = [  # (kind, in, out, kernel), in forward order
    ("Conv2d", 3, 6, 5),
    ("Conv2d", 6, 16, 5),
    ("Linear", 400, 120, None),
    ("Linear", 120, 84, None),
    ("Linear", 84, "num_classes", None),
]
_LENET_SHAPES = ["(B, 6, 28, 28)", "(B, 16, 10, 10)", "(B, 120)", "(B, 84)", "(B, num_classes)"]


def _ordinal(i: int) -> str:
    n = i + 1
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def lenet_parameter_count(num_classes: int = 7) -> int:
    """Hand count: conv weights k·k·in·out + out biases, linear in·out + out."""
    return (5 * 5 * 3 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * num_classes + num_classes)


# ------------------------------------------------------------------------------ hidden inputs


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(1, 2**31 - 1))


def _fresh_output(rng: np.random.Generator) -> dict:
    return {"num_classes": int(rng.integers(2, 13)), "batch": int(rng.integers(1, 9)), "seed": _seed(rng)}


def _fresh_layers(rng: np.random.Generator) -> dict:
    return {"num_classes": int(rng.integers(2, 13)), "batch": int(rng.integers(1, 7)), "seed": _seed(rng)}


def _fresh_logits(rng: np.random.Generator) -> dict:
    return {"seed": _seed(rng), "batch": int(rng.integers(2, 11))}


def _fresh_equivalent(rng: np.random.Generator) -> dict:
    return {"seed": _seed(rng), "num_classes": int(rng.integers(2, 13)), "batch": int(rng.integers(1, 9))}


# ------------------------------------------------------------------------------ reading a probe's reply


def _first(value):
    return value[0] if isinstance(value, list) and value else value


def _describe(layer: dict) -> str:
    if layer.get("kind") == "Conv2d":
        k = layer.get("kernel")
        kernel = f"{k[0]}x{k[1]}" if isinstance(k, list) and len(k) == 2 else str(k)
        extra = ""
        if layer.get("dilation") not in ([1, 1], 1):
            extra += f", dilation {_first(layer.get('dilation'))}"
        if layer.get("groups") != 1:
            extra += f", groups {layer.get('groups')}"
        return (f"Conv2d({layer.get('in')}→{layer.get('out')}, kernel {kernel}, stride "
                f"{_first(layer.get('stride'))}, padding {_first(layer.get('padding'))}{extra})")
    return f"Linear({layer.get('in')}→{layer.get('out')})"


def _want(i: int, num_classes: int) -> str:
    kind, cin, cout, k = _LENET_LAYERS[i]
    cout = num_classes if cout == "num_classes" else cout
    if kind == "Conv2d":
        return f"Conv2d({cin}→{cout}, kernel {k}x{k}, stride 1, padding 0)"
    return f"Linear({cin}→{cout})"


def _layer_ok(layer: dict, i: int, num_classes: int) -> bool:
    kind, cin, cout, k = _LENET_LAYERS[i]
    cout = num_classes if cout == "num_classes" else cout
    if layer.get("kind") != kind:
        return False
    if kind == "Conv2d":
        padding = [0, 0] if layer.get("padding") == "valid" else layer.get("padding")  # 'valid' is 0
        return ([layer.get(a) for a in ("in", "out", "kernel", "stride", "dilation", "groups")] + [padding]
                == [cin, cout, [k, k], [1, 1], [1, 1], 1, [0, 0]])
    return [layer.get("in"), layer.get("out")] == [cin, cout]


def _wrong_layer(layer: dict, i: int, num_classes: int) -> str:
    extra = " (16 channels x 5 x 5 after the second pooling = 400)" if i == 2 else ""
    return f"the {_ordinal(i)} layer should be {_want(i, num_classes)}{extra}; yours is {_describe(layer)}"


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else str(n)


def _module(seen: dict, on: str) -> None:
    if seen.get("module") is not True:
        raise AssertionError(f"{on} should create a torch.nn.Module; got {seen.get('type')}")


def _declared_problem(declared: list, num_classes: int) -> str | None:
    """What is wrong with the declared layers (kinds matched in declaration order), if anything."""
    convs = [d for d in declared if d.get("kind") == "Conv2d"]
    linears = [d for d in declared if d.get("kind") == "Linear"]
    if (len(convs), len(linears)) != (2, 3):
        return (f"LeNet-5 has 2 convolutions and 3 linear layers; yours has {len(declared)} such layers: "
                + ", ".join(_describe(d) for d in declared))
    for i, layer in enumerate(convs + linears):
        if not _layer_ok(layer, i, num_classes):
            return _wrong_layer(layer, i, num_classes)
    return None


def _forward_raised(seen: dict, num_classes: int, on: str) -> None:
    """The forward pass raised: say which declared layer is wrong, else what it raised."""
    problem = _declared_problem(seen.get("declared") or [], num_classes)
    if problem:
        raise AssertionError(problem)
    info = seen["raised"] if isinstance(seen.get("raised"), dict) else {}
    raise AssertionError(f"your LeNet raised {info.get('type', 'an error')} on {on}: {str(info.get('message', ''))[:1000]}")


def _called_once(layers: list) -> None:
    """Each layer is called once and owns its parameters, or the message that says otherwise."""
    first = {}
    for i, layer in enumerate(layers):
        number = layer.get("module")
        if number in first:
            raise AssertionError(
                f"your forward calls the same layer, {_describe(layer)}, twice (as its {_ordinal(first[number])} "
                f"and {_ordinal(i)} layer): LeNet-5 has five distinct layers, each called once"
            )
        first[number] = i
        if layer.get("shares") is not None:
            owner = next((j for j, other in enumerate(layers) if other.get("module") == layer["shares"]), None)
            which = f"the {_ordinal(owner)} layer's" if owner is not None else "another layer's"
            raise AssertionError(
                f"the {_ordinal(i)} layer ({_describe(layer)}) uses {which} weights: LeNet-5's five layers "
                "each have their own parameters (create each with its own nn.Conv2d / nn.Linear)"
            )


def _forward_layers(seen: dict) -> list:
    layers = seen.get("layers")
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise AssertionError("the grading process sent an unexpected description of your model")
    return layers


def _never_called(seen: dict, layers: list) -> str:
    called = {layer.get("declared") for layer in layers}
    idle = [d for i, d in enumerate(seen.get("declared") or []) if i not in called]
    if not idle:
        return ""
    return (". Declared in __init__ but never called as layer(x) in forward: "
            + ", ".join(_describe(d) for d in idle))


# ------------------------------------------------------------------------------ values

_VALUES_RTOL, _VALUES_ATOL = 1e-4, 1e-5


def _close(got, want) -> bool:
    if not isinstance(got, np.ndarray) or got.dtype.kind != "f" or tuple(got.shape) != tuple(want.shape):
        return False
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    return bool(np.allclose(got.astype(np.float64), want, rtol=_VALUES_RTOL, atol=_VALUES_ATOL * scale))


def _tuple(value, default):
    if isinstance(value, list):
        return tuple(int(v) for v in value)
    return value if value is not None else default


def _weights_agree(layer: dict) -> bool:
    """The weight and bias shapes are those of the layer the description names."""
    wshape, bshape, out = layer.get("weight_shape"), layer.get("bias_shape"), layer.get("out")
    if layer.get("kind") == "Conv2d":
        kernel, groups, cin = layer.get("kernel"), layer.get("groups"), layer.get("in")
        if not (isinstance(kernel, list) and isinstance(groups, int) and isinstance(cin, int) and groups > 0):
            return False
        want = [out, cin // groups, *kernel]
    elif layer.get("kind") == "Linear":
        want = [out, layer.get("in")]
    else:
        return False
    return wshape == want and bshape in (None, [out])


def _recompute(layer: dict, seed: int, index: int):
    """What the ``index``-th layer forward calls computes on the input it got, with the grader's
    weights for that place (None: it cannot, or its description does not match its weights)."""
    import torch
    import torch.nn.functional as F

    x = layer.get("input")
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or not _weights_agree(layer):
        return None
    try:
        weight, bias = grader_weights(seed, index, layer["weight_shape"], layer.get("bias_shape"))
        xt, w = torch.from_numpy(x.astype(np.float64)), weight.double()
        b = None if bias is None else bias.double()
        with torch.no_grad():
            if layer.get("kind") == "Conv2d":
                padding = layer.get("padding")
                padding = padding if isinstance(padding, str) else _tuple(padding, 0)
                out = F.conv2d(xt, w, b, stride=_tuple(layer.get("stride"), 1), padding=padding,
                               dilation=_tuple(layer.get("dilation"), 1), groups=int(layer.get("groups") or 1))
            else:
                out = F.linear(xt, w, b)
        return out.numpy()
    except Exception:  # noqa: BLE001 - a description no layer could have: not confirmed
        return None


def _between(y: np.ndarray):
    """What may lie between a layer's output and the next layer's input: an activation (ReLU,
    tanh, sigmoid or none) and, after a convolution, 2x2 max- or average-pooling, in either order."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(y.astype(np.float64))
    acts = (torch.relu, torch.tanh, torch.sigmoid, lambda v: v)
    pools = (lambda v: F.max_pool2d(v, 2), lambda v: F.avg_pool2d(v, 2)) if t.ndim == 4 else ()
    for act in acts:
        yield act(t)
        for pool in pools:
            yield pool(act(t))
            yield act(pool(t))


def _values_problem(seen: dict, layers: list, seed: int, batch: int, scale: float = 1.0) -> str | None:
    """Why the reported values do not confirm the reported layers, or None when they do."""
    if not layers:
        return "your forward calls no convolution or linear layer"
    images = lenet_input(seed, batch, scale).numpy()
    first = layers[0].get("input")
    # the images as they are (a convolution), or flattened (a first linear layer)
    if not (_close(first, images) or (isinstance(first, np.ndarray) and first.shape == (batch, images[0].size)
                                      and _close(first, images.reshape(batch, -1)))):
        return (f"your first layer ({_describe(layers[0])}) does not receive the images given to the model: "
                "pass the input x to the first convolution as it is")
    for i, layer in enumerate(layers):
        for key in ("input", "output"):  # one row per image: a reshape may not fold images together
            value = layer.get(key)
            if not isinstance(value, np.ndarray) or value.ndim < 2 or value.shape[0] != batch:
                shape = tuple(value.shape) if isinstance(value, np.ndarray) else None
                return (f"the {key} of the {_ordinal(i)} layer your forward calls ({_describe(layer)}) has shape "
                        f"{shape}, not one row per image of the batch of {batch}: flatten with x.flatten(1)")
        want = _recompute(layer, seed, i)
        if want is None or not _close(layer.get("output"), want):
            return (f"the output of the {_ordinal(i)} layer your forward calls ({_describe(layer)}) is not what "
                    "that layer computes on its input with the weights the grader put in it: call each layer "
                    "as layer(x), without changing its weight or bias in forward")
        if i + 1 < len(layers):
            nxt = layers[i + 1].get("input")
            if not isinstance(nxt, np.ndarray) or not any(
                    _close(nxt, (c.reshape(nxt.shape) if c.numel() == nxt.size else c).numpy())
                    for c in _between(layer["output"])):
                return (f"the input of the {_ordinal(i + 1)} layer ({_describe(layers[i + 1])}) is not the output of "
                        f"the {_ordinal(i)} after an activation{' and 2x2 pooling' if i < 2 else ''}: each layer "
                        "must take the previous one's output")
    return None


def _confirm(seen: dict, layers: list, seed: int, batch: int, scale: float = 1.0) -> None:
    problem = _values_problem(seen, layers, seed, batch, scale)
    if problem:
        raise AssertionError(problem)


# ------------------------------------------------------------------------------ checks


@check("LeNet", fresh=_fresh_layers)
def check_lenet_layers(observe, num_classes: int = 7, batch: int = 2, seed: int = 0):
    """Two 5x5 convolutions (3→6, 6→16), then linear 400→120→84→num_classes, in the order the
    forward pass calls them, each output shaped right."""
    num_classes, batch, seed = int(num_classes), int(batch), int(seed)
    seen = observe(f"{PROBES}.layers", num_classes=num_classes, batch=batch, seed=seed)
    _module(seen, "LeNet(...)")
    on = f"a batch of {batch} images 3x32x32"
    if "raised" in seen:
        _forward_raised(seen, num_classes, on)
    layers = _forward_layers(seen)
    for layer in layers:
        if layer.get("declared") == -1:
            raise AssertionError(
                f"your forward calls {_describe(layer)}, which is not registered in your model (kept in a "
                "plain list or dict, or created in forward?): its parameters are not the model's, so "
                "model.parameters() and the optimizer never see them. Assign it as self.name = ..., or "
                "use nn.Sequential / nn.ModuleList"
            )
    _called_once(layers)
    if len(layers) != 5:
        raise AssertionError(
            f"LeNet-5 has 2 convolutions and 3 linear layers; yours has {len(layers)} such layers "
            "(in the order your forward calls them): " + ", ".join(_describe(m) for m in layers)
            + _never_called(seen, layers)
        )
    for i, layer in enumerate(layers):
        if not _layer_ok(layer, i, num_classes):
            raise AssertionError(_wrong_layer(layer, i, num_classes) + " (layers in the order your forward calls them)")
    expected = [[batch, 6, 28, 28], [batch, 16, 10, 10], [batch, 120], [batch, 84], [batch, num_classes]]
    for i, want in enumerate(expected):
        value = layers[i].get("output")  # the shape of the values, not the shape the worker reports
        got = list(value.shape) if isinstance(value, np.ndarray) else layers[i].get("shape")
        if got != want:
            raise AssertionError(
                f"the output of the {_ordinal(i)} layer ({_describe(layers[i])}) should have shape "
                f"{_LENET_SHAPES[i].replace('num_classes', str(num_classes))} for B={batch}; yours is "
                f"{tuple(got) if isinstance(got, list) else got}"
                + (". Did you apply max-pooling (2x2) after each convolution?" if i == 1 else "")
            )
    out = seen.get("output") or {}
    values = out.get("values")
    if not isinstance(values, np.ndarray) or list(values.shape) != [batch, num_classes]:
        shape = tuple(values.shape) if isinstance(values, np.ndarray) else out.get("type")
        raise AssertionError(f"the model's output should be ({batch}, {num_classes}); got {shape}")
    _params_in_forward_order(layers, num_classes)  # LeNet-5's weight and bias shapes, not only its sizes
    _confirm(seen, layers, seed, batch)


def _lenet_structure(seen: dict, num_classes: int, seed: int, batch: int) -> None:
    """The trace shows LeNet-5's five layers (each with its bias), confirmed by their values."""
    if seen.get("module") is not True:
        raise AssertionError(f"LeNet() should create a torch.nn.Module; got {seen.get('type')}")
    if "raised" in seen:
        _forward_raised(seen, num_classes, f"a batch of {batch} images")
    layers = _forward_layers(seen)
    _params_in_forward_order(layers, num_classes)
    _confirm(seen, layers, seed, batch)


@check("LeNet")
def check_lenet_parameters(observe):
    """61,751 parameters for 7 classes; which layer is off if not. The count stands when the
    forward pass computes LeNet-5's five layers (their values, with the grader's weights)."""
    seen = observe(f"{PROBES}.parameters")
    _module(seen, "LeNet(...)")
    total = seen.get("total")
    expected = lenet_parameter_count(7)
    if total != expected:
        detail = "; ".join(f"{_describe(d)}: {_count(d.get('params'))}" for d in seen.get("declared") or [])
        shown = _count(total)
        raise AssertionError(
            f"LeNet() should have {expected:,} parameters (7 classes); yours has {shown}. "
            f"Per layer: {detail}. Expected: conv 456, conv 2,416, linear 48,120, 10,164, 595."
        )
    # The count is the worker's word; it stands when the forward pass computes LeNet-5's layers.
    trace = seen.get("trace") if isinstance(seen.get("trace"), dict) else {}
    try:
        _lenet_structure(trace, 7, 0, 2)
    except AssertionError as exc:
        raise AssertionError(f"LeNet() reports {expected:,} parameters, but its forward pass does not compute "
                             f"LeNet-5's layers: {exc}") from None


@check("LeNet", fresh=_fresh_output)
def check_lenet_output(observe, num_classes: int = 7, batch: int = 5, seed: int = 0):
    """Output (batch, num_classes) on 3x32x32 images, for any num_classes; default 7."""
    num_classes, batch, seed = int(num_classes), int(batch), int(seed)
    seen = observe(f"{PROBES}.output", num_classes=num_classes, batch=batch, seed=seed)
    _module(seen, "LeNet(...)")
    if "raised" in seen:
        _forward_raised(seen, num_classes, f"a batch of {batch} images")
    out = seen.get("output") or {}
    values = out.get("values")
    shape = list(values.shape) if isinstance(values, np.ndarray) else out.get("type")
    if shape != [batch, num_classes]:
        shape = tuple(shape) if isinstance(shape, list) else shape
        raise AssertionError(
            f"LeNet({num_classes}) on a batch of {batch} images should output ({batch}, {num_classes}) "
            f"logits; got {shape}" + (" — use the num_classes argument for the last layer" if num_classes != 7 else "")
        )
    # the output comes from layers that compute on the images (values, not a reported shape)
    _confirm(seen, _forward_layers(seen), seed, batch)


@check("LeNet", fresh=_fresh_logits)
def check_lenet_logits(observe, seed: int = 0, batch: int = 8):
    """The model returns logits: no softmax (or log-softmax) at the end."""
    seed, batch = int(seed), int(batch)
    seen = observe(f"{PROBES}.logits", seed=seed, batch=batch)
    _module(seen, "LeNet(...)")
    if "raised" in seen:
        _forward_raised(seen, 7, f"a batch of {batch} images")
    out = seen.get("output") or {}
    values = out.get("values")
    if not isinstance(values, np.ndarray) or values.ndim != 2 or len(values) != batch:
        shape = tuple(out["shape"]) if isinstance(out.get("shape"), list) else out.get("type")
        raise AssertionError(f"LeNet() on a batch of {batch} images should return logits ({batch}, 7); got {shape}")
    out = values.astype(np.float64)
    if (out >= 0).all() and np.allclose(out.sum(1), 1.0, atol=1e-4):
        raise AssertionError(
            "every output row is non-negative and sums to 1: your model ends with softmax. Return "
            "the raw scores (logits): nn.CrossEntropyLoss applies log-softmax itself"
        )
    with np.errstate(over="ignore"):
        if np.allclose(np.exp(out).sum(1), 1.0, atol=1e-4):
            raise AssertionError(
                "your outputs are log-probabilities (they end with log_softmax): return the raw "
                "scores; nn.CrossEntropyLoss applies log-softmax itself"
            )
    # Raw scores are the last layer's output as it is: confirmed with the grader's weights.
    layers = _forward_layers(seen)
    _confirm(seen, layers, seed, batch, scale=3.0)  # layers that compute on the images, each recomputed
    if not _close(values, layers[-1]["output"]):
        raise AssertionError(
            "your model's output is not the output of its last linear layer as that layer computes it "
            "(with the weights the grader put in it): return the last layer's output unchanged, the logits"
        )


def _lenet_forward(params, x, relus=(True, True, True, True), pool="max"):
    import torch.nn.functional as F

    w1, b1, w2, b2, w3, b3, w4, b4, w5, b5 = params
    act = [F.relu if r else (lambda t: t) for r in relus]
    down = F.max_pool2d if pool == "max" else F.avg_pool2d
    x = down(act[0](F.conv2d(x, w1, b1)), 2)
    x = down(act[1](F.conv2d(x, w2, b2)), 2)
    x = x.flatten(1)
    x = act[2](F.linear(x, w3, b3))
    x = act[3](F.linear(x, w4, b4))
    return F.linear(x, w5, b5)


def _weight_shapes(num_classes: int) -> list:
    return [((6, 3, 5, 5), (6,)), ((16, 6, 5, 5), (16,)), ((120, 400), (120,)), ((84, 120), (84,)),
            ((num_classes, 84), (num_classes,))]


def _params_in_forward_order(layers: list, num_classes: int, seed: int | None = None) -> list:
    """Check that the layers forward calls have LeNet-5's kinds and weight shapes, each with a bias;
    with ``seed``, return [w1, b1, …, w5, b5]: the weights the grader put in them (never the
    worker's report of its weights)."""
    _called_once(layers)
    shapes = _weight_shapes(num_classes)
    listing = ", ".join(f"{_want(i, num_classes)} {w}" for i, (w, _) in enumerate(shapes))
    params = []
    for i, (wshape, bshape) in enumerate(shapes):
        kind = _LENET_LAYERS[i][0]
        if i >= len(layers):
            raise AssertionError(
                f"your forward calls only {len(layers)} convolution / linear layers; LeNet-5's {_ordinal(i)} "
                f"should be {kind} with a weight of shape {wshape} (its layers, in the order forward calls "
                f"them: {listing}): check the layer sizes first"
            )
        layer = layers[i]
        got = layer.get("weight_shape")
        wgot = tuple(got) if isinstance(got, list) else None
        if layer.get("kind") != kind or wgot != wshape:
            raise AssertionError(
                f"the {_ordinal(i)} layer your forward calls is {_describe(layer)} with a weight of shape {wgot}; "
                f"LeNet-5's is {kind} with a weight of shape {wshape} (its layers, in the order forward calls "
                f"them: {listing}): check the layer sizes first"
            )
        if not isinstance(layer.get("bias_shape"), list):
            raise AssertionError(
                f"the {_ordinal(i)} layer ({_describe(layer)}) has no bias: LeNet-5's layers have one "
                "(bias=True, the default)"
            )
        if tuple(layer["bias_shape"]) != bshape:
            raise AssertionError(f"the bias of the {_ordinal(i)} layer ({_describe(layer)}) has shape "
                                 f"{tuple(layer['bias_shape'])}; expected {bshape}")
        if seed is not None:
            params += list(grader_weights(seed, i, wshape, bshape))
    if len(layers) > 5:
        raise AssertionError(
            f"LeNet-5 has 2 convolutions and 3 linear layers; your forward calls {len(layers)}: "
            + ", ".join(_describe(m) for m in layers)
        )
    return params


@check("LeNet", fresh=_fresh_equivalent)
def check_lenet_equivalent(observe, seed: int = 0, num_classes: int = 7, batch: int = 4):
    """With the grader's weights, the student's LeNet computes what the reference LeNet computes
    on the same images (1e-6)."""
    import torch
    from skinlab.models import LeNet as ReferenceLeNet

    seed, num_classes, batch = int(seed), int(num_classes), int(batch)
    seen = observe(f"{PROBES}.equivalent", seed=seed, num_classes=num_classes, batch=batch)
    _module(seen, f"LeNet({num_classes})")
    if "raised" in seen:
        _forward_raised(seen, num_classes, f"a batch of {batch} images")
    params = _params_in_forward_order(_forward_layers(seen), num_classes, seed)
    out = seen.get("output") or {}
    values = out.get("values")
    if not isinstance(values, np.ndarray) or values.shape != (batch, num_classes):
        shape = tuple(out["shape"]) if isinstance(out.get("shape"), list) else out.get("type")
        raise AssertionError(f"LeNet({num_classes}) on a batch of {batch} images should output "
                             f"({batch}, {num_classes}) logits; got {shape}")
    got = torch.from_numpy(np.asarray(values, dtype=np.float32))
    reference = ReferenceLeNet(num_classes).eval()
    layers = [reference.features.conv1, reference.features.conv2, reference.classifier.fc1,
              reference.classifier.fc2, reference.classifier.fc3]
    x = lenet_input(seed, batch)
    with torch.no_grad():
        for layer, w, b in zip(layers, params[0::2], params[1::2]):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
        want = reference(x.clone())
    if torch.allclose(got, want, atol=1e-6, rtol=1e-5):
        return
    diff = (got - want).abs().max().item()
    hint = ""
    with torch.no_grad():
        names = ["first convolution", "second convolution", "first linear layer", "second linear layer"]
        # the fewest missing ReLUs that explain the outputs (one, or several: both linear ones…)
        for missing in sorted((m for m in itertools.product((False, True), repeat=4) if any(m)), key=sum):
            relus = tuple(not m for m in missing)
            if torch.allclose(got, _lenet_forward(params, x, relus), atol=1e-5):
                where = [names[i] for i in range(4) if missing[i]]
                hint = " Your network has no ReLU after the " + ", nor after the ".join(where) + "."
                break
        if torch.allclose(got, _lenet_forward(params, x, pool="avg"), atol=1e-5):
            hint = " You used average pooling; LeNet here uses max-pooling (nn.MaxPool2d(2))."
        if torch.allclose(got, torch.softmax(want, 1), atol=1e-5):
            hint = " Your model ends with softmax; return logits."
    raise AssertionError(
        f"with the same weights, your LeNet's outputs differ from LeNet-5's by up to {diff:.3g}. "
        "Check the order conv → ReLU → max-pool (twice), flatten, linear → ReLU, linear → ReLU, "
        "linear (no activation at the end)." + hint
    )
