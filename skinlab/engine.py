"""The training engine: one epoch of training, evaluation, prediction and ``fit``.

``train_one_epoch`` and ``evaluate`` are the functions students write in exercise 4; they take
any ``DataLoader`` of ``(images, labels)``. ``fit`` adds epochs, history, the best checkpoint by
validation balanced accuracy, atomic checkpoints and resuming.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from skinlab.atomic import TEMP_MARK, atomic_write, write_json
from skinlab.metrics import compute_metrics


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: training stops, the last good checkpoint is kept."""


def select_device(pref: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is checked and returned."""
    if isinstance(pref, torch.device):
        return pref
    pref = (pref or "auto").lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {pref}: CUDA is not available on this machine (use auto or cpu)")
    if pref == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: Apple MPS is not available on this machine (use auto or cpu)")
    if not (pref == "cpu" or pref == "mps" or pref.startswith("cuda")):
        raise ValueError(f"--device {pref!r}: expected auto, cpu, cuda, cuda:N or mps")
    return torch.device(pref)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _to_device(batch, device, batch_transform, generator):
    x, y = batch
    x = x.to(device, non_blocking=True)
    y = torch.as_tensor(y).to(device, non_blocking=True)
    if batch_transform is not None:
        x = batch_transform(x, generator=generator) if generator is not None else batch_transform(x)
    return x, y


def _check_labels(y: torch.Tensor, num_outputs: int) -> None:
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_outputs):
        bad = int(y.max()) if int(y.max()) >= num_outputs else int(y.min())
        raise ValueError(
            f"label {bad} is outside 0..{num_outputs - 1}: the model has {num_outputs} outputs"
        )


def grad_scaler(device, amp: bool | str = "auto") -> "torch.amp.GradScaler | None":
    """The loss scaler for mixed-precision training on ``device``, or None: train in float32.

    The one AMP decision of the project (``fit``, hence ``skinlab train``, and the benchmarks ask
    it): float16 autocast with a ``GradScaler`` on CUDA only, where it pays (tensor cores);
    ``amp="auto"`` turns it on there, ``False`` off; on CPU and MPS training stays float32
    whatever ``amp`` says. :func:`train_one_epoch` autocasts exactly when it is given a scaler.
    """
    device = torch.device(device)
    wanted = device.type == "cuda" if amp == "auto" else bool(amp)
    return torch.amp.GradScaler("cuda") if wanted and device.type == "cuda" else None


def make_optimizer(params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The training optimiser: AdamW over ``params`` (parameters, or parameter groups such as
    ``pipeline.param_groups`` gives, each with its own ``lr``). ``skinlab train`` and the
    benchmarks build it here, so a benchmark times the optimiser a run uses. ``weight_decay`` has
    no default here: the run's is ``TrainConfig.weight_decay``'s."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def train_one_epoch(
    model: nn.Module,
    loader,
    criterion,
    optimizer,
    device,
    *,
    batch_transform: Callable | None = None,
    generator: torch.Generator | None = None,
    scaler: "torch.amp.GradScaler | None" = None,
    progress: bool = False,
    desc: str = "train",
) -> tuple[float, float]:
    """Train for one pass over ``loader``; returns ``(mean loss, accuracy)`` per sample.

    A short last batch weighs by its size. ``batch_transform`` (e.g. :class:`~skinlab.presets.BatchAugment`)
    augments whole batches on ``device``. Raises :class:`NonFiniteLossError` on a NaN loss.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch")
    for step, batch in enumerate(bar):
        x, y = _to_device(batch, device, batch_transform, generator)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, scaler is not None):
            logits = model(x)
            if step == 0:
                _check_labels(y, logits.shape[1])
            loss = criterion(logits, y)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the loss became {loss.item()} at batch {step}; lower the learning rate"
            )
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        n = y.shape[0]
        total_loss += loss.item() * n
        correct += (logits.argmax(1) == y).sum().item()
        seen += n
        if progress:
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
    if seen == 0:
        raise ValueError("the training loader yielded no batches")
    return total_loss / seen, correct / seen


@torch.no_grad()
def _run_eval(model, loader, criterion, device, batch_transform, progress, desc, amp=False):
    from tqdm.auto import tqdm

    device = torch.device(device)
    was_training = model.training
    model.eval()
    total_loss, seen = 0.0, 0
    logits_all, labels_all = [], []
    try:
        for batch in tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch"):
            x, y = _to_device(batch, device, batch_transform, None)
            with _autocast(device, amp):
                logits = model(x)
            if criterion is not None:
                total_loss += criterion(logits.float(), y).item() * y.shape[0]
            seen += y.shape[0]
            logits_all.append(logits.float().cpu())
            labels_all.append(y.cpu())
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("the evaluation loader yielded no batches")
    return total_loss / seen, torch.cat(logits_all), torch.cat(labels_all)


def evaluate(model, loader, criterion, device, *, batch_transform=None, progress=False, desc="eval") -> tuple[float, float]:
    """``(mean loss, accuracy)`` per sample in eval mode without gradients.

    Changes no parameter and no BatchNorm statistic; the model's mode is restored afterwards.
    """
    loss, logits, labels = _run_eval(model, loader, criterion, device, batch_transform, progress, desc)
    return loss, (logits.argmax(1) == labels).float().mean().item()


