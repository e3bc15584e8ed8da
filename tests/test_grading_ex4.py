"""Exercise 4 (train_one_epoch, evaluate) through the verifier and in the kernel.

* Correct answers written unlike the reference keep 10/10 through the verifier (hidden inputs
  drawn from several batch seeds).
* An answer that only works for the visible inputs passes the visible cells in the kernel and
  loses the hidden points through the verifier.
* The probes: inference_mode counts as no-grad, the optimizer is fresh, plain data comes back.
* ``fresh`` draws valid inputs, and the reference passes every judge on them.
* The same judge gives the same verdict in the kernel and through the verifier.
* A reply the student's code forged (modes, .grad, "before" as a correct answer's would be) earns
  nothing: the mode points rest on numbers and states the judge recomputes, while the honest
  mistakes keep the points they had.
"""

from __future__ import annotations

import copy
import json
import linecache
import math
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from skinlab import grading
from skinlab.grading.ex4_training import judges as ex4
from skinlab.grading import verifier
from skinlab.grading.checking import CHECKS, probe_function
from skinlab.grading.ex4_training import probes
from skinlab.grading.probe_base import roundtrip

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
sys.path.insert(0, str(ROOT / "tests"))
import adversarial_class as adv  # noqa: E402
import simulated_class as sim  # noqa: E402

AID = "ex4_training"
ALL_POINTS = sim.POINTS[AID]


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()


# ---------------------------------------------------------------------------- helpers


def source_nb():
    return json.loads((ROOT / "solutions" / AID / f"{AID}.ipynb").read_text())


def submission(answers: dict[str, str]) -> dict:
    """The release notebook with the solution's answers, ``answers`` ({grade_id: source}) replacing some."""
    nb = nbformat.read(str(ROOT / "exercises" / AID / f"{AID}.ipynb"), as_version=4)
    sources = sim.solution_answers(AID)
    sources.update({k: v.strip("\n") for k, v in answers.items()})
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in sources:
            cell.source = sources[meta["grade_id"]]
    return json.loads(nbformat.writes(nb))


def verify(nb: dict, seed: int = 0, source: dict | None = None):
    verdicts = verifier.verify(AID, source or source_nb(), nb, seed=seed, sandboxed=False, time_limit=2.0)
    return {v.grade_id: v.points for v in verdicts}, {v.grade_id: v.message for v in verdicts}


def run_cell(source: str, namespace: dict, name: str):
    filename = f"<cell {name} {id(namespace)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def answers_ns(answers: dict[str, str]) -> dict:
    ns = {"__name__": "__main__"}
    sources = sim.solution_answers(AID)
    sources.update({k: v.strip("\n") for k, v in answers.items()})
    for gid, src in sources.items():
        run_cell(src, ns, gid)
    return ns


def visible_test_cells() -> dict[str, str]:
    """{grade_id: source} of the test cells with their hidden tests removed (what students see)."""
    nb = source_nb()
    out = {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            src = "".join(cell["source"])
            out[meta["grade_id"]] = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", src, flags=re.S)
    return out


def plain_call(name, fn, *args, _on="", **kwargs):
    return fn(*args, **kwargs)


def unguarded_observe(answers: dict):
    """``observe`` without the guard: lets the reference itself answer (an oracle)."""
    return lambda probe, **params: roundtrip(probe_function(probe)(plain_call, answers, **params))


# ---------------------------------------------------------------------------- answers

# zero_grad(set_to_none=True) AFTER step (the optimizer is fresh: the first batch has no .grad),
# the per-sample loss from a reduction="sum" criterion, batches and model moved with .to(device).
TRAIN_ZERO_AFTER_STEP = '''
import torch
import torch.nn.functional as F


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.to(device)
    model.train(True)
    loss_sum = torch.zeros(())
    hits = 0
    for step, (inputs, targets) in enumerate(loader):
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        out = model(inputs)
        loss = criterion(out, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += F.cross_entropy(out.detach(), targets, reduction="sum")
        hits += int((out.detach().argmax(dim=1) == targets).sum())
    n = len(loader.dataset)
    return float(loss_sum) / n, hits / n
'''

# loss.item() * x.size(0), counts via len(loader.dataset), zero_grad(set_to_none=False) first.
TRAIN_ITEM_TIMES_SIZE = '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    total = 0.0
    correct = 0
    for x, y in loader:
        x = x.to(device)
        y = y.to(device)
        optimizer.zero_grad(set_to_none=False)
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        total += loss.item() * x.size(0)
        correct += logits.argmax(-1).eq(y).sum().item()
    return total / len(loader.dataset), correct / len(loader.dataset)
'''

# torch.inference_mode(), a reduction="sum" loss, accuracy from a float tensor.
EVALUATE_INFERENCE_MODE = '''
import torch
import torch.nn.functional as F


def evaluate(model, loader, criterion, device):
    model.to(device).eval()
    loss_sum, correct, count = 0.0, torch.zeros(()), 0
    with torch.inference_mode():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).float().sum()
            count += labels.numel()
    return loss_sum / count, (correct / count).item()
