"""Accuracy figures on the real HAM10000: the commands behind docs/PERFORMANCE.md, and a small
ensemble evaluator (average of the test-set probabilities of several finished runs).

    HAM10000_DIR=/path/to/ham10000 python -m bench.accuracy ensemble runs/a runs/b --tta
    python -m bench.accuracy commands      # print the training commands of every figure

Every figure is on the lesion-level test split (seed 0, 64/16/20), which is only looked at once
per run: the epoch is chosen by validation balanced accuracy inside ``skinlab train``.
"""

from __future__ import annotations

import argparse
import json
import sys

COMMANDS = {
    "LeNet, CLI defaults (lr 3e-3, 60 epochs; docs/PERFORMANCE.md)":
        "HAM10000_DIR=/work/shared/ham10000 skinlab train --out runs/lenet",
    "EfficientNet-Lite0 128px, 16 epochs, flip TTA: the hour-long run on 2 CPU cores": (
        "HAM10000_DIR=/work/shared/ham10000 skinlab train --model efficientnet_lite0 --image-size 128 "
        "--epochs 16 --batch-size 32 --lr 1e-3 --weighting sqrt --label-smoothing 0.1 --tta --out runs/effl0-128-e16"
    ),
    "EfficientNet-Lite0 96px, 3 epochs (first session's run)": (
        "HAM10000_DIR=/work/shared/ham10000 skinlab train --model efficientnet_lite0 --image-size 96 "
        "--epochs 3 --batch-size 32 --lr 5e-4 --weighting sqrt --label-smoothing 0.1 --tta --out runs/effl0-96-e3"
    ),
    "LeNet sweep (19 configurations; ran on a GPU, 8-16 at once)":
        "HAM10000_DIR=/work/shared/ham10000 python -m bench.sweep run bench/grids/lenet.json --out sweeps/lenet --parallel 16 "
        "&& python -m bench.sweep report sweeps/lenet",
    "EfficientNet-Lite0 sweep (8 configurations, 96-192px; ran on a GPU) and the ensemble of four":
        "HAM10000_DIR=/work/shared/ham10000 python -m bench.sweep run bench/grids/transfer.json --out sweeps/transfer --parallel 8 "
        "&& python -m bench.sweep report sweeps/transfer --ensemble E128_e20 E128_e20_lr1e3 E160_e30 E192_e30",
    "ensemble of finished runs (same split), flip TTA":
        "HAM10000_DIR=/work/shared/ham10000 python -m bench.accuracy ensemble runs/effl0-128-e16 runs/effl0-96-e3 --tta",
}


def ensemble(run_dirs, data=None, tta=False, device="auto") -> dict:
    """Test metrics of the mean of the runs' softmax outputs (the runs must share their split)."""
    import numpy as np

    from skinlab import metrics
    from skinlab.pipeline import load_run, predict_split, prepare_data

    probs, y_ref, split_ref = [], None, None
    for run in run_dirs:
        model, cfg, dev = load_run(run, data, device)
        prepared = prepare_data(cfg, log=None)
        split = prepared.split.to_numpy()
        if split_ref is not None and not np.array_equal(split, split_ref):
            raise ValueError(f"{run}: its split differs from {run_dirs[0]}'s (another seed or fractions?)")
        split_ref = split
        y, p = predict_split(model, prepared, "test", dev, tta=tta)
        y_ref = y if y_ref is None else y_ref
        probs.append(p)
    result = metrics.compute_metrics(y_ref, np.mean(probs, axis=0))
    result.update({"runs": [str(r) for r in run_dirs], "tta": tta})
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("ensemble", help="test metrics of an ensemble of finished runs")
    e.add_argument("runs", nargs="+")
    e.add_argument("--data", default=None)
    e.add_argument("--tta", action="store_true")
    e.add_argument("--device", default="auto")
    sub.add_parser("commands", help="print the commands behind each accuracy figure")
    args = p.parse_args(argv)
    if args.command == "commands":
        for name, cmd in COMMANDS.items():
            print(f"{name}:\n  {cmd}")
        return 0
    result = ensemble(args.runs, args.data, args.tta, args.device)
    print(f"ensemble of {len(args.runs)}: accuracy {result['accuracy']:.3f}, balanced accuracy "
          f"{result['balanced_accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f} (n={result['n']})")
    print(json.dumps({k: result[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "per_class_recall")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
