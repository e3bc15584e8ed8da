# %% [markdown]
# # Exercise 3: LeNet-5 for 32x32 skin images
#
# *This exercise goes with chapter 6 of the skinlab book, [A first network: LeNet](../../book/06_lenet.md) (`book/06_lenet.md` in the repository; built, `_build/html/book/06_lenet.html`). Read it first: it explains what you build here.*
#
# LeNet-5 (LeCun et al., 1998) is the classic small convolutional network: two convolution +
# pooling stages that turn the image into 16 feature maps of 5x5, then three fully connected
# layers down to one score (logit) per class. On HAM10000 resized to 32x32 it reaches about 0.5
# balanced accuracy: a baseline for the transfer-learning models later in the course.
#
# The figure shows the shape of the data after each layer for one 3x32x32 image.

# %%
import matplotlib.pyplot as plt

stages = [
    ("input", "3x32x32"), ("conv 5x5\n+ ReLU", "6x28x28"), ("max-pool 2", "6x14x14"),
    ("conv 5x5\n+ ReLU", "16x10x10"), ("max-pool 2", "16x5x5"), ("flatten", "400"),
    ("linear\n+ ReLU", "120"), ("linear\n+ ReLU", "84"), ("linear", "7 logits"),
]
fig, ax = plt.subplots(figsize=(11, 2.2))
for i, (layer, shape) in enumerate(stages):
    ax.add_patch(plt.Rectangle((i * 1.2, 0), 1.0, 1.0, color="tab:blue" if i < 5 else "tab:orange", alpha=0.3))
    ax.text(i * 1.2 + 0.5, 0.62, layer, ha="center", va="center", fontsize=8)
    ax.text(i * 1.2 + 0.5, 0.2, shape, ha="center", va="center", fontsize=9, weight="bold")
    if i:
        ax.annotate("", xy=(i * 1.2, 0.5), xytext=(i * 1.2 - 0.2, 0.5), arrowprops=dict(arrowstyle="->"))
ax.set_xlim(-0.1, len(stages) * 1.2)
ax.set_ylim(-0.1, 1.1)
ax.axis("off")
ax.set_title("LeNet-5: shapes after each layer (blue: features, orange: classifier)")
plt.show()

# %% [markdown]
# ## Your task
#
# Write the class `LeNet(num_classes=7)`, a `torch.nn.Module` whose `forward` takes a batch
# `(B, 3, 32, 32)` and returns **logits** `(B, num_classes)`:
#
# 1. `nn.Conv2d(3, 6, kernel_size=5)`, ReLU, `nn.MaxPool2d(2)`
# 2. `nn.Conv2d(6, 16, kernel_size=5)`, ReLU, `nn.MaxPool2d(2)`
# 3. flatten to 400 values, `nn.Linear(400, 120)`, ReLU, `nn.Linear(120, 84)`, ReLU,
#    `nn.Linear(84, num_classes)`
#
# Create the layers in `__init__` (as attributes or in `nn.Sequential` blocks) and call them in
# this order in `forward`: the grader follows your forward pass. No softmax at the end:
# `nn.CrossEntropyLoss` applies log-softmax itself. With 7 classes the model has 61,751
# parameters. Do **not** import `skinlab` in your answer (an answer that uses the
# reference `skinlab.models.LeNet` scores 0).

# %% answer grade_id=LeNet
import torch
from torch import nn


class LeNet(nn.Module):
    """LeNet-5 for 3x32x32 images; returns logits (B, num_classes)."""

    def __init__(self, num_classes=7):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(3, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)
        ### END SOLUTION

# %% [markdown]
# Try it (not graded):

# %%
import os

if "NBGRADER_EXECUTION" not in os.environ:  # skipped while grading
    model = LeNet()
    print(model(torch.randn(2, 3, 32, 32)).shape, sum(p.numel() for p in model.parameters()))

# %% [markdown]
# ## Tests
#
# Each test cell is worth the points shown; hidden tests run more inputs when you are graded.

# %% test grade_id=test_lenet_parameters points=2
# 2 points: 61,751 parameters for 7 classes.
from skinlab.grading import check_lenet_parameters

check_lenet_parameters(LeNet)

# %% test grade_id=test_lenet_output points=2
# 2 points: logits of shape (B, num_classes), for the default 7 classes and others.
from skinlab.grading import check_lenet_output

check_lenet_output(LeNet)
check_lenet_output(LeNet, num_classes=2)
### BEGIN HIDDEN TESTS
check_lenet_output(LeNet, num_classes=10, batch=1)
### END HIDDEN TESTS

# %% test grade_id=test_lenet_layers points=2
# 2 points: the layers and the shape of each one's output.
from skinlab.grading import check_lenet_layers

check_lenet_layers(LeNet)
### BEGIN HIDDEN TESTS
check_lenet_layers(LeNet, num_classes=3)
### END HIDDEN TESTS

# %% test grade_id=test_lenet_logits points=1
# 1 point: the model returns logits (no softmax at the end).
from skinlab.grading import check_lenet_logits

check_lenet_logits(LeNet)

# %% test grade_id=test_lenet_equivalent points=3
# 3 points: with the same weights, it computes what LeNet-5 computes.
from skinlab.grading import check_lenet_equivalent

check_lenet_equivalent(LeNet)
### BEGIN HIDDEN TESTS
check_lenet_equivalent(LeNet, seed=1, batch=1)
check_lenet_equivalent(LeNet, seed=2, num_classes=5)
### END HIDDEN TESTS
