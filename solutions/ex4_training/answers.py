"""The bank of answers of ex4_training: what the simulated class, the adversarial class and the
tests hand in, written once (docs/GRADING.md). Instructor-only: nbgrader releases no ``*.py``.
"""


# optimizer.zero_grad() forgotten: gradients accumulate over the epoch.
MISTAKE = {"train_one_epoch": '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    total, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return total / seen, correct / seen
''', "evaluate": None}

TAMPERED_CELL = "test_train_matches"

USES_REFERENCE = {"train_one_epoch": '''
import importlib


def train_one_epoch(model, loader, criterion, optimizer, device):
    engine = importlib.import_module(".".join(["skin" + "lab", "eng" + "ine"]))
    return engine.train_one_epoch(model, loader, criterion, optimizer, device)
''', "evaluate": None}

INFINITE_LOOP = {"train_one_epoch": '''
import itertools


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    total, seen = 0.0, 0
    for x, y in itertools.cycle(loader):  # never ends
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        seen += len(y)
    return total / seen, 0.0
''', "evaluate": None}

RAISES = {"train_one_epoch": '''
def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    return loss.item() / len(loader.dataset.size), 0.0  # AttributeError
''', "evaluate": None}

MISTAKE_FAILS = {"test_train_matches"}


# ---------------------------------------------------------------------------- the adversarial class

# evaluate() replaced by one that ends the process one way or another; train_one_epoch is right.
EVALUATE_BREAKS = {
    "exit_os": "import os\n\ndef evaluate(model, loader, criterion, device):\n    os._exit(3)\n",
    "exit_sys": "import sys\n\ndef evaluate(model, loader, criterion, device):\n    sys.exit(1)\n",
    "kill_kernel": "import os, signal\n\ndef evaluate(model, loader, criterion, device):\n    os.kill(os.getpid(), signal.SIGKILL)\n",
    "swallow_time_limit": ("def evaluate(model, loader, criterion, device):\n    while True:\n        try:\n"
                           "            while True:\n                pass\n        except BaseException:\n            pass\n"),
    "memory_bomb": ("def evaluate(model, loader, criterion, device):\n    hoard = []\n    while True:\n"
                    "        hoard.append(bytearray(256 << 20))\n"),
}

# Correct answers written unlike the reference: full marks.
UNLIKE_REFERENCE = {
    'honest_zero_grad_after_step': {'train_one_epoch': '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    loss_sum, hits, count = 0.0, 0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs)
        batch_loss = criterion(outputs, targets)
        batch_loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += batch_loss.item() * inputs.size(0)
        hits += int((outputs.argmax(dim=1) == targets).sum())
        count += inputs.size(0)
    return loss_sum / count, hits / count
'''},
}

# Training in eval mode and evaluating in train mode, with the worker's probes rewritten to report
# the right modes and no gradients: the modes were believed, now the values decide (2 of 10, the
# averaging cell, as the same answer earns without the forgery).
FORGED_MODES_TRAIN = '''
def train_one_epoch(model, loader, criterion, optimizer, device):
    total, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return total / count, correct / count


def _forge():
    import grading_probes.ex4_training.probes as probes  # only in the grader's worker

    train_run, evaluate_run = probes.train_run, probes.evaluate_run

    def forged_train(*args, **kwargs):
        seen = train_run(*args, **kwargs)
        seen["modes"] = [[True, True] for _ in seen.get("modes", [])]
        return seen

    def forged_evaluate(*args, **kwargs):
        seen = evaluate_run(*args, **kwargs)
        seen["modes"] = [[False, False] for _ in seen.get("modes", [])]
        seen["grads"] = False
        return seen

    probes.train_run, probes.evaluate_run = forged_train, forged_evaluate


try:
    _forge()
except ImportError:
    pass
'''

FORGED_MODES_EVALUATE = '''
def evaluate(model, loader, criterion, device):
    total, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total += criterion(logits, y).item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return total / count, correct / count
'''

# An evaluate that calls loss.backward() (no step): right numbers, the model unchanged; it loses
# the mode cell only, and the feedback says gradients were computed during evaluation.
EVALUATE_BACKWARD = '''
def evaluate(model, loader, criterion, device):
    model.eval()
    total, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return total / count, correct / count
'''