def predict(model, loader, device, *, batch_transform=None, tta_flip: bool = False, progress=False):
    """``(y_true, y_prob)`` as NumPy arrays; ``tta_flip`` averages with horizontally flipped inputs."""
    _, logits, labels = _run_eval(model, loader, None, device, batch_transform, progress, "predict")
    prob = torch.softmax(logits, 1)
    if tta_flip:
        flip = (lambda x, generator=None: batch_transform(x).flip(-1)) if batch_transform else (
            lambda x, generator=None: x.flip(-1)
        )
        _, logits_f, _ = _run_eval(model, loader, None, device, flip, progress, "predict (flipped)")
        prob = (prob + torch.softmax(logits_f, 1)) / 2
    return labels.numpy(), prob.numpy()


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write atomically (:func:`skinlab.atomic.atomic_write`): the old file survives a failure."""
    with atomic_write(path) as fh:
        torch.save(state, fh)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint here")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # a damaged file: say which one
        raise RuntimeError(f"{path}: cannot read checkpoint ({exc})") from None


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


# --------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    train_loader,
    val_loader,
    criterion,
    optimizer,
    epochs: int,
    device=None,
    *,
    scheduler=None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    seed: int = 0,
    train_transform: Callable | None = None,
    eval_transform: Callable | None = None,
    amp: bool | str = "auto",
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    is_main: bool = True,
    extra_state: dict | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
) -> list[dict]:
    """Train for ``epochs``; returns the history (one dict per epoch).

    Keeps the best weights by validation balanced accuracy (``best.pt``) and the latest state
    (``last.pt``) in ``out_dir``, both written atomically at each epoch's end. ``resume=True``
    continues from ``out_dir/last.pt``. Every epoch reseeds its random streams from
    ``(seed, epoch)``, so a resumed run on CPU ends exactly like an uninterrupted one.
    """
    from tqdm.auto import tqdm

    device = select_device(device)
    model.to(device)
    if train_transform is not None and hasattr(train_transform, "to"):
        train_transform.to(device)
    if eval_transform is not None and hasattr(eval_transform, "to"):
        eval_transform.to(device)
    scaler = grad_scaler(device, amp)
    use_amp = scaler is not None  # validation autocasts like training
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and is_main:
        for orphan in out.glob(f".*.pt{TEMP_MARK}*"):  # left by a run killed while saving
            orphan.unlink(missing_ok=True)
    history: list[dict] = []
    best = {"epoch": -1, "val_balanced_acc": -math.inf}
    start = 0
    if resume and out is not None and (out / "last.pt").is_file():
        ckpt = load_checkpoint(out / "last.pt", map_location=device)
        _unwrap(model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        history, best, start = ckpt["history"], ckpt["best"], ckpt["epoch"] + 1
        if log and is_main:
            log(f"resumed from {out / 'last.pt'} after epoch {start}")

    bar = tqdm(range(start, epochs), desc="epochs", unit="epoch", disable=not (progress and is_main),
               initial=start, total=epochs)
    for epoch in bar:
        epoch_seed = seed * 100_003 + epoch
        torch.manual_seed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        if getattr(train_loader, "generator", None) is not None:
            train_loader.generator.manual_seed(epoch_seed)
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        t0 = time.perf_counter()
        try:
            train_loss, train_acc = train_one_epoch(
                model, train_loader, criterion, optimizer, device, batch_transform=train_transform,
                generator=generator, scaler=scaler, progress=progress and is_main,
                desc=f"epoch {epoch + 1}/{epochs}",
            )
        except NonFiniteLossError as exc:
            kept = (f"the last good checkpoint is {out / 'last.pt'} (epoch {epoch})"
                    if out is not None and (out / "last.pt").is_file() else "no checkpoint was written yet")
            raise NonFiniteLossError(f"epoch {epoch + 1}: {exc}; {kept}") from None
        val_loss, logits, labels = _run_eval(
            model, val_loader, criterion, device, eval_transform, False, "val", amp=use_amp
        )
        val_metrics = compute_metrics(labels.numpy(), torch.softmax(logits, 1).numpy())
        if scheduler is not None:
            scheduler.step()
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_metrics["accuracy"],
            "val_balanced_acc": val_metrics["balanced_accuracy"],
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        improved = row["val_balanced_acc"] > best["val_balanced_acc"]
        if improved:
            best = {"epoch": epoch + 1, "val_balanced_acc": row["val_balanced_acc"]}
        if out is not None and is_main:
            state = {
                "model": _unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": epoch,
                "history": history,
                "best": best,
                **(extra_state or {}),
            }
            if improved:
                save_checkpoint({**state, "optimizer": None}, out / "best.pt")
            save_checkpoint(state, out / "last.pt")
            write_json(history, out / "history.json")
        if progress and is_main:
            bar.set_postfix(loss=f"{train_loss:.3f}", val_bacc=f"{row['val_balanced_acc']:.3f}")
        if log and is_main:
            log(
                f"epoch {epoch + 1:>3}/{epochs}  train loss {train_loss:.4f} acc {train_acc:.3f}  "
                f"val loss {val_loss:.4f} acc {row['val_acc']:.3f} bal-acc {row['val_balanced_acc']:.3f}"
                f"{'  *best' if improved else ''}  ({row['seconds']:.1f}s)"
            )
    return history
