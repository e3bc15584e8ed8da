# %% [markdown]
# # Exercise 4: the training loop
#
# *This exercise goes with chapter 8 of the skinlab book, [Training](../../book/08_training.md) (`book/08_training.md` in the repository; built, `_build/html/book/08_training.html`). Read it first: it explains what you build here.*
#
# Training is a loop over mini-batches: forward pass, loss, backward pass, optimiser step.
# Evaluation runs the same forward pass without learning. Four details decide whether the numbers
# you report are right:
#
# * **Zero the gradients** before each backward pass: PyTorch *adds* new gradients to `.grad`.
# * **Modes**: `model.train()` while training (Dropout on, BatchNorm learns batch statistics),
#   `model.eval()` while evaluating (Dropout off, BatchNorm uses its running statistics).
# * **No autograd while evaluating**: `with torch.no_grad():` saves memory and time, and
#   evaluation must change nothing in the model.
# * **Means per sample**: the last batch is usually shorter. The epoch's mean loss is the sum of
#   all per-sample losses divided by the number of samples, so a batch of 2 must weigh 2/26, not
#   1/4 (see the figure: 26 samples in batches of 8). With an unweighted loss, as in the tests, that is
#   the mean of the per-sample losses; with class weights each batch's loss is already a weighted
#   average (chapter 7), and the same sum is then a size-weighted mean of those averages.

# %%
import matplotlib.pyplot as plt
import numpy as np

sizes = np.array([8, 8, 8, 2])
batch_losses = np.array([1.10, 0.95, 0.90, 2.40])  # the short last batch happens to be hard
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(1, 5), batch_losses, width=sizes / 10, color="tab:blue", alpha=0.6)
ax.axhline(batch_losses.mean(), color="tab:red", linestyle="--", label=f"mean of batch means {batch_losses.mean():.3f} (wrong)")
ax.axhline((batch_losses * sizes).sum() / sizes.sum(), color="tab:green", label=f"per-sample mean {(batch_losses * sizes).sum() / sizes.sum():.3f}")
ax.set(xlabel="batch (bar width = batch size)", ylabel="mean loss of the batch", xticks=range(1, 5))
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Your task
#
# Write two functions; `loader` yields `(images, labels)` batches and `device` is a
# `torch.device` (move each batch to it).
#
# `train_one_epoch(model, loader, criterion, optimizer, device)` trains for one pass over
# `loader` and returns `(mean_loss, accuracy)`: the per-sample mean of the losses computed during
# the epoch and the fraction of samples whose argmax prediction was right, as Python floats
# (`.item()`). Put the model in training mode; for each batch: zero the gradients, forward, loss,
# backward, step.
#
# `evaluate(model, loader, criterion, device)` returns `(mean_loss, accuracy)` over `loader` in
# evaluation mode and under `torch.no_grad()`, changing nothing in the model.
#
# Do **not** import `skinlab` in your answers (it holds the reference solution: an answer that
# uses it scores 0).

# %% answer grade_id=train_one_epoch
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    """One pass over loader; returns (mean loss per sample, accuracy)."""
    ### BEGIN SOLUTION
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        logits = model(images)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    return total_loss / seen, correct / seen
    ### END SOLUTION

# %% answer grade_id=evaluate
import torch


def evaluate(model, loader, criterion, device):
    """(mean loss per sample, accuracy) in eval mode, without gradients."""
    ### BEGIN SOLUTION
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            total_loss += criterion(logits, labels).item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
    return total_loss / seen, correct / seen
    ### END SOLUTION

# %% [markdown]
# Try it on random data (not graded):

# %%
import os

from torch.utils.data import DataLoader, TensorDataset

if "NBGRADER_EXECUTION" not in os.environ:  # skipped while grading
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(100, 8), torch.randint(0, 3, (100,)))
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for epoch in range(3):
        print(train_one_epoch(net, DataLoader(data, batch_size=32, shuffle=True), torch.nn.CrossEntropyLoss(), opt, "cpu"),
              evaluate(net, DataLoader(data, batch_size=32), torch.nn.CrossEntropyLoss(), "cpu"))

# %% [markdown]
# ## Tests
#
# Each test cell is worth the points shown; hidden tests run more inputs when you are graded.
# The tests use a tiny network (with BatchNorm and Dropout) on 26 random samples.

# %% test grade_id=test_train_matches points=3
# 3 points: after one epoch the parameters equal the reference's (same start, same batches).
from skinlab.grading import check_train_matches

check_train_matches(train_one_epoch)
### BEGIN HIDDEN TESTS
check_train_matches(train_one_epoch, seed=1, n=33, batch_size=5)
### END HIDDEN TESTS

# %% test grade_id=test_train_returns points=2
# 2 points: returns (per-sample mean loss, accuracy); the short last batch weighs by its size.
from skinlab.grading import check_train_returns

check_train_returns(train_one_epoch)
### BEGIN HIDDEN TESTS
check_train_returns(train_one_epoch, seed=2, n=41, batch_size=16)
### END HIDDEN TESTS

# %% test grade_id=test_train_mode points=1
# 1 point: the model is in training mode during the epoch.
from skinlab.grading import check_train_mode

check_train_mode(train_one_epoch)

# %% test grade_id=test_evaluate_matches points=2
# 2 points: evaluate returns the per-sample mean loss and the accuracy in eval mode.
from skinlab.grading import check_evaluate_matches

check_evaluate_matches(evaluate)
### BEGIN HIDDEN TESTS
check_evaluate_matches(evaluate, seed=3, n=19, batch_size=4)
### END HIDDEN TESTS

# %% test grade_id=test_evaluate_mode points=1
# 1 point: evaluation in eval mode, under torch.no_grad(), without creating gradients.
from skinlab.grading import check_evaluate_mode

check_evaluate_mode(evaluate)

# %% test grade_id=test_evaluate_changes_nothing points=1
# 1 point: evaluate changes no parameter and no BatchNorm statistic.
from skinlab.grading import check_evaluate_changes_nothing

check_evaluate_changes_nothing(evaluate)