'''

# A decorator instead of a with-block; the loss of all logits at once; the mode restored after.
EVALUATE_ALL_AT_ONCE = '''
import torch


@torch.no_grad()
def evaluate(model, loader, criterion, device):
    was_training = model.training
    model.eval()
    logits, labels = [], []
    for x, y in loader:
        logits.append(model(x.to(device)))
        labels.append(y.to(device))
    logits, labels = torch.cat(logits), torch.cat(labels)
    model.train(was_training)
    return criterion(logits, labels).item(), (logits.argmax(1) == labels).double().mean().item()
'''

# Right only for the visible inputs: 26 samples in batches of 8 hard-coded.
TRAIN_HARD_CODED = '''
import torch


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    batch_losses, correct = [], 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        batch_losses.append(loss.item())
        correct += (logits.argmax(1) == y).sum().item()
    weights = [8, 8, 8, 2]  # the batches of the example
    return sum(w * l for w, l in zip(weights, batch_losses)) / 26, correct / 26
'''

EVALUATE_HARD_CODED = '''
import torch


def evaluate(model, loader, criterion, device):
    model.eval()
    batch_losses, correct = [], 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x.to(device))
            batch_losses.append(criterion(logits, y.to(device)).item())
            correct += (logits.argmax(1) == y).sum().item()
    return (8 * sum(batch_losses[:3]) + 2 * batch_losses[3]) / 26, correct / 26
