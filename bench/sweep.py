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

Every figure is scored by ``skinlab.metrics`` and every ensemble is the mean of its runs'
probabilities by ``skinlab.ensemble.mean_probabilities`` (which refuses runs that do not hold the
same images), the path chapter 12 and ``python -m bench.accuracy ensemble`` take too.

``report`` chooses nothing on the test split: the logit-adjustment strength ``tau`` (logits minus
``tau * log(class prior)``, Menon et al. 2021) is the one with the best *validation* balanced accuracy.
Runs named ``NAME_sSEED`` are also summarised per configuration over their seeds (mean, min–max),
and ``--ensemble-by-seed A B C`` scores, for every seed that has all of ``A_sSEED``, ``B_sSEED``,
``C_sSEED`` (same seed, same split), the ensemble of those runs, with a 95 % bootstrap interval
over test lesions, and then the mean and range over the seeds:

    python -m bench.sweep report sweeps/gpu-lite2 --ensemble-by-seed L2_160_e12 L2_192_e12 L2_224_e12
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from skinlab.data import NUM_CLASSES
from skinlab.data.layout import ENV_VAR
from skinlab.ensemble import EnsembleError


def predict_run(run_dir: Path, data: str | None = None, device="auto") -> tuple[dict, object, object]:
    """``(arrays, cfg, device)`` of the finished run ``run_dir``, from its best weights: labels,
    image and lesion ids, and probabilities with and without flip TTA of the validation and test
    splits (the arrays of ``NAME.npz``), its ``TrainConfig`` and the device it was scored on."""
    from skinlab.pipeline import load_run, predict_split

    run = load_run(run_dir, data, device)
    run_cfg, device = run.cfg, run.device
    prepared = run.prepare_data()
    arrays = {}
    for split in ("val", "test"):
        # which images, and of which lesions: ensembles are bootstrapped over lesions
        rows = prepared.metadata.iloc[prepared.index[split]]
        arrays[f"{split}_image_id"] = rows["image_id"].to_numpy(dtype=str)
        arrays[f"{split}_lesion_id"] = rows["lesion_id"].to_numpy(dtype=str)
        for tta in (False, True):
            y, p = predict_split(run, prepared, split, tta=tta)
            arrays[f"{split}_y"] = y
            arrays[f"{split}_p{'_tta' if tta else ''}"] = p
    return arrays, run_cfg, device


def save_predictions(run_dir: Path, out: Path, name: str, data: str | None = None) -> dict:
    """``out/NAME.npz``: the arrays of :func:`predict_run`; returns the run's device and config."""
    arrays, run_cfg, device = predict_run(run_dir, data)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / f"{name}.npz", **arrays)
    return {"device": str(device), "cfg": run_cfg}


