"""Training past one process: ``torchrun --nproc_per_node N -m skinlab train ...``.

torchrun starts N copies of the same command and tells each who it is through environment
variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). Each copy
trains a replica of the model on its own shard of every batch; DistributedDataParallel averages
the gradients, so N processes with batch ``B / N`` each take the same steps as one process with
batch ``B``. Only rank 0 writes files and logs.

The pieces here keep that equivalence exact rather than approximate:

- :class:`ShardedSampler` draws the epoch's permutation exactly as a single process does (seeded
  by ``(seed, epoch)``) and gives rank ``r`` the elements ``r, r + N, r + 2N, ...``, so the union of
  the ranks' ``i``-th batches is the single process's ``i``-th batch;
- :class:`GlobalMeanLoss` divides each rank's summed (class-weighted) loss by the weight of the
  whole global batch, so the averaged gradients equal those of the single process's weighted mean;
- :class:`~skinlab.presets.BatchAugment` with ``shard=(rank, N)`` draws the random flips and angles
  for the whole global batch and keeps this rank's share, so every image is augmented the same.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "env_info",
    "is_distributed",
    "is_main",
    "init",
    "cleanup",
    "barrier",
    "main_first",
    "ShardedSampler",
    "GlobalMeanLoss",
    "wrap_model",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r}: expected an integer (set by torchrun)") from None


def env_info() -> DistInfo:
    """Rank, world size and local rank from torchrun's environment (1 process when unset)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} and WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE")
    return DistInfo(rank, world, local)


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main() -> bool:
    """True on rank 0, and in any run that is not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return env_info().rank == 0


def init(device: str | torch.device = "auto", timeout_minutes: float = 60) -> tuple[DistInfo, str | torch.device]:
    """Join the process group torchrun set up; returns ``(info, device)`` for this process.

    Does nothing (returns ``device`` unchanged) when ``WORLD_SIZE`` is 1 or unset. Uses NCCL when
    the run is on CUDA (each process on GPU ``LOCAL_RANK``) and gloo otherwise. On ranks other
    than 0, ``print`` becomes silent (as in torchvision's reference scripts) so that only rank 0
    talks; ``print(..., force=True)`` still prints.
    """
    info = env_info()
    if not info.distributed:
        return info, device
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    pref = str(device).lower()
    use_cuda = torch.cuda.is_available() and (pref == "auto" or pref.startswith("cuda"))
    if use_cuda:
        if info.local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={info.local_rank} but only {torch.cuda.device_count()} GPU(s) here")
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
    elif pref == "auto":
        device = "cpu"  # no CUDA: gloo on CPU (MPS has no collective backend)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo",
                                timeout=datetime.timedelta(minutes=timeout_minutes))
    if not info.is_main:
        _silence_print()
    return info, device


def _silence_print() -> None:
    original = builtins.print
    if getattr(original, "_skinlab_silenced", False):
        return

    def print_on_main(*args, force: bool = False, **kwargs):
        if force:
            original(*args, **kwargs)

    print_on_main._skinlab_silenced = True  # type: ignore[attr-defined]
    print_on_main._skinlab_original = original  # type: ignore[attr-defined]
    builtins.print = print_on_main


def cleanup() -> None:
    """Leave the process group if this process joined one. ``print`` stays silent on ranks
    other than 0: the command's last lines (``run folder: ...``) come after this."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block first, the others after it: for work that fills a shared cache
    (synthetic data, the resized-image cache) and would otherwise be done N times at once."""
    if not is_distributed():
        yield
        return
    if not is_main():
        dist.barrier()
    try:
        yield
    finally:
        if is_main():
            dist.barrier()


class ShardedSampler:
    """Indices of one rank's share of a dataset of ``n`` items, reshuffled every epoch.

    The permutation is ``torch.randperm(n)`` from a generator seeded with
    ``seed * 100_003 + epoch`` (what :func:`skinlab.engine.fit` gives a single process's loader),
    padded by wrapping around to a multiple of ``world_size`` so that every rank runs the same
    number of steps; rank ``r`` takes every ``world_size``-th element starting at ``r``.
    Call :meth:`set_epoch` before each epoch (``fit``'s ``on_epoch_start``).

    With ``weights`` (one per item) the epoch is instead ``n`` draws with replacement, item ``i``
    with probability proportional to ``weights[i]`` (class-balanced sampling, for example).
    """

    def __init__(self, n: int, rank: int = 0, world_size: int = 1, *, shuffle: bool = True, seed: int = 0,
                 weights=None):
        if n < 1:
            raise ValueError(f"ShardedSampler: n={n}, need at least one item")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"ShardedSampler: rank={rank}, world_size={world_size}")
        self.n, self.rank, self.world_size = int(n), int(rank), int(world_size)
        self.shuffle, self.seed, self.epoch = shuffle, int(seed), 0
        self.weights = None
        if weights is not None:
            self.weights = torch.as_tensor(weights, dtype=torch.float64).flatten()
            if len(self.weights) != self.n or not bool((self.weights >= 0).all()) or float(self.weights.sum()) <= 0:
                raise ValueError(f"ShardedSampler: weights must be {self.n} non-negative numbers, not all zero")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_order(self) -> torch.Tensor:
        """The epoch's order over all ranks, padded to a multiple of ``world_size``."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=g)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        total = len(self) * self.world_size
        if total > self.n:  # wrap around (more than once when n < world_size)
            order = order.repeat(-(-total // self.n))[:total]
        return order

    def __iter__(self):
        return iter(self.global_order()[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return -(-self.n // self.world_size)


class GlobalMeanLoss(nn.Module):
    """Cross-entropy whose DDP-averaged gradient equals the single-process weighted mean.

    ``nn.CrossEntropyLoss(weight=w)`` divides by the summed weight of the *local* batch; averaging
    N such means is not the mean over the global batch when classes are weighted. This module
    sums the local loss and divides by ``(global summed weight) / N``, the global sum coming from
    an all-reduce (no gradient flows through it). With N = 1 it equals ``nn.CrossEntropyLoss``.
    """

    def __init__(self, weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.inner = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing, reduction="sum")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = self.inner(logits, target)
        w = self.inner.weight
        local = (w[target].sum() if w is not None else torch.tensor(float(target.numel()), device=total.device))
        denom = local.detach().to(torch.float64)
        world = 1
        if is_distributed():
            dist.all_reduce(denom)
            world = dist.get_world_size()
        return total * (world / denom.clamp_min(1e-12)).to(total.dtype)


def wrap_model(model: nn.Module, device) -> nn.Module:
    """``DistributedDataParallel`` around ``model`` (already on ``device``) in a distributed run."""
    if not is_distributed():
        return model
    device = torch.device(device)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)