'''


# ---------------------------------------------------------------------------- (a) correct, unlike the reference


@pytest.mark.parametrize("train,evaluate", [
    (TRAIN_ZERO_AFTER_STEP, EVALUATE_INFERENCE_MODE),
    (TRAIN_ITEM_TIMES_SIZE, EVALUATE_ALL_AT_ONCE),
], ids=["zero-after-step+inference-mode", "item-times-size+all-at-once"])
@pytest.mark.slow  # each trains through the verifier (~9 s)
def test_correct_answers_unlike_the_reference_keep_full_marks(train, evaluate):
    nb = submission({"train_one_epoch": train, "evaluate": evaluate})
    for seed in (0, 2024):  # different hidden inputs each time
        got, messages = verify(nb, seed=seed)
        assert got == ALL_POINTS, (seed, messages)
    # and in the kernel, hidden tests included
    ns = answers_ns({"train_one_epoch": train, "evaluate": evaluate})
    for gid, src in visible_test_cells().items():
        run_cell(src, dict(ns), gid)


# ---------------------------------------------------------------------------- (b) hard-coded to the visible inputs


def test_an_answer_hard_coded_to_the_visible_inputs_loses_the_hidden_points():
    answers = {"train_one_epoch": TRAIN_HARD_CODED, "evaluate": EVALUATE_HARD_CODED}
    ns = answers_ns(answers)
    for gid, src in visible_test_cells().items():  # the visible cells pass in the kernel
        run_cell(src, dict(ns), gid)
    got, messages = verify(submission(answers), seed=3)
    lost = {gid for gid, pts in got.items() if pts == 0}
    assert lost == {"test_train_matches", "test_train_returns", "test_evaluate_matches"}, messages
    assert all(messages[gid].startswith("(hidden test)") for gid in lost), messages
    assert "train_one_epoch returned mean loss" in messages["test_train_returns"], messages
    assert "evaluate returned mean loss" in messages["test_evaluate_matches"], messages


# ---------------------------------------------------------------------------- (c) the probes and fresh inputs


def test_inference_mode_counts_as_no_grad_in_the_mode_probe():
    ns = answers_ns({"evaluate": EVALUATE_INFERENCE_MODE})
    seen = roundtrip(probes.evaluate_run(plain_call, ns, seed=4, n=26, batch_size=8, data_seed=4, warm=False))
    assert seen["modes"] and all(m == [False, False] for m in seen["modes"])
    assert seen["grads"] is False
    grading.check_evaluate_mode(ns["evaluate"], seed=4)
    grading.check_evaluate_changes_nothing(ns["evaluate"], seed=4)
    grading.check_evaluate_matches(ns["evaluate"], seed=4, n=19, batch_size=4)


def test_probe_returns_plain_data_and_removes_its_hook():
    ns = answers_ns({})
    seen = probes.train_run(plain_call, ns, seed=1, n=11, batch_size=4, lr=0.1, momentum=0.5)
    assert roundtrip(seen).keys() == {"result", "state", "modes"}
    assert seen["result"] == {"tuple": True, "items": [
        {"kind": "number", "value": seen["result"]["items"][0]["value"]},
        {"kind": "number", "value": seen["result"]["items"][1]["value"]}]}
    assert all(isinstance(v, np.ndarray) for v in seen["state"].values())
    assert seen["modes"] == [[True, True]] * 3  # 11 samples in batches of 4, in training mode

    model = probes.tiny_mlp(1)
    before = len(model._forward_pre_hooks)
    from skinlab.grading.ex4_training.probes import _record_modes

    _, handle = _record_modes(model)
    handle.remove()
    assert len(model._forward_pre_hooks) == before


def test_the_optimizer_is_fresh_so_zeroing_after_the_step_is_right():
    """The first batch sees no .grad: a fresh model and optimizer per probe call."""
    ns = answers_ns({"train_one_epoch": TRAIN_ZERO_AFTER_STEP})
    for seed, n, bs, momentum, lr in ((0, 26, 8, 0.9, 0.1), (5, 17, 3, 0.95, 0.2), (9, 14, 6, 0.0, 0.01)):
        grading.check_train_matches(ns["train_one_epoch"], seed=seed, n=n, batch_size=bs, momentum=momentum, lr=lr)
        grading.check_train_returns(ns["train_one_epoch"], seed=seed, n=n, batch_size=bs)


def test_described_results_name_the_classic_return_mistakes():
    def seen_of(result):
        return roundtrip(probes.describe_result(result))

    with pytest.raises(AssertionError, match=r"its mean loss is a tensor \(tensor\(1\.5000\)\): use \.item\(\)"):
        ex4._unpack(seen_of((torch.tensor(1.5), 0.5)), "evaluate")
    with pytest.raises(AssertionError, match=r"should return a tuple \(mean_loss, accuracy\); got \[1\.0, 0\.5\]"):
        ex4._unpack(seen_of([1.0, 0.5]), "evaluate")
    with pytest.raises(AssertionError, match=r"as numbers; its accuracy is '0\.5'"):
        ex4._unpack(seen_of((1.0, "0.5")), "evaluate")
    assert ex4._unpack(seen_of((np.float32(1.5), 1)), "evaluate") == (1.5, 1.0)


@pytest.mark.parametrize("returned,phrase", [
    ("float('nan'), correct / n", "returned mean loss nan"),
    ("total / n, 100 * correct / n", "not a percentage"),
    ("total, correct / n", "That is the sum over samples"),
])
def test_wrong_numbers_fail_with_their_explanation(returned, phrase):
    src = f'''
def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train(); total, correct, n = 0.0, 0, 0
    for x, y in loader:
        optimizer.zero_grad(); out = model(x); loss = criterion(out, y); loss.backward(); optimizer.step()
        total += loss.item() * len(y); correct += (out.argmax(1) == y).sum().item(); n += len(y)
    return {returned}
