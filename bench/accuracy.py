"""Accuracy figures on the real HAM10000: the table behind the README and docs/PERFORMANCE.md,
recorded from finished runs, with the command of each figure; and an ensemble of finished runs.

    python -m bench.accuracy                       # the table: mean, min-max over seeds, n, command
    python -m bench.accuracy --markdown            # the same as a Markdown table (README, docs)
    python -m bench.accuracy commands              # only the commands
    python -m bench.accuracy curve [KEY ...] [--png F]  # validation balanced accuracy against CPU minutes
    python -m bench.accuracy record KEY runs/a runs/b runs/c --where "2 CPU cores, idle"
    python -m bench.accuracy record-sweep KEY sweeps/gpu-lite2 L2_160_e12 L2_192_e12 --where ... --title ... --run-command ...
    HAM10000_DIR=/path/to/ham10000 python -m bench.accuracy ensemble runs/a runs/b --tta [--logit-adjust]

Every figure is on the test part of the seed's lesion-level split at the default fractions
(``skinlab.split.DEFAULT_FRACTIONS``), which each run looks at once; each run names its split
(``SPLITS``: the StratifiedGroupKFold split, n = 2,000 test images with seed 0, or the greedy
split of runs recorded before 2026-12-08, n = 2,004): the epoch is chosen by validation
balanced accuracy inside ``skinlab train``. ``bench.sweep`` reads the data from ``$HAM10000_DIR``
like ``skinlab train`` does. Recorded runs live in ``bench/results-accuracy.json``
(one entry per figure: its command with ``{seed}``, and per seed the test and validation numbers,
the seconds and where it ran). Commands name the data by ``$HAM10000_DIR``, never by a path.
``ensemble`` scores like ``python -m bench.sweep add`` then ``report --ensemble`` (the same
functions: ``sweep.predict_run`` and ``sweep.scores``), without a sweep folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("results-accuracy.json")

# Which split a recorded run was measured on (its "split" field). The test part, and so every
# figure, moves with it: on the greedy split (skinlab.split.split_by_lesion_greedy, the course's
# split until 2026-12-08) the test part held mostly single-image lesions and LeNet scored about 9
# accuracy points higher than on the StratifiedGroupKFold split (skinlab.split.split_by_lesion).
SPLIT = "stratified-group-kfold"
SPLITS = {SPLIT: "StratifiedGroupKFold split (skinlab.split.split_by_lesion, since 2026-12-08)",
          "greedy": "greedy largest-first split (split_by_lesion_greedy; the course's split until 2026-12-08)"}


def split_of(run: dict) -> str:
    """The split a recorded run was measured on (runs recorded before the field existed: greedy)."""
    return run.get("split", "greedy")


COMMANDS = {
    "lenet-defaults": (
        "LeNet 32 px, CLI defaults (60 epochs, lr 3e-3)",
        "skinlab train --data $HAM10000_DIR --seed {seed} --out runs/lenet-s{seed}"),
    "lenet-sog": (
        "LeNet 32 px, CLI defaults + Shades of Gray colour constancy",
        "skinlab train --data $HAM10000_DIR --color-constancy shades_of_gray --seed {seed} --out runs/lenet-sog-s{seed}"),
    "lenet-crop": (
        "LeNet, 40 px cache, random 32 px crops (centre crop to evaluate)",
        "skinlab train --data $HAM10000_DIR --image-size 40 --crop 32 --seed {seed} --out runs/lenet-crop-s{seed}"),
    "effl0-128-e16": (
        "EfficientNet-Lite0 128 px, 16 epochs, flip TTA: the hour-long run on 2 CPU cores",
        "skinlab train --data $HAM10000_DIR --model efficientnet_lite0 --image-size 128 --epochs 16 "
        "--batch-size 32 --lr 1e-3 --weighting sqrt --label-smoothing 0.1 --tta --seed {seed} --out runs/effl0-128-e16"),
    "effl0-96-e3": (
        "EfficientNet-Lite0 96 px, 3 epochs (first session's run)",
        "skinlab train --data $HAM10000_DIR --model efficientnet_lite0 --image-size 96 --epochs 3 "
        "--batch-size 32 --lr 5e-4 --weighting sqrt --label-smoothing 0.1 --tta --seed {seed} --out runs/effl0-96-e3"),
    "lenet-sweep": (
        "LeNet sweep (19 configurations; ran on a GPU, 8-16 at once)",
        "python -m bench.sweep run bench/grids/lenet.json --out sweeps/lenet --parallel 16 "
        "&& python -m bench.sweep report sweeps/lenet"),
    "transfer-sweep": (
        "EfficientNet-Lite0 sweep (8 configurations, 96-192 px; ran on a GPU) and the ensemble of four",
        "python -m bench.sweep run bench/grids/transfer.json --out sweeps/transfer --parallel 8 "
        "&& python -m bench.sweep report sweeps/transfer --ensemble E128_e20 E128_e20_lr1e3 E160_e30 E192_e30"),
    "ensemble": (
        "ensemble of finished runs (same split), flip TTA",
        "python -m bench.accuracy ensemble runs/effl0-128-e16 runs/effl0-96-e3 --tta"),
}


def load(path: Path = RESULTS) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"figures": {}}


def read_run(run: str | Path) -> dict:
    """Test metrics, best epoch's validation numbers and seconds of a finished ``skinlab train`` run."""
    run = Path(run)
    m = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    history = json.loads((run / "history.json").read_text()) if (run / "history.json").is_file() else []
    best = next((h for h in history if h.get("epoch") == m.get("best_epoch")), {})
    # (minutes of training so far, validation balanced accuracy) after each epoch: the run's curve
    curve, elapsed = [], 0.0
    for h in history:
        if h.get("seconds") is None or h.get("val_balanced_acc") is None:
            curve = []
            break
        elapsed += h["seconds"]
        curve.append([round(elapsed / 60, 3), round(h["val_balanced_acc"], 4)])
    return {
        "seed": cfg.get("init_seed") if cfg.get("init_seed") is not None else cfg.get("seed"),
        "accuracy": round(m["accuracy"], 4), "balanced_accuracy": round(m["balanced_accuracy"], 4),
        "val_accuracy": round(best["val_acc"], 4) if "val_acc" in best else None,
        "val_balanced_accuracy": round(best["val_balanced_acc"], 4) if "val_balanced_acc" in best else None,
        "best_epoch": m.get("best_epoch"), "seconds": m.get("seconds"), "n_test": m.get("n"),
        **({"curve": curve} if curve else {}),
    }


