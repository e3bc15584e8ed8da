"""The ``skinlab`` command line (also ``python -m skinlab``).

User mistakes end with one line on stderr and exit status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 200x150, got {text!r}") from None


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.64,0.16,0.20, got {text!r}")
    return parts


def _weights(text: str) -> tuple[float, ...]:
    from skinlab.pipeline import check_class_weights

    try:
        return check_class_weights(text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--class-weights: ")) from None


def build_parser() -> argparse.ArgumentParser:
    from skinlab.data import CLASSES, ENV_VAR
    from skinlab.models import MODEL_NAMES
    from skinlab.pipeline import COLOR_CONSTANCY, SAMPLINGS, WEIGHTINGS, TrainConfig

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

    t = sub.add_parser("train", help="train a model and write a run folder")
    d = TrainConfig()
    t.add_argument("--data", default=None, help=f"dataset folder (default: ${ENV_VAR}, else the synthetic sample)")
    t.add_argument("--model", default=d.model, choices=MODEL_NAMES)
    t.add_argument("--out", default=None, help="run folder (default runs/MODEL)")
    t.add_argument("--image-size", type=int, default=None, help="side in pixels (default: the model's, LeNet 32)")
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--lr", type=float, default=d.lr, help="learning rate (default %(default)s)")
    t.add_argument("--weight-decay", type=float, default=d.weight_decay)
    t.add_argument("--scheduler", choices=("cosine", "none"), default=d.scheduler)
    t.add_argument("--weighting", choices=WEIGHTINGS, default=d.weighting,
                   help="class weights in the loss: median frequency, its square root, or none")
    t.add_argument("--class-weights", type=_weights, default=None, metavar="W,W,...",
                   help=f"explicit loss weights, one per class in label order ({','.join(CLASSES)}); "
                        "overrides --weighting")
    t.add_argument("--sampling", choices=SAMPLINGS, default=d.sampling,
                   help="balanced: every class equally often in each epoch (drawn with replacement)")
    t.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    t.add_argument("--rotation", type=float, default=d.rotation,
                   help="training augmentation: random rotation within ±DEGREES (default %(default)s)")
    t.add_argument("--no-flip", dest="flip", action="store_false",
                   help="no random horizontal flip (with --rotation 0: no augmentation at all)")
    t.add_argument("--seed", type=int, default=d.seed, help="the split; also the initialisation unless --init-seed")
    t.add_argument("--init-seed", type=int, default=None,
                   help="another initialisation and batch order on the same split (ensembles)")
    t.add_argument("--split-file", default=None,
                   help="CSV with image_id and split columns (e.g. RUN/split.csv) instead of the lesion-level split")
    t.add_argument("--train-images", type=int, default=None,
                   help="train on a class-stratified subset of this many training images")
    t.add_argument("--device", default=d.device, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps")
    t.add_argument("--fractions", type=_fractions, default=d.fractions, help="train,val,test (default 0.64,0.16,0.20)")
    t.add_argument("--no-pretrained", dest="pretrained", action="store_false", help="random initialisation")
    t.add_argument("--allow-random-init", action="store_true",
                   help="fall back to random weights (with a warning) when pretrained weights are missing")
    t.add_argument("--freeze-backbone", action="store_true", help="train only the new head")
    t.add_argument("--backbone-lr", type=float, default=None,
                   help="learning rate of every parameter outside the new head (default: --lr for all)")
    t.add_argument("--train-last-blocks", type=int, default=None,
                   help="EfficientNet-Lite: train only its last N blocks, head convolution and head")
    t.add_argument("--color-constancy", choices=COLOR_CONSTANCY, default=d.color_constancy,
                   help="shades_of_gray: Shades of Gray colour constancy (p=6) on every image")
    t.add_argument("--crop", type=int, default=None,
                   help="train on random CROPxCROP windows of the --image-size images, evaluate on the centre one")
    t.add_argument("--tta", action="store_true", help="test-time augmentation: average with flipped images")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    t.add_argument("--workers", type=int, default=None, help="image decoding threads")
    t.add_argument("--n-synthetic", type=int, default=d.n_synthetic, help="size of the synthetic sample")
    t.add_argument("--no-progress", dest="progress", action="store_false")

    e = sub.add_parser("evaluate", help="evaluate a run's best checkpoint")
    e.add_argument("run", help="run folder written by `skinlab train`")
    e.add_argument("--data", default=None)
    e.add_argument("--split", choices=("train", "val", "test"), default="test")
    e.add_argument("--tta", action="store_true")
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
    from skinlab.pipeline import TrainConfig, train

    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields and (v is not None or fields[k].default is None)})
    cfg.out = args.out or f"runs/{args.model}"
    train(cfg)
    print(f"run folder: {cfg.out}")
    return 0


def _cmd_evaluate(args) -> int:
    from skinlab import metrics
    from skinlab.atomic import write_json
    from skinlab.pipeline import evaluate_split, load_run, prepare_data, summary_line

    model, cfg, device = load_run(args.run, args.data, args.device)
    data = prepare_data(cfg, log=None)
    result = evaluate_split(model, data, args.split, device, tta=args.tta)
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
    from skinlab.data.cache import decode_resized
    from skinlab.models import default_target_layer
    from skinlab.pipeline import load_run
    from skinlab.presets import BatchAugment

    model, cfg, device = load_run(args.run, args.data, args.device)
    path = Path(args.image)
    if not path.is_file():
        root = D.resolve_data_dir(cfg.data, n_synthetic=cfg.n_synthetic).root
        images = D.find_images(root)
        if args.image not in images:
            raise D.DataError(f"{args.image}: neither an image file nor an image_id in {root}")
        path = images[args.image]
    raw = json.loads((Path(args.run) / "config.json").read_text())
    # The pixels the model was trained on: decoded and resized as the image cache does, then
    # normalised by the run's statistics as its evaluation batches were.
    pixels = torch.tensor(decode_resized(str(path), int(raw["image_size"])))[None]
    x = BatchAugment(raw["mean"], raw["std"], train=False).to(device)(pixels)[0]
    rgb = pixels[0].permute(1, 2, 0).numpy() / 255.0
    class_idx = None
    if args.class_name is not None:
        if args.class_name not in D.CLASSES:
            raise ValueError(f"--class {args.class_name!r}: expected one of {', '.join(D.CLASSES)}")
        class_idx = D.CLASSES.index(args.class_name)
    with torch.no_grad():
        prob = torch.softmax(model(x[None]), 1)[0].cpu()
    cam = gradcam.grad_cam(model, x, default_target_layer(model), class_idx)
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