'''
    ns = answers_ns({"train_one_epoch": src})
    with pytest.raises(AssertionError, match=re.escape(phrase)):
        grading.check_train_returns(ns["train_one_epoch"])
    with pytest.raises(AssertionError, match="the parameters are right, but train_one_epoch returned"):
        grading.check_train_matches(ns["train_one_epoch"])


@pytest.mark.parametrize("check", sorted(n for n, s in CHECKS.items() if s.answers[0] in ("train_one_epoch", "evaluate")))
def test_fresh_inputs_are_valid_and_the_reference_passes_on_them(check):
    from skinlab.engine import evaluate, train_one_epoch

    spec = CHECKS[check]
    assert spec.fresh is not None, f"{check} takes parameters: it needs fresh inputs"
    answers = {"train_one_epoch": train_one_epoch, "evaluate": evaluate}
    draws = [spec.fresh(np.random.default_rng([s, 4])) for s in range(40)]
    assert len({json.dumps(d, sort_keys=True) for d in draws}) > 30  # they vary
    for i, params in enumerate(draws):
        assert json.loads(json.dumps(params)) == params  # JSON-able
        bound = spec.params(kwargs=params)
        if "n" in bound:
            n, bs = bound["n"], bound["batch_size"]
            assert 3 <= bs <= 12 and n > bs and n % bs >= 2, params  # a short last batch, never of 1
        if "momentum" in bound:
            assert 0.0 <= bound["momentum"] <= 0.95 and 0.01 <= bound["lr"] <= 0.2, params
        if i < 8:  # the reference passes its own judge on fresh inputs
            spec.judge(unguarded_observe(answers), **bound)


def test_registered_checks_observe_only_their_own_answer():
    for name in ("check_train_matches", "check_train_returns", "check_train_mode"):
        assert CHECKS[name].answers == ("train_one_epoch",)
    for name in ("check_evaluate_matches", "check_evaluate_mode", "check_evaluate_changes_nothing"):
        assert CHECKS[name].answers == ("evaluate",)


def test_private_helpers_stay_importable_from_the_judge_module():
    model_a, model_b = ex4._tiny_mlp(3), probes.tiny_mlp(3)
    assert ex4._max_param_diff(model_a, model_b) == 0
    assert [len(y) for _, y in ex4._tiny_loader(0)] == [8, 8, 8, 2]
    opt = torch.optim.SGD(model_a.parameters(), lr=0.1)
    loss, acc = ex4._reference_train(model_a, ex4._tiny_loader(0), torch.nn.CrossEntropyLoss(), opt)
    assert math.isfinite(loss) and 0 <= acc <= 1


def test_a_malformed_reply_never_passes():
    good = {"tuple": True, "items": [{"kind": "number", "value": 1.0}, {"kind": "number", "value": 0.5}]}
    for bad in (None, [], {"tuple": True}, {"tuple": True, "items": [1.0, 0.5]},
                {"tuple": True, "items": [{"kind": "number", "value": True}, good["items"][1]]},
                {"tuple": True, "items": [{"kind": "number", "value": "1"}, good["items"][1]]}):
        with pytest.raises(AssertionError):
            ex4._unpack(bad, "evaluate")
    with pytest.raises(AssertionError):
        ex4.check_evaluate_mode.spec.judge(lambda probe, **p: {"modes": [[False, "no"]], "grads": False})
    with pytest.raises(AssertionError, match="created parameter gradients"):
        ex4.check_evaluate_mode.spec.judge(lambda probe, **p: {"modes": [[False, False]], "grads": None})
    with pytest.raises(AssertionError, match="could not be read"):
        ex4.check_evaluate_changes_nothing.spec.judge(lambda probe, **p: {"before": {}, "after": None})
    assert ex4._state_param_diff({}, ex4._tiny_mlp(0)) == float("inf")


# ---------------------------------------------------------------------------- (d) the same verdict both ways


def _one_check_notebook(answer_name: str, answer_source: str, call: str) -> dict:
    """A source notebook of one answer cell and one test cell (``call``), as the verifier reads it."""
    answer = nbformat.v4.new_code_cell(answer_source)
    answer.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False, "grade_id": answer_name}
    test = nbformat.v4.new_code_cell(f"from skinlab.grading import {call.split('(')[0]}\n\n{call}")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "t", "points": 1}
    return json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[answer, test])))


def _ex4_variants():
    import test_grading_checks as tgc  # the mistakes the in-kernel tests explain

    out = [(name, check, src, phrase) for name, check, src, phrase in tgc.VARIANTS
           if name in ("train_one_epoch", "evaluate")]
    out.append(("train_one_epoch", "check_train_matches", sim.MISTAKES[AID]["train_one_epoch"],
                tgc.MESSAGES[AID, "mistake"]))
    out.append(("train_one_epoch", "check_train_returns", TRAIN_HARD_CODED, "train_one_epoch returned mean loss"))
    out.append(("evaluate", "check_evaluate_matches", EVALUATE_HARD_CODED, "evaluate returned mean loss"))
    return out


@pytest.mark.parametrize("name,check,src,phrase", _ex4_variants(),
                         ids=[f"{v[1]}-{i}" for i, v in enumerate(_ex4_variants())])
def test_the_same_judge_gives_the_same_verdict_in_the_kernel_and_through_the_verifier(name, check, src, phrase):
    params = {"check_train_matches": "seed=2, n=22, batch_size=5, momentum=0.5, lr=0.05",
              "check_train_returns": "seed=2, n=22, batch_size=5",
              "check_evaluate_matches": "seed=2, n=22, batch_size=5"}.get(check, "seed=2")
    call = f"{check}({name}, {params})"
    ns = {"__name__": "__main__"}
    run_cell(src, ns, name)
    with pytest.raises(AssertionError) as info:
        exec(call, {**ns, check: getattr(grading, check)})
    kernel = str(info.value)
    assert phrase in kernel
    nb = _one_check_notebook(name, src, call)
    _, messages = verify(copy.deepcopy(nb), source=nb)
    assert messages["t"] == kernel


# ---------------------------------------------------------------------------- feedback that names the mistake (issue #20)

EVALUATE_CALLS_BACKWARD = adv.EX4.EVALUATE_BACKWARD  # the adversarial class's student

EVALUATE_GRAD_ENABLED = EVALUATE_CALLS_BACKWARD.replace("        loss.backward()\n", "")

BACKWARD_PHRASE = "computed gradients during evaluation: it called backward()"


def test_evaluate_calling_backward_is_told_gradients_were_computed():
    ns = answers_ns({"evaluate": EVALUATE_CALLS_BACKWARD})
    with pytest.raises(AssertionError) as info:
        grading.check_evaluate_mode(ns["evaluate"], seed=2)
    assert BACKWARD_PHRASE in str(info.value) and "remove loss.backward()" in str(info.value)


def test_evaluate_without_no_grad_but_no_backward_keeps_the_plain_message():
    ns = answers_ns({"evaluate": EVALUATE_GRAD_ENABLED})
    with pytest.raises(AssertionError) as info:
        grading.check_evaluate_mode(ns["evaluate"], seed=2)
    assert str(info.value).startswith("evaluate ran the model with gradients enabled")
    assert "backward" not in str(info.value)


def test_evaluate_calling_backward_through_the_verifier_same_points():
    got, messages = verify(submission({"evaluate": EVALUATE_CALLS_BACKWARD}), seed=3)
    assert got == {**ALL_POINTS, "test_evaluate_mode": 0}, messages  # only the message changed
    assert BACKWARD_PHRASE in messages["test_evaluate_mode"]


# ---------------------------------------------------------------------------- forged replies (the worker's word)
#
# The student's code shares the worker with the probes: it can replace them or write the reply
# itself. A point may rest only on values the judge recomputes; what the worker says about itself
# (modes, .grad, the state "before") may take a point away, never grant one. Each attack below is
# an ``observe`` that hands the judge a doctored reply.

EX4_CHECKS = sorted(n for n, s in CHECKS.items() if s.answers[0] in ("train_one_epoch", "evaluate"))

TRAIN_NO_ZERO_GRAD = sim.MISTAKES[AID]["train_one_epoch"]
TRAIN_NO_STEP = TRAIN_ITEM_TIMES_SIZE.replace("        optimizer.step()\n", "")
TRAIN_EVAL_MODE = TRAIN_ITEM_TIMES_SIZE.replace("    model.train()\n", "")
# Accuracy from a second forward in training mode: BatchNorm sees every batch twice.
TRAIN_SECOND_FORWARD = TRAIN_ITEM_TIMES_SIZE.replace("logits.argmax(-1)", "model(x).argmax(-1)")
EVALUATE_TRAIN_MODE = EVALUATE_INFERENCE_MODE.replace(".eval()", "")


def _solution(name):
    return answers_ns({})[name]


def forged(answers: dict, edit):
    """``observe`` whose reply the student's code rewrote: the real probe runs, then ``edit(reply)``."""
    honest = unguarded_observe(answers)

    def observe(probe, **params):
        seen = honest(probe, **params)
        edit(seen, params)
        return seen

    return observe


def untouched_state(probe, **params):
    """The state a worker can report without running any answer: the probe's model as built."""
    if probe.endswith("train_run"):
        model = probes.tiny_mlp(params["seed"], batchnorm=params.get("batchnorm", True))
    else:
        model = probes.tiny_mlp(params["seed"], dropout=params["dropout"])
        if params["warm"]:
            probes.warm_batchnorm(model, params["seed"])
    return roundtrip(probes.state_arrays(model))


def fabricated(probe, **params):
    """A reply written without running any answer: every self-report as a correct answer's."""
    result = {"tuple": True, "items": [{"kind": "number", "value": 0.9}, {"kind": "number", "value": 0.5}]}
    batches = -(-params["n"] // params["batch_size"])
    if probe.endswith("train_run"):
        return {"result": result, "state": untouched_state(probe, **params), "modes": [[True, True]] * batches}
    after = untouched_state(probe, **params)
    return {"result": result, "before": after, "after": after, "modes": [[False, False]] * batches, "grads": False}


@pytest.mark.parametrize("check", EX4_CHECKS)
def test_a_fabricated_reply_with_perfect_self_reports_scores_nothing(check):
    spec = CHECKS[check]
    with pytest.raises(AssertionError):
        spec.judge(fabricated, **spec.params())


def test_train_mode_rests_on_batchnorm_statistics_not_on_the_reported_modes():
    def claim_training(seen, params):
        seen["modes"] = [[True, True]] * len(seen["modes"])

    judge = ex4.check_train_mode.spec.judge
    # Trained in eval mode, modes rewritten: BatchNorm's statistics never moved, and the judge sees it.
    with pytest.raises(AssertionError, match="evaluation mode while training.*call model.train()"):
        judge(forged({"train_one_epoch": answers_ns({"train_one_epoch": TRAIN_EVAL_MODE})["train_one_epoch"]},
                     claim_training), seed=3)
    # Without the forgery the same answer fails with the same message (from the reported modes).
    with pytest.raises(AssertionError, match="evaluation mode while training"):
        judge(unguarded_observe(answers_ns({"train_one_epoch": TRAIN_EVAL_MODE})), seed=3)
    # The correct answer passes, honest or not about its modes.
    judge(forged({"train_one_epoch": _solution("train_one_epoch")}, claim_training), seed=3)


def test_train_mode_keeps_its_point_for_mistakes_of_the_optimizer_part():
    """lr 0: a forgotten zero_grad() or step() costs check_train_matches, not the mode point."""
    for src in (TRAIN_NO_ZERO_GRAD, TRAIN_NO_STEP, TRAIN_ZERO_AFTER_STEP, TRAIN_HARD_CODED):
        ns = answers_ns({"train_one_epoch": src})
        grading.check_train_mode(ns["train_one_epoch"], seed=4)
    with pytest.raises(AssertionError, match="parameters did not change"):
        grading.check_train_matches(answers_ns({"train_one_epoch": TRAIN_NO_STEP})["train_one_epoch"])


def test_train_mode_explains_a_second_forward_per_batch_from_the_values():
    ns = answers_ns({"train_one_epoch": TRAIN_SECOND_FORWARD})
    with pytest.raises(AssertionError, match="BatchNorm counted 8 batches during the epoch; the loader has 4"):
        grading.check_train_mode(ns["train_one_epoch"], seed=1)


def test_train_mode_fails_a_state_that_only_the_worker_vouches_for():
    def parameters_moved(seen, params):
        seen["state"]["0.weight"] = seen["state"]["0.weight"] + 1e-3

    with pytest.raises(AssertionError, match="the learning rate was 0, yet the parameters changed"):
        ex4.check_train_mode.spec.judge(forged({"train_one_epoch": _solution("train_one_epoch")}, parameters_moved))


def test_evaluate_mode_needs_the_eval_mode_numbers_not_only_the_reported_modes():
    def claim_eval_no_grads(seen, params):
        seen["modes"] = [[False, False]] * len(seen["modes"])
        seen["grads"] = False
        seen["after"] = untouched_state("ex4_training.evaluate_run", **params)

    judge = ex4.check_evaluate_mode.spec.judge
    assert "backward" in ex4.check_evaluate_mode.spec.self_report
    with pytest.raises(AssertionError, match="in evaluation mode this model gives mean loss"):
        judge(forged({"evaluate": answers_ns({"evaluate": EVALUATE_TRAIN_MODE})["evaluate"]}, claim_eval_no_grads))
    judge(forged({"evaluate": _solution("evaluate")}, claim_eval_no_grads))  # the value part holds


def test_evaluate_mode_believes_a_report_of_gradients_only_to_take_the_point_away():
    def report_backward(seen, params):
        seen["grads"] = True

    with pytest.raises(AssertionError, match="created parameter gradients"):
        ex4.check_evaluate_mode.spec.judge(forged({"evaluate": _solution("evaluate")}, report_backward))


def test_evaluate_changes_nothing_compares_with_the_state_the_judge_built():
    def before_is_after(seen, params):  # the old attack: report the changed state as "before"
        seen["before"] = seen["after"]

    judge = ex4.check_evaluate_changes_nothing.spec.judge
    train_mode = {"evaluate": answers_ns({"evaluate": EVALUATE_TRAIN_MODE})["evaluate"]}
    with pytest.raises(AssertionError, match=r"changed the model's BatchNorm running statistics \(1\.running_mean\)"):
        judge(forged(train_mode, before_is_after), seed=5)

    def restore_state(seen, params):  # the right state, but evaluate's numbers are train-mode ones
        seen["after"] = untouched_state("ex4_training.evaluate_run", **params)

    with pytest.raises(AssertionError, match="left the model as it was, but returned"):
        judge(forged(train_mode, restore_state), seed=5)
    judge(unguarded_observe({"evaluate": _solution("evaluate")}), seed=5)


@pytest.mark.parametrize("returned", [
    "sum(batch_means) / len(batch_means), correct / n",  # the mean of the batch means
    "total, correct / n",  # a sum
    "total / n, 100 * correct / n",  # a percentage
    "torch.tensor(total / n), correct / n",  # a tensor
])
def test_evaluate_averaging_mistakes_lose_the_matches_points_only(returned):
    src = f'''
import torch
def evaluate(model, loader, criterion, device):
    model.eval(); total, correct, n, batch_means = 0.0, 0, 0, []
    with torch.no_grad():
        for x, y in loader:
            out = model(x); loss = criterion(out, y).item(); batch_means.append(loss)
            total += loss * len(y); correct += (out.argmax(1) == y).sum().item(); n += len(y)
    return {returned}
'''
    ns = answers_ns({"evaluate": src})
    grading.check_evaluate_mode(ns["evaluate"], seed=6)
    grading.check_evaluate_changes_nothing(ns["evaluate"], seed=6)
    with pytest.raises(AssertionError):
        grading.check_evaluate_matches(ns["evaluate"], seed=6, n=19, batch_size=4)


def test_only_the_graph_check_rests_on_the_workers_word():
    declared = {name: CHECKS[name].self_report for name in EX4_CHECKS if CHECKS[name].self_report}
    assert set(declared) == {"check_evaluate_mode"}
    assert ALL_POINTS["test_evaluate_mode"] <= 1
