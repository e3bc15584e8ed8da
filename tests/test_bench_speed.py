"""The speed benchmarks (`python -m bench`): they train with the engine's decisions, and they
write tracked files only when asked (`--record`). No timing is asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import __main__ as bench_main  # noqa: E402
from bench import gpu, training  # noqa: E402
from bench.common import Skipped  # noqa: E402

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the path taken without a GPU")


def test_results_go_under_build_unless_recorded():
    md, js = bench_main.output_files(["data", "training", "gpu"])
    assert md == ROOT / "_build" / "bench" / "results.md" and js.name == "results.json"
    assert bench_main.output_files(["training"], out="/tmp/x")[0] == Path("/tmp/x/results.md")
    assert bench_main.output_files(["data", "training", "gpu"], record=True) == (ROOT / "bench" / "results.md",
                                                                                 ROOT / "bench" / "results.json")
    # one group recorded keeps the others' figures: its own file
    assert bench_main.output_files(["course"], record=True)[0] == ROOT / "bench" / "results-course.md"


@no_cuda
def test_a_plain_run_changes_no_tracked_file(tmp_path, monkeypatch, capsys):
    tracked = {p: p.read_bytes() for p in (ROOT / "bench").glob("results*")}
    monkeypatch.setattr(bench_main, "DEFAULT_OUT", tmp_path / "build")
    assert bench_main.main(["--only", "gpu"]) == 0  # skips at once without CUDA
    assert "no CUDA device" in (tmp_path / "build" / "results.md").read_text()
    assert {p: p.read_bytes() for p in (ROOT / "bench").glob("results*")} == tracked
    monkeypatch.setattr(bench_main, "HERE", tmp_path / "bench")
    assert bench_main.main(["--only", "gpu", "--record"]) == 0
    assert (tmp_path / "bench" / "results-gpu.md").is_file() and (tmp_path / "bench" / "results-gpu.json").is_file()
    with pytest.raises(SystemExit) as exc:
        bench_main.main(["--out", str(tmp_path), "--record"])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def _same_optimiser(opt, model):
    from skinlab.config import TrainConfig
    from skinlab.engine import make_optimizer
    from skinlab.pipeline import param_groups

    ref = make_optimizer(param_groups(model, 1e-4), 1e-4, TrainConfig.weight_decay)
    assert type(opt) is type(ref)
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == \
           [{k: v for k, v in g.items() if k != "params"} for g in ref.param_groups]


@no_cuda
def test_gpu_benchmark_skips_without_cuda_and_its_path_runs_on_the_cpu():
    assert isinstance(gpu.run(quick=True)[0], Skipped)
    cpu = torch.device("cpu")
    # LeNet instead of ResNet-18: the same code path at a fraction of the cost on a shared CPU
    for fast in (False, True):
        model, opt, augment, scaler = gpu.variant(fast, cpu, name="lenet")
        assert scaler is None  # the engine's decision: no AMP on the CPU
        assert not augment.channels_last  # LeNet is not channels-last on the CPU (registry)
        _same_optimiser(opt, model)
    rates = gpu.measure(cpu, n=8, size=32, batch=4, rounds=1, name="lenet")
    assert len(rates[False]) == len(rates[True]) == 1 and min(rates[False] + rates[True]) > 0


def test_training_benchmark_trains_with_the_runs_decisions():
    from skinlab.models import prefers_channels_last

    s = training._setup("lenet", 32, 2 * training.BATCH)
    assert s.scaler is None and s.channels_last is False
    _same_optimiser(s.opt, s.model)
    before = [p.detach().clone() for p in s.model.parameters()]
    assert training.real_loop(s, s.images, s.labels, 0) == 2 * training.BATCH
    assert any(not torch.equal(a, b) for a, b in zip(before, s.model.parameters()))  # it trained
    # a model the registry makes channels-last on the CPU is benchmarked channels-last
    assert prefers_channels_last("efficientnet_lite0", "cpu")
    e = training._setup("efficientnet_lite0", 32, 4)
    assert e.channels_last and next(e.model.parameters()).dim() == 4
    conv = next(m for m in e.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