def _keep_other_split(data: dict, key: str, split: str) -> None:
    """A figure never pools two splits: before runs on ``split`` join figure ``key``, its runs on
    another split move to their own entry ``key@<that split>`` (kept, seed by seed)."""
    fig = data["figures"].get(key, {})
    others = [r for r in fig.get("runs", []) if split_of(r) != split]
    for name in sorted({split_of(r) for r in others}):
        old = data["figures"].setdefault(f"{key}@{name}", {
            "title": f"{fig.get('title', key)} (on the {name} split)", "command": fig.get("command", "")})
        kept = {r["seed"]: r for r in old.get("runs", [])}
        kept.update({r["seed"]: r for r in others if split_of(r) == name})
        old["runs"] = [kept[s] for s in sorted(kept)]
    if fig:
        fig["runs"] = [r for r in fig.get("runs", []) if split_of(r) == split]


def record(key: str, runs, where: str, title: str | None = None, command: str | None = None,
           date: str | None = None, path: Path = RESULTS, split: str = SPLIT) -> dict:
    """Add (or replace, seed by seed) the runs of figure ``key`` in the results file, measured on
    ``split``; runs of the figure on another split move to figure ``key@<their split>``."""
    data = load(path)
    fig = data["figures"].setdefault(key, {})
    if title or key in COMMANDS:
        fig["title"] = title or fig.get("title") or COMMANDS[key][0]
    if command or key in COMMANDS:
        fig["command"] = command or fig.get("command") or COMMANDS[key][1]
    if "/work/" in fig["command"] or "/home/" in fig["command"] or "/root/" in fig["command"]:
        raise ValueError(f"{key}: the command names a machine's path; use $HAM10000_DIR")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    _keep_other_split(data, key, split)
    by_seed = {r["seed"]: r for r in fig.get("runs", []) if split_of(r) == split}
    for run in runs:
        r = read_run(run)
        r["where"] = where
        r["split"] = split
        if date:
            r["date"] = date
        by_seed[r["seed"]] = r
    fig["runs"] = [by_seed[s] for s in sorted(by_seed)]
    path.write_text(json.dumps(data, indent=1) + "\n")
    return fig


