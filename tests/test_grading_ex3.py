"""Exercise 3 (LeNet) through both paths: in the kernel (advice) and through the verifier (verdict).

* Correct LeNets written unlike the reference (functional ReLU and pooling, nn.Sequential blocks,
  linear layers declared before the convolutions, ``x.view`` instead of ``torch.flatten``) keep
  10/10: layers are matched in the order the forward pass calls them, never by declaration.
* An answer tuned to the visible tests' inputs passes the visible cells in the kernel and loses
  the hidden points through the verifier (hidden inputs are drawn at grading time).
* Layers called twice, sharing weights, not registered, or called around their hooks get a
  clear message; the probe leaves no hook behind.
* The same judge gives the same verdict in the kernel and through the verifier.
"""

from __future__ import annotations

import copy
import json
import linecache
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from skinlab import grading
from skinlab.grading import testcells, verifier
from skinlab.grading.checking import CHECKS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import adversarial_class as adv  # noqa: E402
import bank  # noqa: E402
import simulated_class as sim  # noqa: E402

AID = "ex3_lenet"
FULL = sim.expected_points(AID, "solution")  # {grade_id: points}, 10 in all

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()


# ---------------------------------------------------------------------------- answers

BANK = bank.answers(AID)  # solutions/ex3_lenet/answers.py: the answers below, written once
CORRECT = BANK.CORRECT
CHEAT_NUM_CLASSES, CHEAT_SEED = BANK.CHEAT_NUM_CLASSES, BANK.CHEAT_SEED


def run_cell(source: str, namespace: dict, name: str):
    """exec ``source`` as a notebook cell would run (its own file name in linecache)."""
    filename = f"<cell {name} {id(namespace)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def lenet(source: str):
    ns = {"__name__": "__main__"}
    run_cell(source, ns, "LeNet")
    return ns["LeNet"]


# ---------------------------------------------------------------------------- notebooks


def source_nb():
    return json.loads((ROOT / "solutions" / AID / f"{AID}.ipynb").read_text())


def submitted(answer: str) -> dict:
    nb = sim.submission(ROOT / "exercises" / AID / f"{AID}.ipynb", AID, "solution")
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "LeNet":
            cell.source = answer
    return json.loads(nbformat.writes(nb))


def verify(answer: str, seed: int = 0):
    verdicts = verifier.verify(AID, source_nb(), submitted(answer), seed=seed, sandboxed=False, time_limit=2.0)
    return {v.grade_id: v.points for v in verdicts}, {v.grade_id: v.message for v in verdicts}


