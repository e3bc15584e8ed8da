"""The speed benchmarks (`python -m bench`): they train with the engine's decisions, and they
write tracked files only when asked (`--record`). No timing is asserted here."""

from __future__ import annotations

import inspect
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


@pytest.fixture
def engine_calls(monkeypatch):
    """Every ``engine.make_optimizer`` and ``engine.grad_scaler`` call from here on, recorded by
    wrappers that return the real result: a benchmark that built its own AdamW or GradScaler
    would leave no call (or a result other than the one it trains with)."""
    from skinlab import engine

    calls = {"make_optimizer": [], "grad_scaler": []}

    def spy(name):
        real = getattr(engine, name)

        def wrapper(*args, **kwargs):
            bound = inspect.signature(real).bind(*args, **kwargs)
            bound.apply_defaults()  # the arguments as the real function sees them
            result = real(*args, **kwargs)
            calls[name].append({**bound.arguments, "result": result})
            return result

        monkeypatch.setattr(engine, name, wrapper)

    spy("make_optimizer")
    spy("grad_scaler")
    return calls


def _optimises(opt, model) -> bool:
    """``opt`` steps exactly ``model``'s parameters."""
    return sorted(id(p) for g in opt.param_groups for p in g["params"]) == sorted(id(p) for p in model.parameters())


@no_cuda
def test_gpu_benchmark_skips_without_cuda():
    assert isinstance(gpu.run(quick=True)[0], Skipped)


def test_gpu_benchmark_builds_each_side_with_the_engine_and_its_path_runs_on_the_cpu(engine_calls):
    from skinlab.config import TrainConfig

    cpu = torch.device("cpu")
    # LeNet instead of ResNet-18: the same code path at a fraction of the cost on a shared CPU
    for fast in (False, True):
        engine_calls["make_optimizer"].clear()
        engine_calls["grad_scaler"].clear()
        model, opt, augment, scaler = gpu.variant(fast, cpu, name="lenet")
        [built] = engine_calls["make_optimizer"]
        assert built["result"] is opt and _optimises(opt, model)
        assert built["lr"] == gpu.LR and built["weight_decay"] == TrainConfig().weight_decay
        [asked] = engine_calls["grad_scaler"]
        # skinlab's side takes the engine's AMP decision, the baseline asks for none
        assert torch.device(asked["device"]) == cpu and asked["amp"] == ("auto" if fast else False)
        assert asked["result"] is scaler and scaler is None  # the engine's decision: no AMP on the CPU
        assert not augment.channels_last  # LeNet is not channels-last on the CPU (registry)
    engine_calls["make_optimizer"].clear()
    engine_calls["grad_scaler"].clear()
    rates = gpu.measure(cpu, n=8, size=32, batch=4, rounds=1, name="lenet")
    assert len(rates[False]) == len(rates[True]) == 1 and min(rates[False] + rates[True]) > 0
    # measure sets each side up through variant: one optimiser and one AMP decision per side
    assert [c["amp"] for c in engine_calls["grad_scaler"]] == [False, "auto"]
    assert len(engine_calls["make_optimizer"]) == 2


def test_training_benchmark_trains_with_the_runs_decisions(engine_calls):
    from skinlab.config import TrainConfig
    from skinlab.models import prefers_channels_last

    s = training._setup("lenet", 32, 2 * training.BATCH)
    assert s.channels_last is False
    [built] = engine_calls["make_optimizer"]
    assert built["result"] is s.opt and _optimises(s.opt, s.model)
    assert built["lr"] == training.LR and built["weight_decay"] == TrainConfig().weight_decay
    [asked] = engine_calls["grad_scaler"]
    assert torch.device(asked["device"]) == training.DEVICE and asked["amp"] == "auto"  # skinlab train's decision
    assert asked["result"] is s.scaler and s.scaler is None
    before = [p.detach().clone() for p in s.model.parameters()]
    assert training.real_loop(s, s.images, s.labels, 0) == 2 * training.BATCH
    assert any(not torch.equal(a, b) for a, b in zip(before, s.model.parameters()))  # it trained
    # a model the registry makes channels-last on the CPU is benchmarked channels-last
    assert prefers_channels_last("efficientnet_lite0", "cpu")
    e = training._setup("efficientnet_lite0", 32, 4)
    assert e.channels_last and next(e.model.parameters()).dim() == 4
    conv = next(m for m in e.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