def record_sweep(key: str, sweep_dir, names, where: str, title: str, command: str, seeds=None,
                 adjust: bool = False, date: str | None = None, path: Path = RESULTS, split: str = SPLIT) -> dict:
    """Add figure ``key`` from a ``bench.sweep`` folder: per seed S, the flip-TTA test and validation
    figures of run ``NAME_sS`` (one name) or of the ensemble of the ``NAME_sS`` runs (several),
    logit-adjusted with ``tau`` chosen on validation when ``adjust``; ensembles carry their 95 %
    lesion-bootstrap interval. ``seeds`` defaults to every seed that has all the runs."""
    import numpy as np

    from bench import sweep

    sweep_dir = Path(sweep_dir)
    if any(p in command for p in ("/work/", "/home/", "/root/")):
        raise ValueError(f"{key}: the command names a machine's path; use $HAM10000_DIR")
    seeds = list(seeds) if seeds is not None else sweep.seeds_of(sweep_dir, names)
    missing = [f"{n}_s{s}" for s in seeds for n in names if not sweep.run_file(sweep_dir, n, s).is_file()]
    if missing or not seeds:
        raise ValueError(f"{sweep_dir}: no finished run {', '.join(missing) or ' / '.join(n + '_sSEED' for n in names)}")
    data = load(path)
    _keep_other_split(data, key, split)
    fig = data["figures"].setdefault(key, {})
    fig.update(title=title, command=command)
    runs = []
    for seed in seeds:
        zs = [np.load(sweep.run_file(sweep_dir, n, seed)) for n in names]
        r = sweep.scores(zs, adjust=adjust, n_boot=2000 if len(names) > 1 else None)
        summaries = [json.loads(sweep.run_file(sweep_dir, n, seed, ".json").read_text()) for n in names]
        run = {"seed": seed, **{k: round(r[k], 6) for k in ("accuracy", "balanced_accuracy", "val_accuracy",
                                                              "val_balanced_accuracy")},
               "seconds": round(sum(x["seconds"] for x in summaries), 1), "n_test": r["n_test"], "where": where,
               "split": split}
        if len(names) == 1:
            run["best_epoch"] = summaries[0]["best_epoch"]
        if adjust:
            run["tau"] = round(r["tau"], 4)
        if "ci" in r:
            run["ci"] = r["ci"]
        if date:
            run["date"] = date
        runs.append(run)
    fig["runs"] = runs
    path.write_text(json.dumps(data, indent=1) + "\n")
    return fig


def summary(fig: dict) -> dict:
    def spread(key):
        values = [r[key] for r in fig["runs"] if r.get(key) is not None]
        if not values:
            return None
        return {"mean": statistics.fmean(values), "min": min(values), "max": max(values), "n": len(values)}

    return {k: spread(k) for k in ("accuracy", "balanced_accuracy", "val_accuracy", "val_balanced_accuracy", "seconds")}


def _fmt(s: dict | None, digits: int = 3) -> str:
    if s is None:
        return "—"
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f} (single run)"
    return f"{s['mean']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def table(data: dict, markdown: bool = False) -> str:
    rows = []
    order = [k for k in COMMANDS if k in data["figures"]] + [k for k in data["figures"] if k not in COMMANDS]
    for key in order:
        fig = data["figures"][key]
        s = summary(fig)
        seeds = ", ".join(str(r["seed"]) for r in fig["runs"])
        wheres = sorted({r.get("where", "") for r in fig["runs"]})
        splits = ", ".join(sorted({split_of(r) for r in fig["runs"]}))
        minutes = "—" if s["seconds"] is None else (
            f"{s['seconds']['mean'] / 60:.1f}" if s["seconds"]["n"] == 1 else
            f"{s['seconds']['mean'] / 60:.1f} ({s['seconds']['min'] / 60:.1f}–{s['seconds']['max'] / 60:.1f})")
        if s["seconds"] is not None and s["seconds"]["n"] < len(fig["runs"]):
            minutes += f" (timed: {s['seconds']['n']} of {len(fig['runs'])} runs)"
        acc_cell, bal_cell = _fmt(s["accuracy"]), _fmt(s["balanced_accuracy"])
        if len(fig["runs"]) == 1 and "ci" in fig["runs"][0]:  # one ensemble: its bootstrap interval
            ci = fig["runs"][0]["ci"]
            acc_cell, bal_cell = (f"{fig['runs'][0][k]:.3f} (one seed; 95 % bootstrap {ci[k][0]:.3f}–{ci[k][1]:.3f})"
                                  for k in ("accuracy", "balanced_accuracy"))
            val_cell = " / ".join(f"{fig['runs'][0][k]:.3f} (one seed)" for k in ("val_accuracy", "val_balanced_accuracy"))
        else:
            val_cell = _fmt(s["val_accuracy"]) + " / " + _fmt(s["val_balanced_accuracy"])
        rows.append((fig.get("title", key), acc_cell, bal_cell, val_cell,
                     f"{len(fig['runs'])} ({seeds})", splits, minutes,
                     "; ".join(wheres), fig.get("command", "").replace("{seed}", "S")))
    head = ("figure", "test accuracy: mean (min–max)", "test balanced accuracy: mean (min–max)",
            "validation accuracy / balanced accuracy", "seeds", "split", "minutes per run", "where", "command (S = seed)")
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r[:-1]) + f" | `{r[-1]}` |" for r in rows]
        return "\n".join(lines)
    out = []
    for r in rows:
        out.append(f"{r[0]}\n  accuracy {r[1]}, balanced accuracy {r[2]}; validation accuracy / balanced {r[3]}\n"
                   f"  seeds {r[4]} on the {r[5]} split, {r[6]} min per run, {r[7]}\n  {r[8]}")
    return "\n".join(out)


