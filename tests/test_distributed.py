"""Distributed training: the sharding pieces against single-process oracles, then the real
``torchrun --nproc_per_node 2 -m skinlab train`` on CPU (gloo) against a single-process run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from skinlab import distributed
from skinlab.data.cache import TensorBatchLoader
from skinlab.presets import BatchAugment

VENV_BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------- sampler


@pytest.mark.parametrize("n,world", [(10, 2), (11, 2), (7, 3), (5, 1), (1, 4)])
def test_shards_cover_the_epoch_and_have_equal_length(n, world):
    samplers = [distributed.ShardedSampler(n, r, world, seed=3) for r in range(world)]
    for s in samplers:
        s.set_epoch(2)
    shards = [list(s) for s in samplers]
    assert {len(s) for s in shards} == {math.ceil(n / world)} == {len(samplers[0])}
    everything = [i for s in shards for i in s]
    assert set(everything) == set(range(n))  # every item, plus repeats only to even the shards
    assert len(everything) == math.ceil(n / world) * world


def test_world_of_one_draws_the_single_process_order():
    """With one process the sampler gives exactly the order ``fit`` gives a shuffled loader."""
    n, seed, epoch = 37, 5, 4
    s = distributed.ShardedSampler(n, 0, 1, seed=seed)
    s.set_epoch(epoch)
    loader = TensorBatchLoader(torch.zeros(n, 1), torch.arange(n), batch_size=n, shuffle=True)
    loader.generator.manual_seed(seed * 100_003 + epoch)  # what engine.fit does each epoch
    _, labels = next(iter(loader))
    assert list(s) == labels.tolist()


def test_union_of_rank_batches_is_the_global_batch():
    n, world, per_rank = 40, 2, 4
    order = distributed.ShardedSampler(n, 0, 1, seed=1).global_order()
    loaders = [TensorBatchLoader(torch.arange(n)[:, None], torch.arange(n), batch_size=per_rank,
                                 sampler=distributed.ShardedSampler(n, r, world, seed=1)) for r in range(world)]
    for i, batches in enumerate(zip(*loaders)):
        union = sorted(int(v) for _, y in batches for v in y)
        assert union == sorted(order[i * per_rank * world : (i + 1) * per_rank * world].tolist())


def test_epochs_reshuffle_and_seed_matters():
    a = distributed.ShardedSampler(50, 0, 2, seed=0)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(distributed.ShardedSampler(50, 0, 2, seed=1)) != first


def test_sampler_rejects_bad_ranks():
    with pytest.raises(ValueError, match="rank=2, world_size=2"):
        distributed.ShardedSampler(10, 2, 2)


# --------------------------------------------------------------------------- loss and augmentation


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_global_mean_loss_equals_cross_entropy_in_one_process(weighted, smoothing):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(13, 7, generator=g, requires_grad=True)
    y = torch.randint(0, 7, (13,), generator=g)
    w = torch.rand(7, generator=g) + 0.2 if weighted else None
    ours = distributed.GlobalMeanLoss(w, label_smoothing=smoothing)(logits, y)
    ref = nn.CrossEntropyLoss(weight=w, label_smoothing=smoothing)(logits, y)
    torch.testing.assert_close(ours, ref)


def test_global_mean_of_shards_equals_the_weighted_mean_of_the_batch():
    """Averaging each shard's sum / (global weight / world) — what DDP does with the gradients of
    GlobalMeanLoss — is the global weighted mean; averaging per-shard weighted means is not."""
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(8, 7, generator=g), torch.tensor([0, 0, 0, 0, 3, 3, 5, 6])
    w = torch.tensor([0.1, 1, 1, 5, 1, 2, 9.0])
    ref = nn.CrossEntropyLoss(weight=w)(logits, y)
    world, total_w = 2, w[y].sum()
    summed = nn.CrossEntropyLoss(weight=w, reduction="sum")
    shards = [slice(r, None, world) for r in range(world)]
    ours = sum(summed(logits[s], y[s]) * world / total_w for s in shards) / world
    naive = sum(nn.CrossEntropyLoss(weight=w)(logits[s], y[s]) for s in shards) / world
    torch.testing.assert_close(ours, ref)
    assert not torch.isclose(naive, ref)


def test_sharded_augment_matches_the_unsharded_batch():
    """Rank r of N augments image k of its shard exactly as one process augments image k*N + r."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=g)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    whole = BatchAugment(mean, std, train=True)(x, generator=torch.Generator().manual_seed(9))
    world = 3
    for r in range(world):
        part = BatchAugment(mean, std, train=True, shard=(r, world))(x[r::world],
                                                                      generator=torch.Generator().manual_seed(9))
        torch.testing.assert_close(part, whole[r::world])


def test_not_distributed_without_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info, device = distributed.init("cpu")
    assert (info.rank, info.world_size, info.distributed, device) == (0, 1, False, "cpu")
    assert distributed.is_main() and not distributed.is_distributed()


