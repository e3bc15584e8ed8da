"""The ``skinlab`` command line (also ``python -m skinlab``).

User mistakes end with one line on stderr and exit status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 200x150, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from skinlab.config import add_train_arguments
    from skinlab.data import ENV_VAR

    p = argparse.ArgumentParser(prog="skinlab", description="Skin-lesion classification on HAM10000 (the skinlab course).")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="get, make or check a dataset").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write a synthetic HAM10000-format sample")
    synth.add_argument("out", help="folder to create")
    synth.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=_size, default=(200, 150), help="WIDTHxHEIGHT (default 200x150)")
    synth.add_argument("--overwrite", action="store_true")
    check = data.add_parser("check", help="validate a dataset folder and report counts")
    check.add_argument("dir", nargs="?", default=None, help=f"dataset folder (default: ${ENV_VAR})")
    check.add_argument("--no-images", action="store_true", help="skip decoding every image")
    dl = data.add_parser("download", help="download HAM10000 from Harvard Dataverse, verified")
    dl.add_argument("dir", nargs="?", default="HAM10000", help="destination (default ./HAM10000)")

    # One argument per TrainConfig option, declared with the option (skinlab.config).
    add_train_arguments(sub.add_parser("train", help="train a model and write a run folder"))

    e = sub.add_parser("evaluate", help="evaluate a run's best checkpoint")
    e.add_argument("run", help="run folder written by `skinlab train`")
    e.add_argument("--data", default=None)
    e.add_argument("--split", choices=("train", "val", "test"), default="test")
    e.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average with flipped images (default: as the run was trained)")
    e.add_argument("--device", default="auto")

    g = sub.add_parser("gradcam", help="Grad-CAM heatmap of a run's model on one image")
    g.add_argument("run", help="run folder written by `skinlab train`")
    g.add_argument("image", help="image_id (e.g. ISIC_0024306) or path to an image")
    g.add_argument("--class", dest="class_name", default=None, help="class to explain (default: predicted)")
    g.add_argument("--data", default=None)
    g.add_argument("--out", default=None, help="PNG to write (default RUN/figures/gradcam-IMAGE.png)")
    g.add_argument("--device", default="auto")

    # Instructors: thin forwards to skinlab.grading (nbgrader, headless).
    rel = sub.add_parser("release", help="instructors: regenerate exercises/ from solutions/ with nbgrader")
    rel.add_argument("args", nargs=argparse.REMAINDER)
    grd = sub.add_parser("grade", help="instructors: autograde a folder of <student>/<id>/<id>.ipynb")
    grd.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _cmd_data(args) -> int:
    from skinlab import data

    if args.data_command == "synth":
        root = data.make_synthetic_ham10000(args.out, n_images=args.n, seed=args.seed, image_size=args.size,
                                            overwrite=args.overwrite)
        print(f"wrote a synthetic sample of {args.n} images to {root}")
        return 0
    if args.data_command == "check":
        root = args.dir or data.resolve_data_dir(None).root
        problems = data.check_dataset(root, verify_images=not args.no_images, progress=True)
        if problems:
            for line in problems:
                print(line)
            print(f"{len(problems)} problem(s) in {root}", file=sys.stderr)
            return 1
        summary = data.summarize(data.load_metadata(root))
        print(f"{root}: OK — {summary['images']} images, {summary['lesions']} lesions")
        for c in data.CLASSES:
            print(f"  {c:6s} {summary['classes'][c]:6d}  {data.CLASS_NAMES[c]}")
        return 0
    if args.data_command == "download":
        from skinlab.data.download import download_ham10000

        root = download_ham10000(args.dir)
        print(f"HAM10000 is in {root}")
        return 0
    raise AssertionError(args.data_command)


def _cmd_train(args) -> int:
    from skinlab.config import config_from_args
    from skinlab.pipeline import train

    cfg = config_from_args(args)
    train(cfg)
    print(f"run folder: {cfg.out}")
    return 0


def _cmd_evaluate(args) -> int:
    from skinlab import metrics
    from skinlab.atomic import write_json
    from skinlab.pipeline import evaluate_split, load_run, summary_line

    run = load_run(args.run, args.data, args.device)
    data = run.prepare_data()
    result = evaluate_split(run, data, args.split, tta=args.tta)
    result["majority_baseline"] = metrics.majority_baseline(data.labels("train"), data.labels(args.split))
    result["synthetic"] = data.source.synthetic
    print(summary_line(result))
    out = write_json(result, Path(args.run) / f"eval-{args.split}.json")
    print(f"wrote {out}")
    return 0


def _cmd_gradcam(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from skinlab import data as D
    from skinlab import gradcam, plots
    from skinlab.models import default_target_layer
    from skinlab.pipeline import load_run

    class_idx = None
    if args.class_name is not None:
        if args.class_name not in D.CLASSES:
            raise ValueError(f"--class {args.class_name!r}: expected one of {', '.join(D.CLASSES)}")
        class_idx = D.CLASSES.index(args.class_name)
    run = load_run(args.run, args.data, args.device)
    path = Path(args.image)
    if not path.is_file():
        root = D.resolve_data_dir(run.cfg.data, n_synthetic=run.cfg.n_synthetic).root
        images = D.find_images(root)
        if args.image not in images:
            raise D.DataError(f"{args.image}: neither an image file nor an image_id in {root}")
        path = images[args.image]
    # The input the run's evaluation gives the model for this image (its size, colour constancy,
    # centre crop, normalisation), and those pixels before normalisation to draw the map over.
    x = run.preset.prepare(path, run.device)
    rgb = run.preset.pixels(path).permute(1, 2, 0).numpy() / 255.0
    with torch.no_grad():
        prob = torch.softmax(run.model(x), 1)[0].cpu()
    cam = gradcam.grad_cam(run.model, x, default_target_layer(run.model), class_idx)
    shown = class_idx if class_idx is not None else int(prob.argmax())
    title = f"{path.stem}: {D.CLASSES[shown]} (p={prob[shown]:.2f})"
    out = Path(args.out) if args.out else Path(args.run) / "figures" / f"gradcam-{path.stem}.png"
    plots.save_figure(plots.gradcam_overlays([rgb], [cam], titles=[title]), out)
    print(f"{title}; heatmap written to {out}")
    return 0


def _cmd_grading(args) -> int:
    from skinlab.grading import main as grading_main

    return grading_main([args.command, *args.args])


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"data": _cmd_data, "train": _cmd_train, "evaluate": _cmd_evaluate, "gradcam": _cmd_gradcam,
                "release": _cmd_grading, "grade": _cmd_grading}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept (resume with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug or not _is_user_error(exc):
            raise
        print(f"skinlab: error: {exc}", file=sys.stderr)
        return 2


def _is_user_error(exc: BaseException) -> bool:
    from skinlab.data import DataError
    from skinlab.engine import NonFiniteLossError

    user_errors: list[type] = [DataError, NonFiniteLossError, FileNotFoundError, FileExistsError, ValueError]
    try:
        from skinlab.models import WeightsUnavailableError

        user_errors.append(WeightsUnavailableError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from skinlab.data.download import DownloadError

        user_errors.append(DownloadError)
    except ImportError:
        pass
    return isinstance(exc, tuple(user_errors))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
