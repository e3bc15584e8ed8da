"""Why the greedy split flattered the course's numbers: one finished run, scored by the kind of
lesion, then reweighted to the make-up of the greedy split's test part.

    HAM10000_DIR=/path/to/ham10000 python -m bench.split_effect runs/lenet-s0

The run must be on the StratifiedGroupKFold split (``skinlab train`` since 2026-12-08). Its test
predictions are grouped by class, by how the diagnosis was confirmed (``dx_type``) and by whether
the lesion has one image or several; the accuracy of each group is then weighted by how many test
images of that group the greedy split (``skinlab.split.split_by_lesion_greedy``, same seed) holds.
The difference between the two is what the test part's make-up alone changes, for this model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def effect(run, data) -> dict:
    from skinlab.data import load_metadata
    from skinlab.split import split_by_lesion_greedy

    run = Path(run)
    meta = load_metadata(data)
    cfg = json.loads((run / "config.json").read_text())
    with np.load(run / "predictions.npz") as z:
        test = meta.loc[z["test_index"]].copy()
        test["correct"] = z["y_prob"].argmax(1) == z["y_true"]
    size = meta.groupby("lesion_id").size()

    def kind(frame):
        return frame.assign(lesion=np.where(frame["lesion_id"].map(size) > 1, "multi-image", "single-image"))

    test = kind(test)
    keys = ["dx", "dx_type", "lesion"]
    per_group = test.groupby(keys)["correct"].mean()
    greedy = kind(meta[split_by_lesion_greedy(meta, seed=cfg["seed"]) == "test"])
    weights = greedy.groupby(keys).size()
    covered = weights.index.intersection(per_group.index)
    return {
        "run": str(run), "seed": cfg["seed"], "test images": len(test),
        "accuracy": float(test["correct"].mean()),
        "accuracy reweighted to the greedy test part": float((per_group[covered] * weights[covered]).sum()
                                                             / weights[covered].sum()),
        "greedy test images covered": float(weights[covered].sum() / weights.sum()),
        "by confirmation": test.groupby("dx_type")["correct"].agg(["mean", "size"]).round(3).to_dict("index"),
        "nevi by confirmation": test[test["dx"] == "nv"].groupby("dx_type")["correct"].agg(["mean", "size"]).round(3).to_dict("index"),
        "by lesion": test.groupby("lesion")["correct"].agg(["mean", "size"]).round(3).to_dict("index"),
        "follow_up share of the test part": {"this split": float((test["dx_type"] == "follow_up").mean()),
                                             "greedy": float((greedy["dx_type"] == "follow_up").mean())},
        "single-image share of the test part": {"this split": float((test["lesion"] == "single-image").mean()),
                                                "greedy": float((greedy["lesion"] == "single-image").mean())},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.split_effect", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="finished skinlab train run folders (StratifiedGroupKFold split)")
    p.add_argument("--data", default=os.environ.get("HAM10000_DIR"), help="HAM10000 folder (default $HAM10000_DIR)")
    args = p.parse_args(argv)
    if not args.data:
        print("error: no data: pass --data or set HAM10000_DIR", file=sys.stderr)
        return 2
    for run in args.runs:
        if not (Path(run) / "predictions.npz").is_file():
            print(f"error: {run}: no predictions.npz (not a finished skinlab train run)", file=sys.stderr)
            return 2
        print(json.dumps(effect(run, args.data), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
