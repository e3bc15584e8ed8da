"""The command line end to end on the synthetic sample, and a short real-data run."""

import json
import subprocess
import sys

import pytest

from skinlab.cli import build_parser, main


def run_cli(*args, env_extra=None):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "skinlab", *args], capture_output=True, text=True, env=env)


def test_data_check_reports_counts(synth_dir, capsys):
    assert main(["data", "check", str(synth_dir)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "300 images" in out and "Melanocytic nevi" in out


def test_train_evaluate_gradcam_write_the_run_folder(synth_dir, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--data", str(synth_dir), "--epochs", "2", "--out", str(run), "--no-progress"])
    assert code == 0
    for name in ("config.json", "history.json", "best.pt", "last.pt", "metrics.json", "split.csv",
                 "figures/curves.png", "figures/confusion.png"):
        assert (run / name).is_file(), name
    m = json.loads((run / "metrics.json").read_text())
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "per_class_recall", "roc_auc_ovr",
                "confusion_matrix", "majority_baseline"):
        assert key in m, key
    assert m["synthetic"] is True
    assert "synthetic sample" in capsys.readouterr().out
    assert len(json.loads((run / "history.json").read_text())) == 2

    assert main(["evaluate", str(run), "--split", "val"]) == 0
    assert (run / "eval-val.json").is_file()
    import pandas as pd

    image_id = pd.read_csv(run / "split.csv")["image_id"].iloc[0]
    assert main(["gradcam", str(run), image_id, "--class", "mel", "--out", str(tmp_path / "cam.png")]) == 0
    assert (tmp_path / "cam.png").stat().st_size > 1000

    # A finished run is never overwritten by accident.
    assert main(["train", "--data", str(synth_dir), "--epochs", "1", "--out", str(run), "--no-progress"]) == 2
    assert "already here" in capsys.readouterr().err


@pytest.mark.slow  # one CLI process per mistake
def test_user_errors_are_one_line_without_traceback(tmp_path):
    r = run_cli("train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "missing" in r.stderr and "does not exist" in r.stderr
    r = run_cli("--debug", "train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r"))
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_bad_flag_values_are_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--fractions", "0.5,0.5"])
    assert "three numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--class-weights", "1,2,3"])
    err = capsys.readouterr().err
    assert "--class-weights" in err and "got 3 numbers, expected 7" in err and "akiec,bcc" in err
    args = build_parser().parse_args(["train", "--class-weights", "1,2,3,4,5,6,7.5"])
    assert args.class_weights == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.5)


def test_model_choices_come_from_the_registry(capsys):
    from skinlab.cli import build_parser
    from skinlab.models import MODEL_NAMES

    args = build_parser().parse_args(["train", "--model", "efficientnet_lite2"])
    assert args.model == "efficientnet_lite2"
    with pytest.raises(SystemExit):
        main(["train", "--model", "efficientnet_lite9"])
    err = capsys.readouterr().err
    assert all(name in err for name in MODEL_NAMES) and "efficientnet_lite1" in err


@pytest.mark.realdata
@pytest.mark.slow  # trains on the real data (~9 s)
def test_short_lenet_run_on_real_images_beats_majority_balanced_accuracy(ham_dir, tmp_path):
    from skinlab.pipeline import TrainConfig, train

    result = train(TrainConfig(data=str(ham_dir), epochs=3, out=str(tmp_path / "real"), progress=False), log=None)
    assert result["synthetic"] is False and result["n"] > 1900
    assert result["majority_baseline"]["balanced_accuracy"] == pytest.approx(1 / 7)
    assert result["balanced_accuracy"] > 1 / 7 + 0.1


RUN_OPTIONS = {
    "plain": [],
    # a crop run (whose gradcam once fed LeNet the 40 px cached image) also evaluated with TTA
    "crop+tta": ["--image-size", "40", "--crop", "32", "--tta"],
    "colour-constancy": ["--color-constancy", "shades_of_gray"],
}


@pytest.mark.parametrize("options", RUN_OPTIONS.values(), ids=RUN_OPTIONS.keys())
def test_gradcam_and_evaluate_use_the_evaluation_preset_of_the_run(synth_dir, tmp_path, monkeypatch, options):
    """``skinlab gradcam`` explains exactly the tensor the run's evaluation feeds the model for that
    image (decoded and resized like the cache, colour-corrected, centre-cropped, normalised), and
    ``skinlab evaluate`` scores the test split as the run did (same preset, same TTA)."""
    import numpy as np
    import torch

    from skinlab import gradcam
    from skinlab.data.cache import decode_resized
    from skinlab.pipeline import load_run, predict_split
    from skinlab.presets import BatchAugment

    run_dir = tmp_path / "run"
    assert main(["train", "--data", str(synth_dir), "--epochs", "1", "--out", str(run_dir), "--no-progress",
                 *options]) == 0
    run = load_run(run_dir)
    data = run.prepare_data()
    i = int(data.index["test"][0])
    fed = []  # what the evaluation path gives the model: the test batches of predict_split
    hook = run.model.register_forward_pre_hook(lambda module, args: fed.append(args[0].detach().cpu()))
    predict_split(run, data, "test", tta=False)
    hook.remove()
    evaluated = fed[0][:1]  # the first test image: the loader keeps the split's order

    seen = []

    def spy(model, image, target_layer, class_idx=None):
        seen.append(image.detach().cpu())
        return np.zeros(image.shape[-2:], dtype=np.float32)

    monkeypatch.setattr(gradcam, "grad_cam", spy)
    image_id = data.metadata.at[i, "image_id"]
    assert main(["gradcam", str(run_dir), image_id, "--out", str(tmp_path / "cam.png")]) == 0
    assert len(seen) == 1 and seen[0].shape == evaluated.shape == (1, 3, 32, 32)  # LeNet's input
    assert torch.equal(seen[0], evaluated)
    # ... and it is not merely the image decoded and normalised: the run's crop and colour constancy count
    plain = BatchAugment(run.preset.mean, run.preset.std, train=False)(
        torch.tensor(decode_resized(data.metadata.at[i, "path"], 32))[None])
    assert torch.equal(seen[0], plain) is (options == [])

    assert main(["evaluate", str(run_dir), "--split", "test"]) == 0
    again = json.loads((run_dir / "eval-test.json").read_text())
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert again["tta"] is ("--tta" in options)
    assert again["n"] == trained["n"] and again["confusion_matrix"] == trained["confusion_matrix"]
    assert again["roc_auc_ovr"] == pytest.approx(trained["roc_auc_ovr"], abs=1e-9)
    if "--tta" in options:  # the flag still overrides the run's own setting
        assert main(["evaluate", str(run_dir), "--split", "test", "--no-tta"]) == 0
        assert json.loads((run_dir / "eval-test.json").read_text())["tta"] is False