# ---------------------------------------------------------------------------- the similarity report

# Copies of a reference (the solution notebook or the package code the book prints), for the
# similarity report: {name: (the reference it copies, the copy)}.
COPIES = {}

COPIES['solution renamed'] = ("solution", '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    loss_sum, hits, count = 0.0, 0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        out = model(xb)
        batch_loss = criterion(out, yb)
        batch_loss.backward()
        optimizer.step()
        loss_sum += batch_loss.item() * len(yb)
        hits += (out.argmax(1) == yb).sum().item()
        count += len(yb)
    return loss_sum / count, hits / count


import torch


def evaluate(model, loader, criterion, device):
    model.eval()
    loss_sum, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            loss_sum += criterion(out, yb).item() * len(yb)
            hits += (out.argmax(1) == yb).sum().item()
            count += len(yb)
    return loss_sum / count, hits / count
''')

COPIES['solution reordered, split lines'] = ("solution", '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    total_loss = 0.0
    correct = 0
    seen = 0
    model.train()
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        logits = model(images)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
        seen += len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        total_loss += loss.item() * len(labels)
    return total_loss / seen, correct / seen


import torch


def evaluate(model, loader, criterion, device):
    total_loss = 0.0
    correct = 0
    seen = 0
    model.eval()
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            seen += len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            total_loss += criterion(logits, labels).item() * len(labels)
    return total_loss / seen, correct / seen
''')

