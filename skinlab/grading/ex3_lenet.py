"""Exercise 3 checks: ``LeNet`` (chapter 6, ``skinlab.models``)."""

from __future__ import annotations

import numpy as np

from .guard import _construct, call, own_work

_LENET_LAYERS = [  # (kind, in, out, kernel), in registration order
    ("Conv2d", 3, 6, 5),
    ("Conv2d", 6, 16, 5),
    ("Linear", 400, 120, None),
    ("Linear", 120, 84, None),
    ("Linear", 84, "num_classes", None),
]
_LENET_SHAPES = ["(B, 6, 28, 28)", "(B, 16, 10, 10)", "(B, 120)", "(B, 84)", "(B, num_classes)"]
_ORDINAL = ["1st", "2nd", "3rd", "4th", "5th", "6th", "7th"]


def lenet_parameter_count(num_classes: int = 7) -> int:
    """Hand count: conv weights k·k·in·out + out biases, linear in·out + out."""
    return (5 * 5 * 3 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * num_classes + num_classes)


def _lenet_layers(model):
    import torch.nn as nn

    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _describe(m):
    import torch.nn as nn

    if isinstance(m, nn.Conv2d):
        return f"Conv2d({m.in_channels}→{m.out_channels}, kernel {m.kernel_size[0]}x{m.kernel_size[1]}, stride {m.stride[0]}, padding {m.padding[0]})"
    return f"Linear({m.in_features}→{m.out_features})"


def check_lenet_layers(LeNet, num_classes: int = 7):
    """Two 5x5 convolutions (3→6, 6→16), then linear 400→120→84→num_classes, each output shaped right."""
    import torch
    import torch.nn as nn

    own_work("LeNet", LeNet)
    model = _construct("LeNet", LeNet, num_classes, _on=f"num_classes={num_classes}")
    layers = _lenet_layers(model)
    if len(layers) != 5:
        raise AssertionError(
            f"LeNet-5 has 2 convolutions and 3 linear layers; yours has {len(layers)} such layers: "
            + ", ".join(_describe(m) for m in layers)
        )
    for i, (m, (kind, cin, cout, k)) in enumerate(zip(layers, _LENET_LAYERS)):
        cout = num_classes if cout == "num_classes" else cout
        ok = type(m).__name__ == kind
        if ok and kind == "Conv2d":
            ok = (m.in_channels, m.out_channels, tuple(m.kernel_size), tuple(m.stride), tuple(m.padding)) == (cin, cout, (k, k), (1, 1), (0, 0))
        elif ok:
            ok = (m.in_features, m.out_features) == (cin, cout)
        if not ok:
            want = (f"Conv2d({cin}→{cout}, kernel {k}x{k}, stride 1, padding 0)" if kind == "Conv2d"
                    else f"Linear({cin}→{cout})")
            extra = " (16 channels x 5 x 5 after the second pooling = 400)" if cin == 400 else ""
            raise AssertionError(f"the {_ORDINAL[i]} layer should be {want}{extra}; yours is {_describe(m)}")
    outputs = {}
    def recorder(i):
        def hook(module, inputs, output):
            outputs.setdefault(i, tuple(output.shape))  # returns None: the output is kept

        return hook

    hooks = [m.register_forward_hook(recorder(i)) for i, m in enumerate(layers)]
    try:
        out = call("LeNet", model, torch.randn(2, 3, 32, 32), _on="a batch of 2 images 3x32x32")
    finally:
        for h in hooks:
            h.remove()
    expected = [(2, 6, 28, 28), (2, 16, 10, 10), (2, 120), (2, 84), (2, num_classes)]
    for i, want in enumerate(expected):
        if outputs.get(i) != want:
            raise AssertionError(
                f"the output of the {_ORDINAL[i]} layer ({_describe(layers[i])}) should have shape "
                f"{_LENET_SHAPES[i].replace('num_classes', str(num_classes))} for B=2; yours is {outputs.get(i)}"
                + (". Did you apply max-pooling (2x2) after each convolution?" if i == 1 else "")
            )
    if tuple(out.shape) != (2, num_classes):
        raise AssertionError(f"the model's output should be (2, {num_classes}); got {tuple(out.shape)}")


def check_lenet_parameters(LeNet):
    """61,751 parameters for 7 classes; which layer is off if not."""
    own_work("LeNet", LeNet)
    model = _construct("LeNet", LeNet, _on="LeNet() with the default num_classes")
    total = sum(p.numel() for p in model.parameters())
    expected = lenet_parameter_count(7)
    if total != expected:
        detail = "; ".join(
            f"{_describe(m)}: {sum(p.numel() for p in m.parameters())}" for m in _lenet_layers(model)
        )
        raise AssertionError(
            f"LeNet() should have {expected:,} parameters (7 classes); yours has {total:,}. "
            f"Per layer: {detail}. Expected: conv 456, conv 2,416, linear 48,120, 10,164, 595."
        )


