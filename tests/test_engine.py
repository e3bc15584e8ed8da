"""The engine against hand-written PyTorch loops (to 1e-6) and its contracts."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from skinlab.engine import (
    NonFiniteLossError,
    evaluate,
    fit,
    load_checkpoint,
    predict,
    save_checkpoint,
    select_device,
    train_one_epoch,
)
from skinlab.models import LeNet


def data(n=70, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 7, (n,), generator=g)
    return x, y


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 7))

    def forward(self, x):
        return self.body(x)


def test_one_epoch_matches_a_hand_written_loop():
    torch.manual_seed(0)
    x, y = data()
    weights = torch.rand(7) + 0.5
    ours, ref = LeNet(), None
    ref = copy.deepcopy(ours)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)  # 70 = 4*16 + 6: short last batch
    crit = nn.CrossEntropyLoss(weight=weights)
    loss, acc = train_one_epoch(ours, loader, crit, torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9), "cpu")

    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    total, correct = 0.0, 0
    for i in range(0, 70, 16):
        xb, yb = x[i:i + 16], y[i:i + 16]
        opt.zero_grad()
        out = ref(xb)
        l = nn.functional.cross_entropy(out, yb, weight=weights)
        l.backward()
        opt.step()
        total += l.item() * len(yb)
        correct += (out.argmax(1) == yb).sum().item()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)
    assert loss == pytest.approx(total / 70, abs=1e-6)
    assert acc == pytest.approx(correct / 70)


def test_train_sets_train_mode_and_evaluate_eval_mode():
    model = BNNet()
    modes = []
    model.body[0].register_forward_hook(lambda m, i, o: modes.append(m.training))
    x, y = data(20)
    loader = DataLoader(TensorDataset(x, y), batch_size=10)
    model.eval()
    train_one_epoch(model, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01), "cpu")
    assert modes == [True, True]
    modes.clear()
    evaluate(model, loader, nn.CrossEntropyLoss(), "cpu")
    assert modes == [False, False]
    assert model.training  # mode restored


def test_evaluate_changes_nothing_and_matches_full_batch_loss():
    model = BNNet()
    model.train()
    x, y = data(50)
    state = copy.deepcopy(model.state_dict())
    loader = DataLoader(TensorDataset(x, y), batch_size=16)  # short last batch of 2
    loss, acc = evaluate(model, loader, nn.CrossEntropyLoss(), "cpu")
    for k, v in model.state_dict().items():  # parameters and BatchNorm running stats
        assert torch.equal(v, state[k]), k
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert loss == pytest.approx(nn.functional.cross_entropy(out, y).item(), abs=1e-6)
    assert acc == pytest.approx((out.argmax(1) == y).float().mean().item())


def test_predict_returns_probabilities_in_loader_order():
    model = LeNet().eval()
    x, y = data(30)
    yt, prob = predict(model, DataLoader(TensorDataset(x, y), batch_size=8), "cpu")
    assert (yt == y.numpy()).all()
    assert prob.shape == (30, 7)
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(prob), torch.softmax(model(x), 1), atol=1e-6, rtol=0)


def test_out_of_range_label_is_caught_before_the_loss():
    x, _ = data(8)
    y = torch.full((8,), 9)
    model = LeNet()
    with pytest.raises(ValueError, match="label 9 is outside 0..6"):
        train_one_epoch(model, DataLoader(TensorDataset(x, y), batch_size=8), nn.CrossEntropyLoss(),
                        torch.optim.SGD(model.parameters(), lr=0.1), "cpu")


def test_nan_loss_stops_with_clear_error():
    x, y = data(8)
    model = LeNet()
    crit = lambda out, t: nn.functional.cross_entropy(out, t) * float("nan")  # noqa: E731
    with pytest.raises(NonFiniteLossError, match="nan"):
        train_one_epoch(model, DataLoader(TensorDataset(x, y), batch_size=8), crit,
                        torch.optim.SGD(model.parameters(), lr=0.1), "cpu")


def test_fit_keeps_best_by_balanced_accuracy_and_resumes(tmp_path):
    x, y = data(64)
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=torch.Generator())
    val = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16)

    def run(out, epochs, resume=False, model=None):
        torch.manual_seed(0)
        m = model or LeNet()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        h = fit(m, train, val, nn.CrossEntropyLoss(), opt, epochs, "cpu", out_dir=out, resume=resume,
                progress=False, log=None, seed=1)
        return m, h

    full_model, full = run(tmp_path / "a", 3)
    assert [r["epoch"] for r in full] == [1, 2, 3]
    best = load_checkpoint(tmp_path / "a" / "best.pt")
    assert best["best"]["val_balanced_acc"] == max(r["val_balanced_acc"] for r in full)
    run(tmp_path / "b", 2)
    resumed_model, resumed = run(tmp_path / "b", 3, resume=True)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed) == strip(full)  # same seed on CPU: identical, epoch by epoch
    for p, q in zip(full_model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-7, rtol=0)


def test_checkpoint_roundtrip_is_atomic(tmp_path):
    path = save_checkpoint({"a": torch.arange(3)}, tmp_path / "x" / "c.pt")
    assert torch.equal(load_checkpoint(path)["a"], torch.arange(3))
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]


def test_select_device():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="expected auto"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")


def test_grad_scaler_is_the_one_amp_decision():
    """AMP (a GradScaler, hence float16 autocast in train_one_epoch) on CUDA only: never on the CPU,
    whatever ``amp`` asks; ``amp=False`` turns it off on CUDA too."""
    from skinlab.engine import grad_scaler

    for amp in ("auto", True, False):
        assert grad_scaler("cpu", amp) is None
        assert grad_scaler(torch.device("cpu"), amp) is None
    if torch.cuda.is_available():
        assert isinstance(grad_scaler("cuda"), torch.amp.GradScaler) and grad_scaler("cuda", False) is None


def test_fit_takes_its_scaler_from_grad_scaler(monkeypatch):
    """``fit`` (hence ``skinlab train``) asks the same function as the benchmarks."""
    from skinlab import engine

    asked = []

    def spy(device, amp="auto"):
        asked.append((torch.device(device).type, amp))
        return None

    monkeypatch.setattr(engine, "grad_scaler", spy)
    x, y = data(16)
    model = LeNet()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    fit(model, loader, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01), 1, "cpu",
        amp=False, progress=False, log=None)
    assert asked == [("cpu", False)]


def test_make_optimizer_is_adamw_over_the_given_groups():
    from skinlab.engine import make_optimizer
    from skinlab.pipeline import param_groups

    model = LeNet()
    groups = param_groups(model, 1e-3, backbone_lr=1e-4)
    opt = make_optimizer(groups, 1e-3, weight_decay=0.05)
    assert type(opt) is torch.optim.AdamW
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-4]  # each group keeps its rate
    assert all(g["weight_decay"] == 0.05 for g in opt.param_groups)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    with pytest.raises(TypeError):  # no default of its own: the run's is TrainConfig.weight_decay
        make_optimizer(groups, 1e-3)


def test_skinlab_train_builds_its_optimiser_with_make_optimizer(tmp_path, synth_dir, monkeypatch):
    """The benchmarks time ``make_optimizer``'s optimiser because a run trains with it."""
    from skinlab import engine
    from skinlab.pipeline import TrainConfig, train

    built = []
    real = engine.make_optimizer

    def spy(params, lr, weight_decay):
        opt = real(params, lr, weight_decay)
        built.append((lr, weight_decay, [g["lr"] for g in opt.param_groups]))
        return opt

    monkeypatch.setattr(engine, "make_optimizer", spy)
    train(TrainConfig(data=str(synth_dir), out=str(tmp_path / "run"), epochs=1, lr=2e-3, backbone_lr=5e-4,
                      weight_decay=0.03, device="cpu", progress=False, figures=False), log=None)
    assert built == [(2e-3, 0.03, [2e-3, 5e-4])]  # the head at lr, the rest at backbone_lr
