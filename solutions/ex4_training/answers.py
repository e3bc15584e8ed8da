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
