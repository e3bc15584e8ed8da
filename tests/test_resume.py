"""Training that survives interruption: atomic checkpoints, kill + ``--resume``, NaN loss, bad labels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from skinlab import cli, data
from skinlab.data.cache import TensorBatchLoader
from skinlab.engine import NonFiniteLossError, fit, load_checkpoint, save_checkpoint, train_one_epoch

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread", "private_cache")

@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume-sample") / "ham"
    return data.make_synthetic_ham10000(root, n_images=60, seed=0, image_size=(64, 48), progress=False)


# --------------------------------------------------------------------------- atomic checkpoints


def test_failed_save_keeps_the_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.arange(5.0)}, path)
    before = path.read_bytes()

    def broken_save(obj, fh, *a, **k):
        fh.write(b"half a checkpoint")  # bytes hit the temp file, then the disk "fills up"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({"epoch": 2, "w": torch.zeros(5)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_interrupt_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def interrupted(obj, fh, *a, **k):
        fh.write(b"x" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_damaged_checkpoint_is_named(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=rf"^{path}: cannot read checkpoint"):
        load_checkpoint(path)


# --------------------------------------------------------------------------- kill and resume

# Runs the real CLI, but pauses in the middle of epoch PAUSE_EPOCH (after one optimiser step, so
# the weights in memory are ahead of last.pt) and announces it, so the test can SIGKILL it there.
PAUSING_CLI = """
import os, sys, time
from pathlib import Path
import skinlab.engine as engine
from skinlab import cli

flag, pause_epoch = Path(sys.argv[1]), int(sys.argv[2])
real = engine.train_one_epoch
calls = []

def pausing(model, loader, *args, **kwargs):
    calls.append(1)
    if len(calls) - 1 != pause_epoch:
        return real(model, loader, *args, **kwargs)

    def batches():
        for i, batch in enumerate(loader):
            if i == 1:
                flag.write_text(str(os.getpid()))
                while True:
                    time.sleep(0.2)
            yield batch

    return real(model, batches(), *args, **kwargs)

engine.train_one_epoch = pausing
sys.exit(cli.main(sys.argv[3:]))
"""


def _env(cache: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "SKINLAB_CACHE": str(cache), "PYTHONPATH": str(REPO)}


def _train_args(sample: Path, out: Path, epochs: int = 4) -> list[str]:
    return ["train", "--data", str(sample), "--epochs", str(epochs), "--out", str(out), "--seed", "0",
            "--batch-size", "8", "--no-progress"]


def _without_timing(obj):
    if isinstance(obj, list):
        return [_without_timing(o) for o in obj]
    return {k: v for k, v in obj.items() if k != "seconds"}


@pytest.mark.slow  # three trainings, one killed
def test_killed_run_resumes_to_the_same_result(sample, tmp_path):
    env = _env(tmp_path / "cache")
    full = tmp_path / "full"  # the uninterrupted reference, run side by side with the one we kill
    ref = subprocess.Popen([sys.executable, "-m", "skinlab", *_train_args(sample, full)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run, flag = tmp_path / "run", tmp_path / "paused"
    proc = subprocess.Popen([sys.executable, "-c", PAUSING_CLI, str(flag), "2", *_train_args(sample, run)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # a safety net for a hung child, not a timing assertion
        while not flag.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the training never reached epoch 3"
            time.sleep(0.1)
        history = json.loads((run / "history.json").read_text())
        assert [h["epoch"] for h in history] == [1, 2]  # two epochs saved, the third half done
        assert load_checkpoint(run / "last.pt")["epoch"] == 1
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    ref_out, ref_err = ref.communicate(timeout=600)
    assert ref.returncode == 0, ref_err
    assert not (run / "metrics.json").exists()
    assert not [p for p in run.iterdir() if ".tmp" in p.name]

    resumed = subprocess.run([sys.executable, "-m", "skinlab", *_train_args(sample, run), "--resume"],
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {run / 'last.pt'} after epoch 2" in resumed.stdout
    assert "epoch   1/4" not in resumed.stdout  # epochs 1-2 are not trained again

    for name in ("history.json", "metrics.json"):
        got = json.loads((run / name).read_text())
        want = json.loads((full / name).read_text())
        assert _without_timing(got) == _without_timing(want), name
    assert len(json.loads((run / "history.json").read_text())) == 4
    a, b = load_checkpoint(run / "last.pt")["model"], load_checkpoint(full / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_run_is_not_overwritten_without_resume(sample, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    code = cli.main(_train_args(sample, out, epochs=1))
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"skinlab: error: {out}: a finished run is already here; choose another --out or pass --resume"
    )


# --------------------------------------------------------------------------- NaN loss


def _toy_loaders(n=32, num_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % num_classes
    train = TensorBatchLoader(x, y.numpy(), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = TensorBatchLoader(x[:12], y[:12].numpy(), batch_size=8)
    return train, val


class _ToyNet(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, num_classes)

    def forward(self, x):
        return self.fc(x.float().flatten(1) / 255.0)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = _ToyNet()
    train, val = _toy_loaders()
    epoch_now = {}
    ce = nn.CrossEntropyLoss()

    def criterion(logits, y):  # healthy in epoch 1, NaN from epoch 2 on
        loss = ce(logits, y)
        return loss * float("nan") if epoch_now["epoch"] >= 1 and model.training else loss

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError, match=r"the loss became nan at batch 0; lower the learning rate"):
        fit(model, train, val, criterion, optimizer, epochs=3, device="cpu", out_dir=tmp_path, seed=0,
            progress=False, log=None, on_epoch_start=lambda e: epoch_now.update(epoch=e))
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 0 and len(ckpt["history"]) == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    fresh = _ToyNet()
    fresh.load_state_dict(ckpt["model"])  # the last good weights load
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1
    assert (tmp_path / "best.pt").is_file()


def test_huge_learning_rate_ends_the_cli_with_one_line(sample, tmp_path, capsys):
    code = cli.main([*_train_args(sample, tmp_path / "run", epochs=2), "--lr", "1e6"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith("skinlab: error: epoch 1: the loss became ") and "lower the learning rate" in err[0]
    assert err[0].endswith("no checkpoint was written yet")


# --------------------------------------------------------------------------- labels out of range


@pytest.mark.parametrize("bad", [7, -1])
def test_out_of_range_label_is_caught_on_the_first_batch(bad):
    model = _ToyNet(num_classes=7)
    x = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    y = torch.tensor([0, 1, bad, 2])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=rf"^label {bad} is outside 0..6: the model has 7 outputs$"):
        train_one_epoch(model, [(x, y)], nn.CrossEntropyLoss(), optimizer, "cpu")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # no step taken


def test_pipeline_labels_come_from_classes(sample):
    md = data.load_metadata(sample)
    assert md["label"].between(0, len(data.CLASSES) - 1).all()
    assert (md["label"] == md["dx"].map(data.CLASSES.index)).all()
    assert np.issubdtype(md["label"].dtype, np.integer)