def test_bad_environment_is_named(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        distributed.env_info()


# --------------------------------------------------------------------------- torchrun end to end

# Each rank runs the real CLI (skinlab.cli.main) after installing an audit hook that records every
# file it opens for writing, renames, creates or deletes: the proof that only rank 0 writes.
AUDITED_CLI = textwrap.dedent('''
    import os, sys
    rank = os.environ["RANK"]
    record = open(os.path.join(os.environ["WRITES_DIR"], f"rank{rank}.txt"), "w", buffering=1)

    def hook(event, args):
        if event == "open" and args[0] is not None and not isinstance(args[0], int):
            mode, flags = args[1] or "r", args[2] or 0
            if any(c in str(mode) for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                record.write(f"open {args[0]}\\n")
        elif event == "os.rename":
            record.write(f"rename {args[0]} -> {args[1]}\\n")
        elif event in ("os.mkdir", "os.remove", "shutil.rmtree"):
            record.write(f"{event} {args[0]}\\n")

    sys.addaudithook(hook)
    from skinlab.cli import main
    sys.exit(main())
''')


def _train_args(data: Path, out: Path, batch: int) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--epochs", "4", "--batch-size", str(batch),
            "--lr", "0.003", "--no-progress", "--seed", "0",
            # CPU and gloo on every machine: on a one-GPU machine, "auto" would give rank 1 no GPU.
            "--device", "cpu"]


@pytest.mark.slow
def test_torchrun_two_processes_matches_one_process(tmp_path):
    """2 CPU processes (gloo), per-rank batch B/2, against 1 process with batch B.

    The ranks see the single process's batches (same permutation, interleaved shards), augment
    each image exactly as the single process does and average the gradients of the global
    weighted mean, so the two runs take the same steps up to float summation order. B divides
    the training split here, so no batch is padded (padding is tested on the sampler above).
    Measured: validation losses agree to ~1e-6 after 4 epochs, so the tolerance is 1e-4. For
    scale: with 300 images (odd split, so one image repeated in each epoch's last batch) the same
    comparison already differed by up to 5e-2 — any real change to the steps shows.
    """
    from skinlab.data import load_metadata
    from skinlab.split import split_by_lesion
    from skinlab.data.synthetic import make_synthetic_ham10000

    data = make_synthetic_ham10000(tmp_path / "data", n_images=250, seed=0, image_size=(64, 48), progress=False)
    n_train = int((split_by_lesion(load_metadata(data), seed=0) == "train").sum())
    batch = next((b for b in (32, 40, 20, 16, 34, 44, 22, 28, 18) if n_train % b == 0), None)
    assert batch is not None, f"pick another n_images: the training split has {n_train} images"

    env = {**os.environ, "SKINLAB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(tmp_path), "WRITES_DIR": str(tmp_path), "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(var, None)
    (tmp_path / "audited_cli.py").write_text(AUDITED_CLI)

    single = subprocess.run([sys.executable, "-m", "skinlab", *_train_args(data, tmp_path / "one", batch)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([str(VENV_BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
                          "--log-dir", str(tmp_path / "logs"), "--redirects", "3",
                          "-m", "audited_cli", *_train_args(data, tmp_path / "two", batch)],
                         env=env, capture_output=True, text=True, timeout=300)
    logs = {p.parent.name + "/" + p.name: p.read_text() for p in (tmp_path / "logs").rglob("*.log")}
    assert ddp.returncode == 0, (ddp.stderr[-2000:], logs)

    # Only rank 0 wrote (files, renames, folders) and talked.
    def ours(rank):  # events on the run folders, the dataset and the image cache
        return [e for e in (tmp_path / f"rank{rank}.txt").read_text().splitlines() if str(tmp_path) in e]

    rank0 = "\n".join(ours(0))
    for name in ("config.json", "split.csv", "history.json", "best.pt", "last.pt", "metrics.json"):
        target = tmp_path / "two" / name
        assert f"-> {target}" in rank0 or f"open {target}" in rank0, (name, rank0)
    assert ours(1) == []
    assert "epoch   4/4" in logs["0/stdout.log"]
    assert logs["1/stdout.log"] == ""

    one, two = tmp_path / "one", tmp_path / "two"
    assert json.loads((two / "config.json").read_text())["world_size"] == 2
    assert json.loads((two / "metrics.json").read_text())["world_size"] == 2
    h1 = json.loads((one / "history.json").read_text())
    h2 = json.loads((two / "history.json").read_text())
    assert len(h1) == len(h2) == 4
    # It learns: rank 0's share of the training loss falls, validation beats chance (1/7).
    assert h2[-1]["train_loss"] < h2[0]["train_loss"] - 0.2, h2
    assert max(r["val_balanced_acc"] for r in h2) > 0.25, h2
    for a, b in zip(h1, h2):
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-4, (h1, h2)
        assert abs(a["val_balanced_acc"] - b["val_balanced_acc"]) < 1e-6, (h1, h2)
    m1 = json.loads((one / "metrics.json").read_text())
    m2 = json.loads((two / "metrics.json").read_text())
    assert m1["confusion_matrix"] == m2["confusion_matrix"]