COPIES['package, trimmed'] = ("skinlab.engine", '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    device = torch.device(device)
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for step, batch in enumerate(loader):
        x, y = batch
        x = x.to(device, non_blocking=True)
        y = torch.as_tensor(y).to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = criterion(logits, y)
        if not torch.isfinite(loss):
            raise RuntimeError(f"the loss became {loss.item()} at batch {step}")
        loss.backward()
        optimizer.step()
        n = y.shape[0]
        total_loss += loss.item() * n
        correct += (logits.argmax(1) == y).sum().item()
        seen += n
    if seen == 0:
        raise ValueError("the training loader yielded no batches")
    return total_loss / seen, correct / seen


import torch


@torch.no_grad()
def evaluate(model, loader, criterion, device):
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total_loss, seen = 0.0, 0
    logits_all, labels_all = [], []
    try:
        for batch in loader:
            x, y = batch
            x = x.to(device, non_blocking=True)
            y = torch.as_tensor(y).to(device, non_blocking=True)
            logits = model(x)
            total_loss += criterion(logits.float(), y).item() * y.shape[0]
            seen += y.shape[0]
            logits_all.append(logits.float().cpu())
            labels_all.append(y.cpu())
    finally:
        model.train(was_training)
    logits, labels = torch.cat(logits_all), torch.cat(labels_all)
    return total_loss / seen, (logits.argmax(1) == labels).float().mean().item()
''')

# Correct answers written unlike the references (and unlike each other): {name: source}.
INDEPENDENT = {}

INDEPENDENT['tutorial style, torch.max'] = '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    running_loss = 0.0
    correct = 0
    total = 0
    for inputs, targets in loader:
        inputs = inputs.to(device)
        targets = targets.to(device)
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * inputs.size(0)
        _, predicted = torch.max(outputs, 1)
        total += targets.size(0)
        correct += predicted.eq(targets).sum().item()
    return running_loss / total, correct / total


import torch


def evaluate(model, loader, criterion, device):
    model.eval()
    running_loss = 0.0
    correct = 0
    total = 0
    with torch.no_grad():
        for inputs, targets in loader:
            inputs = inputs.to(device)
            targets = targets.to(device)
            outputs = model(inputs)
            running_loss += criterion(outputs, targets).item() * inputs.size(0)
            _, predicted = torch.max(outputs, 1)
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()
    return running_loss / total, correct / total
'''

INDEPENDENT['one helper, lists'] = '''
import torch


def _run(model, loader, criterion, device, optimizer=None):
    losses, hits, sizes = [], [], []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        if optimizer is not None:
            optimizer.zero_grad()
        scores = model(x)
        loss = criterion(scores, y)
        if optimizer is not None:
            loss.backward()
            optimizer.step()
        losses.append(loss.item() * y.shape[0])
        hits.append(int((scores.argmax(-1) == y).sum()))
        sizes.append(y.shape[0])
    return sum(losses) / sum(sizes), sum(hits) / sum(sizes)


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    return _run(model, loader, criterion, device, optimizer)


import torch


def evaluate(model, loader, criterion, device):
    model.eval()
    with torch.no_grad():
        return _run(model, loader, criterion, device)
'''

INDEPENDENT['tensor accumulators, sum reduction'] = '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    stats = torch.zeros(3, dtype=torch.float64)
    for batch in loader:
        data, target = (t.to(device) for t in batch)
        optimizer.zero_grad(set_to_none=True)
        pred = model(data)
        batch_loss = criterion(pred, target)
        batch_loss.backward()
        optimizer.step()
        stats += torch.tensor([batch_loss.item() * target.numel(), (pred.argmax(dim=1) == target).sum().item(), target.numel()], dtype=torch.float64)
    return (stats[0] / stats[2]).item(), (stats[1] / stats[2]).item()


import torch


@torch.no_grad()
def evaluate(model, loader, criterion, device):
    model.eval()
    preds, targets, weighted = [], [], 0.0
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        pred = model(data)
        weighted += float(criterion(pred, target)) * target.numel()
        preds.append(pred.argmax(dim=1))
        targets.append(target)
    preds, targets = torch.cat(preds), torch.cat(targets)
    return weighted / len(targets), (preds == targets).double().mean().item()
'''

INDEPENDENT['canonical loop, argmax'] = '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    total_loss = 0
    correct = 0
    n = 0
    for images, labels in loader:
        images = images.to(device)
        labels = labels.to(device)
        optimizer.zero_grad()
        outputs = model(images)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * labels.size(0)
        preds = outputs.argmax(dim=1)
        correct += (preds == labels).sum().item()
        n += labels.size(0)
    return total_loss / n, correct / n


import torch


def evaluate(model, loader, criterion, device):
    model.eval()
    total_loss = 0
    correct = 0
    n = 0
    with torch.no_grad():
        for images, labels in loader:
            images = images.to(device)
            labels = labels.to(device)
            outputs = model(images)
            loss = criterion(outputs, labels)
            total_loss += loss.item() * labels.size(0)
            preds = outputs.argmax(dim=1)
            correct += (preds == labels).sum().item()
            n += labels.size(0)
    return total_loss / n, correct / n
'''

# Written like the solution by someone who never saw it: the course text prescribes each step.
INDEPENDENT['canonical loop, x/y'] = '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    losses = 0.0
    right = 0
    count = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        bs = x.shape[0]
        losses += loss.item() * bs
        right += (logits.argmax(1) == y).sum().item()
        count += bs
    return losses / count, right / count


import torch


def evaluate(model, loader, criterion, device):
    model.eval()
    losses = 0.0
    right = 0
    count = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            bs = x.shape[0]
            losses += criterion(logits, y).item() * bs
            right += (logits.argmax(1) == y).sum().item()
            count += bs
    return losses / count, right / count
'''

# Two students with the same answer, renamed and reformatted: the first independent answer, passed on.

# Two students with the same answer, renamed and reformatted: the first independent answer of
# each exercise, passed on.
PASSED_ON = '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    run = 0.0
    good = 0
    n = 0
    for a, b in loader:
        a = a.to(device)
        b = b.to(device)
        optimizer.zero_grad()
        o = model(a)
        l = criterion(o, b)
        l.backward()
        optimizer.step()
        run += l.item() * a.size(0)
        _, p = torch.max(o, 1)
        n += b.size(0)
        good += p.eq(b).sum().item()
    return run / n, good / n


import torch


def evaluate(model, loader, criterion, device):
    model.eval()
    run = 0.0
    good = 0
    n = 0
    with torch.no_grad():
        for a, b in loader:
            a = a.to(device)
            b = b.to(device)
            o = model(a)
            run += criterion(o, b).item() * a.size(0)
            _, p = torch.max(o, 1)
            n += b.size(0)
            good += p.eq(b).sum().item()
    return run / n, good / n
'''
