"""Run the benchmarks and write ``results.md`` + ``results.json`` under ``_build/bench/``.

    python -m bench                 # data + training + gpu, full size (10,015 images)
    python -m bench --quick         # 1,000 images, smaller training runs
    python -m bench --course        # also the book build and autograding (slow)
    python -m bench --course --skip-book --only course --class-size 30 --class-jobs 1 2   # a class
    python -m bench --only data     # one group: data, training, gpu, course
    python -m bench --threads 1     # one torch thread (steadier figures on a shared machine)
    python -m bench --course --only course --record   # the tracked bench/results-course.{md,json}

The tracked files in ``bench/`` change only with ``--record``: ``bench/results.{md,json}``, or
``bench/results-GROUP.{md,json}`` for a single ``--only GROUP``.

Every speed figure is a ratio against a baseline measured side by side in the same call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.common import Row, Skipped, machine

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "_build" / "bench"  # ignored by git: a plain run changes no tracked file
GROUPS = ("data", "training", "gpu", "course")


def output_files(groups, out: str | None = None, record: bool = False) -> tuple[Path, Path]:
    """``(markdown, json)`` paths of a run: under ``out`` (default ``_build/bench/``) as
    ``results.*``; with ``record``, the tracked ``bench/results.*``, or ``bench/results-GROUP.*``
    when one group ran, so that recording one group keeps the others' figures."""
    if record:
        folder, stem = HERE, ("results" if len(groups) != 1 else f"results-{groups[0]}")
    else:
        folder, stem = Path(out) if out is not None else DEFAULT_OUT, "results"
    return folder / f"{stem}.md", folder / f"{stem}.json"


def _fmt(v, unit="") -> str:
    if v is None:
        return "—"
    if unit == "s":
        return f"{v:.1f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def to_markdown(results: list, meta: dict) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{meta['command']}` — {meta['finished']}, {meta['seconds']:.0f} s.",
        f"Machine: {meta['machine']['cpu']}, {meta['machine']['cpu_count']} CPUs, torch "
        f"{meta['machine']['torch']} ({meta['machine']['torch_threads']} threads), "
        f"CUDA: {meta['machine']['cuda'] or 'none'}; load average at start "
        f"{meta['machine']['load_average_at_start']} (a shared machine: ratios are side by side, absolute "
        "figures are not).",
        "",
        "| benchmark | case | baseline | baseline | skinlab | unit | ratio | target | met |",
        "|---|---|---|---:|---:|---|---:|---|---|",
    ]
    skipped = []
    for r in results:
        if isinstance(r, Skipped):
            skipped.append(r)
            continue
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "—"
        met = {True: "yes", False: "**no**", None: "—"}[r.passed]
        lines.append(f"| {r.benchmark} | {r.case} | {r.baseline} | {_fmt(r.baseline_value, r.unit)} | "
                     f"{_fmt(r.value, r.unit)} | {r.unit} | {ratio} | {r.target} | {met} |")
    if skipped:
        lines += ["", "Skipped:", ""] + [f"- {s.benchmark}: {s.reason}" for s in skipped]
    notes = [r for r in results if isinstance(r, Row) and r.note]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {r.benchmark} / {r.case}: {r.note}" for r in notes]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 images instead of 10,015; shorter runs")
    p.add_argument("--course", action="store_true", help="also time the book build and autograding")
    p.add_argument("--skip-book", action="store_true", help="with --course: autograding only (the cold book build takes minutes)")
    p.add_argument("--only", choices=GROUPS, action="append", help="run only these groups (repeatable)")
    p.add_argument("--class-size", type=int, default=0,
                   help="with --course: also grade a class of N students x 5 exercises (the issue's budget: 30)")
    p.add_argument("--class-jobs", type=int, nargs="+", default=[2],
                   help="with --class-size: the --jobs values to grade the class with (e.g. 1 2)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", default=None,
                       help="folder for results.md / results.json (default: _build/bench/, not tracked)")
    where.add_argument("--record", action="store_true",
                       help="write the tracked bench/results.{md,json} (bench/results-GROUP.* for one --only GROUP)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's, one per core); 1 is steadier on a shared machine")
    args = p.parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    groups = args.only or [g for g in GROUPS if g != "course" or args.course]
    t0 = time.perf_counter()
    info = machine()
    results: list = []
    for group in groups:
        module = __import__(f"bench.{'data_pipeline' if group == 'data' else group}", fromlist=["run"])
        print(f"== {group}", flush=True)
        kwargs = ({"book": not args.skip_book, "students": args.class_size, "jobs": tuple(args.class_jobs)}
                  if group == "course" else {})
        rows = module.run(quick=args.quick, log=lambda m: print(f"  {m}", flush=True), **kwargs)
        for r in rows:
            if isinstance(r, Skipped):
                print(f"  skipped: {r.reason}")
            else:
                ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
                print(f"  {r.case}: {_fmt(r.value, r.unit)} {r.unit} vs {_fmt(r.baseline_value, r.unit)} "
                      f"({r.baseline}) {ratio} target {r.target}: {'met' if r.passed else 'NOT met'}", flush=True)
        results += rows
    meta = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "seconds": time.perf_counter() - t0,
        "quick": args.quick,
        "machine": info,
    }
    md, js = output_files(groups, args.out, args.record)
    md.parent.mkdir(parents=True, exist_ok=True)
    js.write_text(json.dumps({"meta": meta, "results": [r.as_dict() for r in results]}, indent=2) + "\n")
    md.write_text(to_markdown(results, meta))
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