def curves(data: dict, keys=None) -> dict:
    """``{title: [run, ...]}`` of the recorded figures whose runs carry a per-epoch curve."""
    keys = keys or list(data["figures"])
    unknown = [k for k in keys if k not in data["figures"]]
    if unknown:
        raise ValueError(f"no recorded figure {', '.join(unknown)}; recorded: {', '.join(data['figures'])}")
    return {data["figures"][k].get("title", k): [r for r in data["figures"][k]["runs"] if r.get("curve")]
            for k in keys if any(r.get("curve") for r in data["figures"][k]["runs"])}


def curve_text(found: dict) -> str:
    """Each run's validation balanced accuracy after each epoch, against minutes of training, and
    its test result (read once, at the end, from the epoch kept)."""
    out = []
    for title, runs in found.items():
        out.append(title)
        for r in runs:
            points = ", ".join(f"{m:.1f} min {v:.3f}" for m, v in r["curve"])
            out.append(f"  seed {r['seed']}: validation {points}; test {r['balanced_accuracy']:.3f} "
                       f"after {r['seconds'] / 60:.1f} min in all")
    return "\n".join(out)


def curve_figure(found: dict):
    """Validation balanced accuracy against minutes of training, one line per run (colour per figure),
    each run's test balanced accuracy as a marker at its total minutes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for i, (title, runs) in enumerate(found.items()):
        color = f"C{i}"
        for j, r in enumerate(runs):
            minutes, values = zip(*r["curve"])
            ax.plot(minutes, values, "-o", color=color, markersize=3, alpha=0.8, label=title if j == 0 else None)
            ax.plot([r["seconds"] / 60], [r["balanced_accuracy"]], "*", color=color, markersize=10)
    ax.set_xlabel("minutes of training on the machine recorded (2 CPU cores)")
    ax.set_ylabel("balanced accuracy")
    ax.set_title("Validation balanced accuracy after each epoch (lines); test, read once at the end (stars)")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def ensemble(run_dirs, data=None, tta=False, device="auto", adjust=False, n_boot: int | None = 2000) -> dict:
    """Test metrics of the mean of the runs' probabilities: ``bench.sweep.scores`` of the runs'
    ``bench.sweep.predict_run`` arrays, so the figures and the check (the runs hold the same
    validation and test images) are those of ``bench.sweep report --ensemble``."""
    from bench import sweep

    missing = [str(r) for r in run_dirs if not (Path(r) / "metrics.json").is_file()]
    if missing:
        raise ValueError(f"not a finished `skinlab train` run (no metrics.json): {', '.join(missing)}")
    arrays = [sweep.predict_run(Path(run), data, device)[0] for run in run_dirs]
    result = sweep.scores(arrays, adjust=adjust, n_boot=n_boot, tta=tta, names=[str(r) for r in run_dirs])
    result.update({"runs": [str(r) for r in run_dirs], "tta": tta, "logit_adjust": adjust})
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.split("\n")[0])
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--results", default=str(RESULTS), help="recorded runs (default %(default)s)")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("table", help="the table of recorded figures (the default)")
    e = sub.add_parser("ensemble", help="test metrics of an ensemble of finished runs")
    e.add_argument("runs", nargs="+")
    e.add_argument("--data", default=None)
    e.add_argument("--tta", action="store_true", help="mean of each run's flip-TTA probabilities")
    e.add_argument("--logit-adjust", action="store_true", help="logit adjustment, tau chosen on validation")
    e.add_argument("--device", default="auto")
    sub.add_parser("commands", help="print the commands behind each accuracy figure")
    c = sub.add_parser("curve", help="validation balanced accuracy against minutes, per recorded run")
    c.add_argument("keys", nargs="*", help="recorded figures (default: every one with a curve)")
    c.add_argument("--png", default=None, help="also draw the curves into this PNG")
    r = sub.add_parser("record", help="record finished runs (one per seed) as figure KEY")
    r.add_argument("key")
    r.add_argument("runs", nargs="+")
    r.add_argument("--where", required=True, help='e.g. "2 CPU cores, idle"')
    r.add_argument("--title", default=None)
    r.add_argument("--run-command", default=None, help="the command, {seed} for the seed (default: COMMANDS[KEY])")
    r.add_argument("--date", default=None)
    r.add_argument("--split", default=SPLIT, choices=sorted(SPLITS), help="the split the runs were measured on (default %(default)s)")
    rs = sub.add_parser("record-sweep", help="record figure KEY from a bench.sweep folder, over seeds")
    rs.add_argument("key")
    rs.add_argument("sweep_dir")
    rs.add_argument("names", nargs="+", help="NAME: the runs NAME_sSEED; several: their ensemble per seed")
    rs.add_argument("--where", required=True)
    rs.add_argument("--title", required=True)
    rs.add_argument("--run-command", required=True, help="the command that produces the sweep")
    rs.add_argument("--seeds", type=int, nargs="+", default=None)
    rs.add_argument("--logit-adjust", action="store_true", help="tau chosen on validation")
    rs.add_argument("--date", default=None)
    rs.add_argument("--split", default=SPLIT, choices=sorted(SPLITS), help="the split the runs were measured on (default %(default)s)")
    args = p.parse_args(argv)
    results = Path(args.results)
    if args.command == "record-sweep":
        try:
            fig = record_sweep(args.key, args.sweep_dir, args.names, args.where, args.title, args.run_command,
                               args.seeds, args.logit_adjust, args.date, results, split=args.split)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(table({"figures": {args.key: fig}}))
        return 0
    if args.command in (None, "table"):
        if not results.is_file():
            print(f"error: {results}: no recorded figures (record runs with `python -m bench.accuracy record`)",
                  file=sys.stderr)
            return 2
        print(table(load(results), markdown=args.markdown))
        return 0
    if args.command == "commands":
        for key, (name, cmd) in COMMANDS.items():
            print(f"{name}:\n  {cmd}")
        for key, fig in load(results)["figures"].items():
            if key not in COMMANDS:
                print(f"{fig.get('title', key)}:\n  {fig['command']}")
        return 0
    if args.command == "curve":
        try:
            found = curves(load(results), args.keys)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not found:
            print("no recorded run has a per-epoch curve (record runs whose history.json has seconds)",
                  file=sys.stderr)
            return 1
        print(curve_text(found))
        if args.png:
            from skinlab.plots import save_figure

            save_figure(curve_figure(found), args.png)
            print(f"wrote {args.png}")
        return 0
    if args.command == "record":
        missing = [r for r in args.runs if not (Path(r) / "metrics.json").is_file()]
        if missing:
            print(f"error: not a finished `skinlab train` run (no metrics.json): {', '.join(missing)}", file=sys.stderr)
            return 2
        if args.key not in COMMANDS and not args.run_command and args.key not in load(results)["figures"]:
            print(f"error: {args.key} is a new figure: give its --run-command (and --title)", file=sys.stderr)
            return 2
        fig = record(args.key, args.runs, args.where, args.title, args.run_command, args.date, results, split=args.split)
        print(table({"figures": {args.key: fig}}))
        return 0
    try:
        result = ensemble(args.runs, args.data, args.tta, args.device, args.logit_adjust)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(ensemble_line(result))
    print(json.dumps({k: result[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "per_class_recall",
                                             "val_accuracy", "val_balanced_accuracy", "tau", "ci") if k in result},
                     indent=1))
    return 0


def ensemble_line(result: dict) -> str:
    """One line: the ensemble's test figures, with their bootstrap interval where there is one."""
    def cell(k):
        ci = result.get("ci", {}).get(k)
        return f"{result[k]:.3f}" + (f" (95 % bootstrap {ci[0]:.3f}–{ci[1]:.3f})" if ci else "")

    adjusted = f", logit adjustment tau {result['tau']:+.2f} (chosen on validation)" if result.get("logit_adjust") else ""
    return (f"ensemble of {len(result['runs'])}{' (flip TTA)' if result['tta'] else ''}{adjusted}: "
            f"accuracy {cell('accuracy')}, balanced accuracy {cell('balanced_accuracy')}, "
            f"macro-F1 {result['macro_f1']:.3f} (n={result['n_test']})")


if __name__ == "__main__":
    sys.exit(main())