def visible_cells() -> dict[str, str]:
    """{grade_id: source} of the test cells without their hidden tests, as students see them."""
    out = {}
    for cell in source_nb()["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            text = "".join(cell["source"])
            out[meta["grade_id"]] = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", text, flags=re.S)
    return out


def in_kernel_failures(cls) -> dict[str, str]:
    failed = {}
    for gid, src in visible_cells().items():
        try:
            run_cell(src, {"__name__": "__main__", "LeNet": cls}, gid)
        except Exception as exc:  # noqa: BLE001
            failed[gid] = f"{type(exc).__name__}: {exc}"
    return failed


def hidden_calls(seed: int):
    """[(grade_id, check name, params)] of the hidden calls as the verifier draws them for ``seed``."""
    out = []
    for test in testcells.test_cells(source_nb()):
        for i, call in enumerate(test.calls):
            if call.hidden:
                out.append((test.grade_id, call.check, testcells.call_params(AID, test, i, call, seed)))
    return out


# ---------------------------------------------------------------------------- (a) correct answers written otherwise


@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_lenet_written_otherwise_passes_in_the_kernel_with_hidden_inputs_too(name):
    cls = lenet(CORRECT[name])
    assert in_kernel_failures(cls) == {}
    for seed in (0, 1, 2):
        for _, check, params in hidden_calls(seed):
            getattr(grading, check)(cls, **params)
    grading.check_lenet_parameters(cls)


@pytest.mark.parametrize("name", ["functional", "sequential", "linear_first"])
def test_correct_lenet_written_otherwise_keeps_full_marks_through_the_verifier(name):
    got, messages = verify(CORRECT[name], seed=5)
    assert got == FULL, messages


# ---------------------------------------------------------------------------- (b) tuned to the visible inputs


def _seed_where(predicate) -> int:
    return next(s for s in range(200) if predicate(hidden_calls(s)))


def test_answer_tuned_to_the_visible_num_classes_loses_the_hidden_points():
    cls = lenet(CHEAT_NUM_CLASSES)
    assert in_kernel_failures(cls) == {}  # every visible cell passes in the kernel
    seed = _seed_where(lambda calls: all(p["num_classes"] not in (2, 7) for _, _, p in calls))
    got, messages = verify(CHEAT_NUM_CLASSES, seed=seed)
    assert got == {**FULL, "test_lenet_output": 0, "test_lenet_layers": 0, "test_lenet_equivalent": 0}, messages
    assert messages["test_lenet_output"].startswith("(hidden test)")
    assert "use the num_classes argument" in messages["test_lenet_output"]


def test_answer_tuned_to_the_visible_seed_loses_the_hidden_points():
    cls = lenet(CHEAT_SEED)
    assert in_kernel_failures(cls) == {}
    got, messages = verify(CHEAT_SEED, seed=1)
    assert got == {**FULL, "test_lenet_equivalent": 0}, messages
    assert "(hidden test)" in messages["test_lenet_equivalent"]
    assert "no ReLU after the second convolution" in messages["test_lenet_equivalent"]


def test_hidden_inputs_cover_the_ranges():
    drawn = [p for s in range(40) for _, _, p in hidden_calls(s)]
    classes = {p["num_classes"] for p in drawn if "num_classes" in p}
    batches = {p["batch"] for p in drawn if "batch" in p}
    seeds = {p["seed"] for p in drawn if "seed" in p}
    assert classes <= set(range(2, 13)) and len(classes) >= 8
    assert min(batches) >= 1 and len(batches) >= 5
    assert 0 not in seeds and len(seeds) == len([p for p in drawn if "seed" in p])
    for name, spec in CHECKS.items():
        if name.startswith("check_lenet") and spec.params():
            assert spec.fresh is not None, name
            rng = np.random.default_rng(0)
            for _ in range(20):
                assert set(spec.fresh(rng)) <= set(spec.params()), name


# ---------------------------------------------------------------------------- (c) forward order, reuse, sharing, hooks


def test_linear_layers_declared_first_no_longer_crash_the_equivalence_check():
    # The old checker matched parameters by shape with list.remove (tensor ==): it raised.
    cls = lenet(CORRECT["linear_first"])
    grading.check_lenet_equivalent(cls, seed=3, num_classes=5, batch=2)
    grading.check_lenet_layers(cls, num_classes=11, batch=3)


LAYER_TWICE = BANK.LAYER_TWICE

SHARED_WEIGHTS = BANK.SHARED_WEIGHTS

PLAIN_LIST = BANK.PLAIN_LIST

AROUND_THE_HOOKS = BANK.AROUND_THE_HOOKS

NO_BIAS = BANK.NO_BIAS

WRONG_ORDER = CORRECT["pool_then_relu"]


@pytest.mark.parametrize("source,check,phrase", [
    (LAYER_TWICE, "check_lenet_layers", "calls the same layer, Linear(120→120), twice (as its 4th and 5th layer)"),
    (LAYER_TWICE, "check_lenet_equivalent", "calls the same layer, Linear(120→120), twice"),
    (SHARED_WEIGHTS, "check_lenet_layers", "the 5th layer (Linear(120→120)) uses the 4th layer's weights"),
    (SHARED_WEIGHTS, "check_lenet_equivalent", "uses the 4th layer's weights"),
    (PLAIN_LIST, "check_lenet_layers", "which is not registered in your model"),
    (AROUND_THE_HOOKS, "check_lenet_layers", "Declared in __init__ but never called as layer(x) in forward: Linear(84→7)"),
    (AROUND_THE_HOOKS, "check_lenet_equivalent", "your forward calls only 4 convolution / linear layers"),
    (NO_BIAS, "check_lenet_equivalent", "the 1st layer (Conv2d(3→6, kernel 5x5, stride 1, padding 0)) has no bias"),
    (NO_BIAS, "check_lenet_parameters", "yours has 61,745"),
])
def test_unusual_models_get_a_clear_message(source, check, phrase):
    with pytest.raises(AssertionError) as info:
        getattr(grading, check)(lenet(source))
    assert phrase in str(info.value)


LINEAR_CALLED_FIRST = BANK.LINEAR_CALLED_FIRST


def test_layers_are_matched_in_the_order_forward_calls_them():
    with pytest.raises(AssertionError, match=r"the 1st layer should be Conv2d\(3→6.*yours is Linear\(400→120\) "
                                             r"\(layers in the order your forward calls them\)"):
        grading.check_lenet_layers(lenet(LINEAR_CALLED_FIRST))
    with pytest.raises(AssertionError, match=r"the 1st layer your forward calls is Linear\(400→120\)"):
        grading.check_lenet_equivalent(lenet(LINEAR_CALLED_FIRST))
    # ReLU and max-pooling swapped compute the same function (max-pooling commutes with ReLU)
    grading.check_lenet_equivalent(lenet(WRONG_ORDER), seed=4, num_classes=3)


def test_a_wrong_declared_layer_is_named_even_when_forward_raises():
    cls = lenet(sim.RAISES[AID]["LeNet"])
    for check in (grading.check_lenet_layers, grading.check_lenet_equivalent):
        with pytest.raises(AssertionError, match=r"the 3rd layer should be Linear\(400→120\) \(16 channels"):
            check(cls)


def test_the_probe_leaves_no_hook_behind():
    from torch.nn.modules import module as torch_module

    before = dict(torch_module._global_forward_hooks)
    for source in (CORRECT["sequential"], sim.RAISES[AID]["LeNet"], LAYER_TWICE):
        cls = lenet(source)
        for check in (grading.check_lenet_layers, grading.check_lenet_equivalent):
            try:
                check(cls)
            except AssertionError:
                pass
    assert dict(torch_module._global_forward_hooks) == before
    model = lenet(CORRECT["sequential"])()
    assert all(not m._forward_hooks for m in model.modules())


def test_a_class_that_is_no_module_is_told_so():
    with pytest.raises(AssertionError, match=r"should create a torch.nn.Module; got list"):
        grading.check_lenet_equivalent(lenet("def LeNet(num_classes=7):\n    return [num_classes]\n"))


# ---------------------------------------------------------------------------- (d) one judge, two paths


def _in_kernel_message(cls, check: str, params: dict) -> tuple[str, bool]:
    """(message, exact): the AssertionError's text, or the start of the verifier's report of an
    exception that the kernel propagates from the student's code."""
    try:
        getattr(grading, check)(cls, **params)
    except AssertionError as exc:
        return str(exc), True
    except Exception as exc:  # noqa: BLE001 - propagated from the student's code, as in a notebook
        return f"your LeNet raised {type(exc).__name__}", False
    return "", True


@pytest.mark.parametrize("answer", ["mistake", "raises", "avg_pool", "softmax", "wrong_conv"])
def test_same_verdict_in_the_kernel_and_through_the_verifier(answer):
    sources = {"mistake": sim.MISTAKES[AID]["LeNet"], "raises": sim.RAISES[AID]["LeNet"],
               **{name: src for name, _, src, _ in _variants()}}
    seed = 7
    got, messages = verify(sources[answer], seed=seed)
    cls = lenet(sources[answer])
    for test in testcells.test_cells(source_nb()):
        expected, exact = "", True
        for i, call in enumerate(test.calls):
            grading.reset()
            message, exact = _in_kernel_message(cls, call.check, testcells.call_params(AID, test, i, call, seed))
            if message:
                expected = ("(hidden test) " if call.hidden else "") + message
                break
        assert (got[test.grade_id] == 0) == bool(expected), (test.grade_id, messages[test.grade_id], expected)
        if exact:
            assert messages[test.grade_id] == expected
        else:
            assert messages[test.grade_id].startswith(expected + " on "), (messages[test.grade_id], expected)


def _variants():
    """The LeNet mistakes of tests/test_grading_checks.py, plus one more."""
    seq = ("self.f = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), {pool}(2), nn.Conv2d(6, {c2}, 5), nn.ReLU(), "
           "{pool}(2), nn.Flatten(), nn.Linear({f1}, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), "
           "nn.Linear(84, num_classes){end})")
    body = BANK.LENET_HEADER + ("class LeNet(nn.Module):\n    def __init__(self, num_classes=7):\n        super().__init__()\n"
                     "        {seq}\n\n    def forward(self, x):\n        return self.f(x)\n")
    make = lambda **kw: body.format(seq=seq.format(**{"pool": "nn.MaxPool2d", "c2": 16, "f1": 400, "end": "", **kw}))  # noqa: E731
    return [
        ("avg_pool", "check_lenet_equivalent", make(pool="nn.AvgPool2d"), "average pooling"),
        ("softmax", "check_lenet_logits", make(end=", nn.Softmax(dim=1)"), "ends with softmax"),
        ("wrong_conv", "check_lenet_layers", make(c2=12, f1=300), "the 2nd layer should be Conv2d(6→16"),
    ]


@pytest.mark.parametrize("name,check,source,phrase", _variants(), ids=[v[0] for v in _variants()])
def test_variant_messages(name, check, source, phrase):
    with pytest.raises(AssertionError, match=re.escape(phrase)):
        getattr(grading, check)(lenet(source))


# ---------------------------------------------------------------------------- feedback that names the mistake (issue #20)

# The functional answer with the ReLUs after both linear layers left out.
NO_LINEAR_RELUS = BANK.NO_LINEAR_RELUS_LENET
assert NO_LINEAR_RELUS.count("F.relu") == 2  # only the convolutions' are left

BOTH_LINEAR = "no ReLU after the first linear layer, nor after the second linear layer"


def test_missing_relus_after_both_linear_layers_are_named_in_the_kernel():
    with pytest.raises(AssertionError) as info:
        grading.check_lenet_equivalent(lenet(NO_LINEAR_RELUS), seed=0, num_classes=7)
    assert BOTH_LINEAR in str(info.value)


def test_one_missing_relu_is_still_named_alone():
    one = NO_LINEAR_RELUS.replace("x = self.fc2(x)", "x = F.relu(self.fc2(x))")
    with pytest.raises(AssertionError) as info:
        grading.check_lenet_equivalent(lenet(one), seed=0, num_classes=7)
    assert str(info.value).endswith("Your network has no ReLU after the first linear layer.")


def test_missing_relus_after_both_linear_layers_are_named_by_the_verifier_same_points():
    got, messages = verify(NO_LINEAR_RELUS, seed=5)
    assert got == {**FULL, "test_lenet_equivalent": 0}, messages  # only the message changed
    assert BOTH_LINEAR in messages["test_lenet_equivalent"]


# ---------------------------------------------------------------------------- points from recomputed values (issue #20)

# The answers of the adversarial class that lie to the grader about themselves.
ONE_LINEAR, FORGED_PROBES, SELF_ZEROING = BANK.ONE_LINEAR_LENET, BANK.FORGED_LENET_PROBES, BANK.SELF_ZEROING_LENET
# What a one-Linear "LeNet" honestly scores: the output's shape and raw logits, nothing else.
ONE_LINEAR_POINTS = adv.ONE_LINEAR_POINTS


def test_a_one_linear_model_scores_what_its_values_show():
    got, messages = verify(ONE_LINEAR, seed=3)
    assert got == ONE_LINEAR_POINTS, messages


def test_forged_probe_replies_earn_nothing_a_one_linear_model_does_not():
    got, messages = verify(FORGED_PROBES, seed=3)
    assert got == ONE_LINEAR_POINTS, messages
    assert "should have shape (B, 6, 28, 28)" in messages["test_lenet_layers"]  # read from its values
    assert "does not compute LeNet-5's layers" in messages["test_lenet_parameters"]
    assert "differ from LeNet-5's" in messages["test_lenet_equivalent"]


def test_a_forged_zero_chain_without_a_model_earns_nothing():
    got, messages = verify(BANK.FORGED_ZERO_CHAIN, seed=3)
    assert got == {gid: 0 for gid in FULL}, messages


def test_rewritten_shapes_earn_nothing_the_model_s_values_do_not():
    """Red team, round 2: a LeNet without its second pooling, folding four rows per image into
    the batch, whose worker reported LeNet's shapes, took layers and output (6/10)."""
    honest, _ = verify(BANK.FORGED_SHAPES_HONEST, seed=3)
    forged, messages = verify(BANK.FORGED_SHAPES, seed=3)
    assert forged == honest, messages
    # four rows per image: no layer after the fold computes on one image's values, so even its
    # right parameter count has no forward pass behind it
    assert sum(forged.values()) == 0, messages
    assert "not one row per image" in messages["test_lenet_output"]


def test_a_lazy_first_linear_layer_is_a_correct_lenet():
    got, messages = verify(CORRECT["lazy"], seed=3)
    assert got == FULL, messages


def test_a_model_that_zeroes_its_weights_in_eval_mode_is_judged_on_the_grader_s_weights():
    got, messages = verify(SELF_ZEROING, seed=3)
    assert got["test_lenet_equivalent"] == 0, messages
    assert got == {gid: 0 for gid in FULL}, messages  # in eval mode its forward computes none of its layers
    assert "without changing its weight or bias in forward" in messages["test_lenet_layers"]


def _fake(reply):
    return lambda probe, **params: reply


def test_every_structural_judge_wants_values_not_descriptions():
    """A reply that describes LeNet-5 perfectly but whose values are not the layers' computation
    fails every cell but the output's shape; the true trace of the reference passes them all."""
    from skinlab.grading.ex3_lenet import probes

    ns = {"__name__": "__main__"}
    run_cell(CORRECT["functional"], ns, "LeNet")
    honest = {"LeNet": ns["LeNet"]}
    call = lambda name, fn, *a, _on="", **k: fn(*a, **k)  # noqa: E731
    trace = probes.layers(call, honest, 7, 3, 11)
    CHECKS["check_lenet_layers"].judge(_fake(trace), num_classes=7, batch=3, seed=11)
    for key, change in (("input", lambda v: v * 0), ("output", lambda v: v + 1e-3)):
        for i in range(5):
            forged = copy.deepcopy(trace)
            forged["layers"][i][key] = change(forged["layers"][i][key])
            with pytest.raises(AssertionError):
                CHECKS["check_lenet_layers"].judge(_fake(forged), num_classes=7, batch=3, seed=11)
    # the same values under another seed: the grader's weights differ, nothing is confirmed
    with pytest.raises(AssertionError, match="does not receive the images|is not what that layer computes"):
        CHECKS["check_lenet_layers"].judge(_fake(trace), num_classes=7, batch=3, seed=12)
    equivalent = probes.equivalent(call, honest, 11, 7, 3)
    CHECKS["check_lenet_equivalent"].judge(_fake(equivalent), seed=11, num_classes=7, batch=3)
    with pytest.raises(AssertionError, match="differ from LeNet-5's"):
        CHECKS["check_lenet_equivalent"].judge(_fake(equivalent), seed=12, num_classes=7, batch=3)


def test_the_grader_s_weights_are_drawn_from_the_seed_alone():
    from skinlab.grading.ex3_lenet.probes import grader_weights

    a = grader_weights(5, 2, (120, 400), (120,))
    assert all(torch.equal(x, y) for x, y in zip(a, grader_weights(5, 2, (120, 400), (120,))))
    assert not torch.equal(a[0], grader_weights(6, 2, (120, 400), (120,))[0])
    assert not torch.equal(a[0][:84, :120], grader_weights(5, 3, (84, 120), (84,))[0])
    assert grader_weights(5, 0, (6, 3, 5, 5), None)[1] is None
    assert abs(float(a[0].std()) - 400 ** -0.5) < 0.005
