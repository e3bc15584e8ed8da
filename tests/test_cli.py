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
    image_id = json.loads((run / "metrics.json").read_text()) and None
    import pandas as pd

    image_id = pd.read_csv(run / "split.csv")["image_id"].iloc[0]
    assert main(["gradcam", str(run), image_id, "--class", "mel", "--out", str(tmp_path / "cam.png")]) == 0
    assert (tmp_path / "cam.png").stat().st_size > 1000

    # A finished run is never overwritten by accident.
    assert main(["train", "--data", str(synth_dir), "--epochs", "1", "--out", str(run), "--no-progress"]) == 2
    assert "already here" in capsys.readouterr().err


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
def test_short_lenet_run_on_real_images_beats_majority_balanced_accuracy(ham_dir, tmp_path):
    from skinlab.pipeline import TrainConfig, train

    result = train(TrainConfig(data=str(ham_dir), epochs=3, out=str(tmp_path / "real"), progress=False), log=None)
    assert result["synthetic"] is False and result["n"] > 1900
    assert result["majority_baseline"]["balanced_accuracy"] == pytest.approx(1 / 7)
    assert result["balanced_accuracy"] > 1 / 7 + 0.1


def test_gradcam_explains_the_pixels_the_model_was_trained_on(synth_dir, tmp_path, monkeypatch):
    """The image the ``gradcam`` command explains is decoded and resized like the training images
    (JPEG draft mode, bilinear: the image cache) and normalised like them, bit for bit."""
    import numpy as np
    import torch

    from skinlab import gradcam
    from skinlab.pipeline import load_run, prepare_data
    from skinlab.presets import BatchAugment

    run = tmp_path / "run"
    assert main(["train", "--data", str(synth_dir), "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    seen = []

    def spy(model, image, target_layer, class_idx=None):
        seen.append(image.detach().cpu())
        return np.zeros(image.shape[-2:], dtype=np.float32)

    monkeypatch.setattr(gradcam, "grad_cam", spy)
    model, cfg, device = load_run(run)
    data = prepare_data(cfg, log=None)
    i = int(data.index["test"][0])
    assert main(["gradcam", str(run), data.metadata.at[i, "image_id"], "--out", str(tmp_path / "cam.png")]) == 0
    trained_on = BatchAugment(data.mean, data.std, train=False)(data.images[i : i + 1])
    assert len(seen) == 1
    assert torch.allclose(seen[0].reshape(trained_on.shape), trained_on, atol=1e-6)