def check_lenet_output(LeNet, num_classes: int = 7, batch: int = 5):
    """Output (batch, num_classes) on 3x32x32 images, for any num_classes; default 7."""
    import torch

    own_work("LeNet", LeNet)
    if num_classes == 7:
        model = _construct("LeNet", LeNet, _on="LeNet()")
    else:
        model = _construct("LeNet", LeNet, num_classes, _on=f"LeNet({num_classes})")
    out = call("LeNet", model, torch.randn(batch, 3, 32, 32), _on=f"a batch of {batch} images")
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (batch, num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise AssertionError(
            f"LeNet({num_classes}) on a batch of {batch} images should output ({batch}, {num_classes}) "
            f"logits; got {shape}" + (" — use the num_classes argument for the last layer" if num_classes != 7 else "")
        )


def check_lenet_logits(LeNet, seed: int = 0):
    """The model returns logits: no softmax (or log-softmax) at the end."""
    import torch

    own_work("LeNet", LeNet)
    torch.manual_seed(seed)
    model = _construct("LeNet", LeNet, _on="LeNet()")
    out = call("LeNet", model, 3 * torch.randn(8, 3, 32, 32), _on="a batch of 8 images").detach()
    if (out >= 0).all() and torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-4):
        raise AssertionError(
            "every output row is non-negative and sums to 1: your model ends with softmax. Return "
            "the raw scores (logits): nn.CrossEntropyLoss applies log-softmax itself"
        )
    if torch.allclose(out.exp().sum(1), torch.ones(len(out)), atol=1e-4):
        raise AssertionError(
            "your outputs are log-probabilities (they end with log_softmax): return the raw "
            "scores; nn.CrossEntropyLoss applies log-softmax itself"
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


def _params_by_shape(model, num_classes):
    shapes = [(6, 3, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (num_classes, 84), (num_classes,)]
    pool = list(model.parameters())
    chosen = []
    for shape in shapes:
        match = next((p for p in pool if tuple(p.shape) == shape), None)
        if match is None:
            raise AssertionError(
                f"your model has no parameter of shape {shape} (LeNet-5's layers, in order: "
                f"{shapes}): check the layer sizes first"
            )
        pool.remove(match)
        chosen.append(match)
    return chosen


def check_lenet_equivalent(LeNet, seed: int = 0, num_classes: int = 7, batch: int = 4):
    """With the same weights, the student's LeNet computes what the reference LeNet computes (1e-6)."""
    import torch
    from skinlab.models import LeNet as ReferenceLeNet

    own_work("LeNet", LeNet)
    torch.manual_seed(seed)
    model = _construct("LeNet", LeNet, num_classes, _on=f"LeNet({num_classes})")
    params = [p.detach().clone() for p in _params_by_shape(model, num_classes)]
    reference = ReferenceLeNet(num_classes)
    with torch.no_grad():
        for p, value in zip(reference.parameters(), params):
            p.copy_(value)
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    model.eval()
    with torch.no_grad():
        got = call("LeNet", model, x.clone(), _on=f"a batch of {batch} images").detach()
        want = reference.eval()(x.clone())
    if got.shape == want.shape and torch.allclose(got, want, atol=1e-6, rtol=1e-5):
        return
    diff = (got - want).abs().max().item() if got.shape == want.shape else float("nan")
    hint = ""
    with torch.no_grad():
        names = ["first convolution", "second convolution", "first linear layer", "second linear layer"]
        for i in range(4):
            relus = tuple(j != i for j in range(4))
            if got.shape == want.shape and torch.allclose(got, _lenet_forward(params, x, relus), atol=1e-5):
                hint = f" Your network has no ReLU after the {names[i]}."
        if got.shape == want.shape and torch.allclose(got, _lenet_forward(params, x, pool="avg"), atol=1e-5):
            hint = " You used average pooling; LeNet here uses max-pooling (nn.MaxPool2d(2))."
        if got.shape == want.shape and torch.allclose(got, torch.softmax(want, 1), atol=1e-5):
            hint = " Your model ends with softmax; return logits."
    raise AssertionError(
        f"with the same weights, your LeNet's outputs differ from LeNet-5's by up to {diff:.3g}. "
        "Check the order conv → ReLU → max-pool (twice), flatten, linear → ReLU, linear → ReLU, "
        "linear (no activation at the end)." + hint
    )
