"""Accuracy sweeps: train a grid of ``skinlab train`` configurations, keep their validation and
test probabilities, and report single runs, flip TTA, post-hoc logit adjustment and ensembles.

    HAM10000_DIR=/path/to/ham10000 python -m bench.sweep run bench/grids/lenet.json --out sweeps/lenet
    python -m bench.sweep report sweeps/lenet
    python -m bench.sweep report sweeps/transfer --ensemble E128_e20 E128_e20_lr1e3

``run`` trains ``--parallel`` configurations at once, each in its own process (on a GPU they share
it; on a laptop keep ``--parallel 1``), and stops launching new ones after ``--deadline`` seconds.
Every configuration is a dict of ``TrainConfig`` fields (``bench/grids/*.json``); the run folders,
``NAME.json`` (config, seconds, test metrics) and ``NAME.npz`` (labels and probabilities of the
validation and test splits, with and without flip TTA) land in ``--out``.

``report`` chooses nothing on the test split: the logit-adjustment strength ``tau`` (logits minus
``tau * log(class prior)``, Menon et al. 2021) is the one with the best *validation* balanced accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from skinlab.data.layout import ENV_VAR


def train_one(name: str, cfg: dict, out: Path, threads: int) -> dict:
    import torch

    from skinlab.pipeline import TrainConfig, load_run, predict_split, prepare_data, train

    torch.set_num_threads(threads)
    run_dir = out / name
    t0 = time.perf_counter()
    result = train(TrainConfig(**cfg, out=str(run_dir), progress=False, figures=False))
    seconds = time.perf_counter() - t0
    model, run_cfg, device = load_run(run_dir)
    prepared = prepare_data(run_cfg, log=None)
    arrays = {}
    for split in ("val", "test"):
        for tta in (False, True):
            y, p = predict_split(model, prepared, split, device, tta=tta)
            arrays[f"{split}_y"] = y
            arrays[f"{split}_p{'_tta' if tta else ''}"] = p
    np.savez_compressed(out / f"{name}.npz", **arrays)
    summary = {"name": name, "cfg": cfg, "seconds": round(seconds, 1), "device": str(device),
               "best_epoch": result["best_epoch"], "synthetic": result["synthetic"],
               "test": {k: result[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}}
    (out / f"{name}.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def run_grid(grid_file: Path, out: Path, parallel: int, deadline_s: float, data: str | None, threads: int) -> int:
    grid = json.loads(Path(grid_file).read_text())
    out.mkdir(parents=True, exist_ok=True)
    data = data or os.environ.get(ENV_VAR)
    pending = [(n, c) for n, c in grid.items() if not (out / f"{n}.json").exists()]  # resumable
    stop_at = time.time() + deadline_s
    running: dict[str, subprocess.Popen] = {}
    failed = []
    while (pending or running) and time.time() < stop_at:
        while pending and len(running) < parallel:
            name, cfg = pending.pop(0)
            cfg = {**cfg, "data": cfg.get("data", data)}
            log = open(out / f"{name}.log", "w")
            running[name] = subprocess.Popen(
                [sys.executable, "-m", "bench.sweep", "one", name, json.dumps(cfg), "--out", str(out),
                 "--threads", str(threads)], stdout=log, stderr=subprocess.STDOUT)
            print(f"started {name}", flush=True)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                running.pop(name)
                print(f"{name}: exit {proc.returncode}", flush=True)
                if proc.returncode:
                    failed.append(name)
        time.sleep(1)
    for name, proc in running.items():
        proc.kill()
        print(f"{name}: stopped at the deadline", flush=True)
    return 1 if failed else 0


def _prior(y):
    return np.bincount(y, minlength=7) / len(y)


def logit_adjust(val_y, val_p, test_p, taus=np.linspace(-1, 2, 61)):
    """(tau, adjusted test predictions): tau maximises validation balanced accuracy."""
    from sklearn.metrics import balanced_accuracy_score

    log_prior = np.log(_prior(val_y))
    scores = [balanced_accuracy_score(val_y, (np.log(val_p + 1e-12) - t * log_prior).argmax(1)) for t in taus]
    tau = float(taus[int(np.argmax(scores))])
    return tau, (np.log(test_p + 1e-12) - tau * log_prior).argmax(1)


def _scores(y, pred) -> str:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    return f"{accuracy_score(y, pred):.3f} / {balanced_accuracy_score(y, pred):.3f}"


def report(out: Path, ensemble: list[str] | None = None) -> str:
    rows = ["| run | config | seconds | best epoch | test acc / bal | flip TTA | TTA + logit adj. (tau) |",
            "|---|---|---:|---:|---|---|---|"]
    for f in sorted(out.glob("*.json")):
        s = json.loads(f.read_text())
        z = np.load(out / f"{s['name']}.npz")
        tau, adj = logit_adjust(z["val_y"], z["val_p_tta"], z["test_p_tta"])
        cfg = ", ".join(f"{k}={v}" for k, v in s["cfg"].items() if k != "data")
        rows.append(f"| {s['name']} | {cfg} | {s['seconds']:.0f} | {s['best_epoch']} | "
                    f"{_scores(z['test_y'], z['test_p'].argmax(1))} | {_scores(z['test_y'], z['test_p_tta'].argmax(1))} | "
                    f"{_scores(z['test_y'], adj)} ({tau:+.2f}) |")
    if ensemble:
        zs = [np.load(out / f"{n}.npz") for n in ensemble]
        if any(not np.array_equal(z["test_y"], zs[0]["test_y"]) for z in zs):
            raise SystemExit("the runs of an ensemble must share their split (same seed and fractions)")
        val_p = np.mean([z["val_p_tta"] for z in zs], 0)
        test_p = np.mean([z["test_p_tta"] for z in zs], 0)
        tau, adj = logit_adjust(zs[0]["val_y"], val_p, test_p)
        rows.append(f"| ensemble of {len(zs)} | {' + '.join(ensemble)} | | | | {_scores(zs[0]['test_y'], test_p.argmax(1))} | "
                    f"{_scores(zs[0]['test_y'], adj)} ({tau:+.2f}) |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train every configuration of a grid file")
    r.add_argument("grid", type=Path)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--parallel", type=int, default=1)
    r.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which no run is started and running ones stop")
    r.add_argument("--data", default=None, help=f"dataset folder (default: ${ENV_VAR})")
    r.add_argument("--threads", type=int, default=2, help="torch threads per run")
    o = sub.add_parser("one", help=argparse.SUPPRESS)
    o.add_argument("name")
    o.add_argument("cfg")
    o.add_argument("--out", type=Path, required=True)
    o.add_argument("--threads", type=int, default=2)
    rep = sub.add_parser("report", help="markdown table of a sweep folder")
    rep.add_argument("out", type=Path)
    rep.add_argument("--ensemble", nargs="+", default=None, help="runs whose mean probabilities to score too")
    args = p.parse_args(argv)
    if args.command == "run":
        return run_grid(args.grid, args.out, args.parallel, args.deadline, args.data, args.threads)
    if args.command == "one":
        train_one(args.name, json.loads(args.cfg), args.out, args.threads)
        return 0
    print(report(args.out, args.ensemble))
    return 0


if __name__ == "__main__":
    sys.exit(main())