def train_one(name: str, cfg: dict, out: Path, threads: int) -> dict:
    import torch

    from skinlab.pipeline import TrainConfig, train

    torch.set_num_threads(threads)
    run_dir = out / name
    t0 = time.perf_counter()
    result = train(TrainConfig(**cfg, out=str(run_dir), progress=False, figures=False))
    seconds = time.perf_counter() - t0
    saved = save_predictions(run_dir, out, name)
    summary = {"name": name, "cfg": cfg, "seconds": round(seconds, 1), "device": saved["device"],
               "best_epoch": result["best_epoch"], "synthetic": result["synthetic"],
               "test": {k: result[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}}
    (out / f"{name}.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def add_runs(run_dirs, out: Path, data: str | None = None) -> list[str]:
    """Bring finished ``skinlab train`` runs into sweep folder ``out`` under their folder names
    (``runs/effl2-128-e10-s0`` -> ``effl2-128-e10-s0``), so that ``report`` scores and ensembles
    them like the sweep's own runs: runs of one seed, ``NAME-sSEED``, share their split."""
    names = []
    for run in map(Path, run_dirs):
        if not (run / "metrics.json").is_file():
            raise SystemExit(f"{run}: not a finished run (no metrics.json)")
        metrics = json.loads((run / "metrics.json").read_text())
        saved = save_predictions(run, out, run.name, data)
        cfg = saved["cfg"]  # the run's configuration as skinlab reads it back (pipeline.load_run)
        summary = {"name": run.name, "cfg": {"model": cfg.model, "image_size": cfg.resolved_image_size(),
                                             "epochs": cfg.epochs, "lr": cfg.lr, "seed": cfg.seed},
                   "seconds": metrics.get("seconds"), "device": saved["device"], "best_epoch": metrics.get("best_epoch"),
                   "synthetic": metrics.get("synthetic", False),
                   "test": {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1") if k in metrics}}
        (out / f"{run.name}.json").write_text(json.dumps(summary, indent=1, default=str))
        names.append(run.name)
    return names


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
    return np.bincount(y, minlength=NUM_CLASSES) / len(y)


def logit_adjust(val_y, val_p, test_p, taus=np.linspace(-1, 2, 61)):
    """(tau, adjusted test predictions): tau maximises validation balanced accuracy."""
    from skinlab.metrics import balanced_accuracy

    log_prior = np.log(_prior(val_y))
    scores = [balanced_accuracy(val_y, (np.log(val_p + 1e-12) - t * log_prior).argmax(1)) for t in taus]
    tau = float(taus[int(np.argmax(scores))])
    return tau, (np.log(test_p + 1e-12) - tau * log_prior).argmax(1)


def _scores(y, pred) -> str:
    from skinlab.metrics import compute_metrics

    m = compute_metrics(y, pred)
    return f"{m['accuracy']:.3f} / {m['balanced_accuracy']:.3f}"


def scores(zs: list, adjust: bool = False, n_boot: int | None = None, tta: bool = True, names=None) -> dict:
    """Validation and test metrics of the mean flip-TTA probabilities (``tta=False``: without
    flips) of the runs ``zs`` (their ``.npz``, or the dicts of :func:`predict_run`; one run scores
    itself), averaged by ``skinlab.ensemble.mean_probabilities`` and scored by
    ``skinlab.metrics.compute_metrics``: ``accuracy``, ``balanced_accuracy``, ``macro_f1``,
    ``per_class_recall``, ``val_accuracy``, ``val_balanced_accuracy``, ``tau``, ``n_test``.
    ``adjust``: logit adjustment with ``tau`` chosen on validation. ``n_boot``: ``ci``, a 95 %
    bootstrap interval of the test figures, resampling lesions (``skinlab.metrics.bootstrap_metrics``),
    where the runs stored their lesion ids. ``names`` name the runs in the error (a
    ``skinlab.ensemble.EnsembleError``, a ``ValueError``) raised when they hold other images."""
    from skinlab.ensemble import mean_probabilities
    from skinlab.metrics import bootstrap_metrics, compute_metrics

    def has(key):
        return all(key in z for z in zs)

    p_key = "_p_tta" if tta else "_p"
    mean = {}
    for split in ("val", "test"):
        try:  # the same images in the same order: the ids where the runs stored them, and the labels
            mean[split] = mean_probabilities(
                [z[f"{split}{p_key}"] for z in zs], labels=[z[f"{split}_y"] for z in zs],
                image_ids=[z[f"{split}_image_id"] for z in zs] if has(f"{split}_image_id") else None, names=names)
        except EnsembleError as exc:
            raise EnsembleError(f"{split} split: {exc}") from None
    val_y, test_y = zs[0]["val_y"], zs[0]["test_y"]
    tau = 0.0
    val_pred, test_pred = mean["val"].argmax(1), mean["test"].argmax(1)
    if adjust:
        tau, test_pred = logit_adjust(val_y, mean["val"], mean["test"])
        val_pred = (np.log(mean["val"] + 1e-12) - tau * np.log(_prior(val_y))).argmax(1)
    test, val = compute_metrics(test_y, test_pred), compute_metrics(val_y, val_pred)
    out = {**{k: test[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "per_class_recall")},
           "val_accuracy": val["accuracy"], "val_balanced_accuracy": val["balanced_accuracy"],
           "tau": tau, "n_test": int(len(test_y))}
    if n_boot and "test_lesion_id" in zs[0]:
        b = bootstrap_metrics(test_y, test_pred, zs[0]["test_lesion_id"], n_boot=n_boot)
        out["ci"] = {k: [round(b[k]["low"], 4), round(b[k]["high"], 4)] for k in ("accuracy", "balanced_accuracy")}
    return out


_SEEDED = re.compile(r"^(?P<base>.+)[_-]s(?P<seed>\d+)$")  # NAME_s0 (grids), NAME-s0 (run folders)


def seeds_of(out: Path, names: list[str]) -> list[int]:
    """The seeds for which every run ``NAME_sSEED`` of ``names`` finished in ``out``."""
    found = None
    for name in names:
        seeds = {int(m["seed"]) for f in out.glob(f"{name}?s*.npz")
                 if (m := _SEEDED.match(f.stem)) and m["base"] == name}
        found = seeds if found is None else found & seeds
    return sorted(found or ())


def run_file(out: Path, name: str, seed: int, suffix: str = ".npz") -> Path:
    """``out/NAME_sSEED.npz`` or, for runs brought in by ``add``, ``out/NAME-sSEED.npz``."""
    for sep in ("_", "-"):
        path = out / f"{name}{sep}s{seed}{suffix}"
        if path.is_file():
            return path
    return out / f"{name}_s{seed}{suffix}"


def spread(values) -> str:
    """``mean (min–max)`` of ``values``, three decimals."""
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.3f} (one seed)"
    return f"{statistics.fmean(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def _seed_summary(out: Path) -> list[str]:
    groups: dict[str, list[int]] = {}
    for f in sorted(out.glob("*.npz")):
        if (m := _SEEDED.match(f.stem)):
            groups.setdefault(m["base"], []).append(int(m["seed"]))
    groups = {b: sorted(s) for b, s in groups.items() if len(s) > 1}
    if not groups:
        return []
    rows = ["", "Per configuration over seeds (flip TTA), mean (min–max):", "",
            "| configuration | seeds | test accuracy | test balanced | + logit adj.: accuracy | + logit adj.: balanced |",
            "|---|---|---|---|---|---|"]
    for base, seeds in groups.items():
        raw = [scores([np.load(run_file(out, base, s))]) for s in seeds]
        adj = [scores([np.load(run_file(out, base, s))], adjust=True) for s in seeds]
        rows.append(f"| {base} | {', '.join(map(str, seeds))} | {spread(r['accuracy'] for r in raw)} | "
                    f"{spread(r['balanced_accuracy'] for r in raw)} | {spread(r['accuracy'] for r in adj)} | "
                    f"{spread(r['balanced_accuracy'] for r in adj)} |")
    return rows


def _ensemble_by_seed(out: Path, names: list[str], n_boot: int = 2000) -> list[str]:
    seeds = seeds_of(out, names)
    if not seeds:
        have = sorted({m["base"] for f in out.glob("*.npz") if (m := _SEEDED.match(f.stem))})
        raise SystemExit(f"no seed has all of {', '.join(n + '_sSEED' for n in names)} in {out}; "
                         f"runs by seed there: {', '.join(have) or 'none'}")
    rows = ["", f"Ensemble of {' + '.join(names)} per seed (flip TTA; 95 % bootstrap interval over test lesions):", "",
            "| seed | test accuracy | test balanced | + logit adj.: accuracy | + logit adj.: balanced | tau |",
            "|---|---|---|---|---|---|"]
    results = []
    for seed in seeds:
        files = [run_file(out, n, seed) for n in names]
        zs = [np.load(f) for f in files]
        stems = [f.stem for f in files]
        raw, adj = scores(zs, n_boot=n_boot, names=stems), scores(zs, adjust=True, n_boot=n_boot, names=stems)
        results.append((raw, adj))

        def cell(r, k):
            ci = r.get("ci", {}).get(k)
            return f"{r[k]:.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else "")
        rows.append(f"| {seed} | {cell(raw, 'accuracy')} | {cell(raw, 'balanced_accuracy')} | "
                    f"{cell(adj, 'accuracy')} | {cell(adj, 'balanced_accuracy')} | {adj['tau']:+.2f} |")
    rows.append(f"| mean (min–max) | {spread(r['accuracy'] for r, _ in results)} | "
                f"{spread(r['balanced_accuracy'] for r, _ in results)} | {spread(a['accuracy'] for _, a in results)} | "
                f"{spread(a['balanced_accuracy'] for _, a in results)} | |")
    return rows


def report(out: Path, ensemble: list[str] | None = None, ensemble_by_seed: list[str] | None = None) -> str:
    if not out.is_dir():
        raise SystemExit(f"{out}: no such sweep folder")
    finished = {f.stem for f in out.glob("*.npz")} & {f.stem for f in out.glob("*.json")}
    if not finished:
        raise SystemExit(f"{out}: no finished run (NAME.json with NAME.npz); run `python -m bench.sweep run` or `add`")
    for name in ensemble or []:
        if name not in finished:
            raise SystemExit(f"--ensemble: no finished run {name} in {out}; finished: {', '.join(sorted(finished))}")
    rows = ["| run | config | seconds | best epoch | test acc / bal | flip TTA | TTA + logit adj. (tau) |",
            "|---|---|---:|---:|---|---|---|"]
    for name in sorted(finished):
        s = json.loads((out / f"{name}.json").read_text())
        z = np.load(out / f"{name}.npz")
        s.setdefault("name", name)
        tau, adj = logit_adjust(z["val_y"], z["val_p_tta"], z["test_p_tta"])
        cfg = ", ".join(f"{k}={v}" for k, v in s.get("cfg", {}).items() if k != "data")
        seconds = "—" if s.get("seconds") is None else f"{s['seconds']:.0f}"
        rows.append(f"| {s['name']} | {cfg} | {seconds} | {s.get('best_epoch')} | "
                    f"{_scores(z['test_y'], z['test_p'].argmax(1))} | {_scores(z['test_y'], z['test_p_tta'].argmax(1))} | "
                    f"{_scores(z['test_y'], adj)} ({tau:+.2f}) |")
    if ensemble:
        zs = [np.load(out / f"{n}.npz") for n in ensemble]
        raw, adj = scores(zs, names=ensemble), scores(zs, adjust=True, names=ensemble)
        rows.append(f"| ensemble of {len(zs)} | {' + '.join(ensemble)} | | | | "
                    f"{raw['accuracy']:.3f} / {raw['balanced_accuracy']:.3f} | "
                    f"{adj['accuracy']:.3f} / {adj['balanced_accuracy']:.3f} ({adj['tau']:+.2f}) |")
    rows += _seed_summary(out)
    if ensemble_by_seed:
        rows += _ensemble_by_seed(out, ensemble_by_seed)
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0].replace("\n", " "))
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,add,report}")
    r = sub.add_parser("run", help="train every configuration of a grid file")
    r.add_argument("grid", type=Path, help="a JSON file of {name: TrainConfig fields} (bench/grids/*.json)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--parallel", type=int, default=1)
    r.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which no run is started and running ones stop")
    r.add_argument("--data", default=None, help=f"dataset folder (default: ${ENV_VAR})")
    r.add_argument("--threads", type=int, default=2, help="torch threads per run")
    o = sub.add_parser("one")  # internal: one configuration, in its own process (run starts these)
    sub._choices_actions = [a for a in sub._choices_actions if a.dest != "one"]  # hidden from --help
    o.add_argument("name")
    o.add_argument("cfg")
    o.add_argument("--out", type=Path, required=True)
    o.add_argument("--threads", type=int, default=2)
    a = sub.add_parser("add", help="bring finished `skinlab train` runs into a sweep folder (for report)")
    a.add_argument("runs", nargs="+", type=Path, help="finished `skinlab train` run folders")
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--data", default=None, help=f"dataset folder (default: the run's, or ${ENV_VAR})")
    rep = sub.add_parser("report", help="markdown table of a sweep folder")
    rep.add_argument("out", type=Path, help="the sweep folder (--out of run / add)")
    rep.add_argument("--ensemble", nargs="+", default=None, help="runs whose mean probabilities to score too")
    rep.add_argument("--ensemble-by-seed", nargs="+", default=None, metavar="NAME",
                     help="for each seed S with every NAME_sS: the ensemble of those runs, then mean and range over seeds")
    args = p.parse_args(argv)
    try:
        return _command(args)
    except EnsembleError as exc:  # a reader's mistake (runs of other splits in one ensemble): one line
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _command(args) -> int:
    if args.command == "run":
        return run_grid(args.grid, args.out, args.parallel, args.deadline, args.data, args.threads)
    if args.command == "add":
        print("added", ", ".join(add_runs(args.runs, args.out, args.data or os.environ.get(ENV_VAR))))
        return 0
    if args.command == "one":
        train_one(args.name, json.loads(args.cfg), args.out, args.threads)
        return 0
    print(report(args.out, args.ensemble, args.ensemble_by_seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
