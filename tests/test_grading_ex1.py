"""Exercise 1 (``split_by_lesion``) through the verifier: judges over plain data from the probes.

* correct answers written unlike the reference keep full marks, at grading time's fresh inputs too;
* an answer hard-coded to the visible test inputs passes the visible cells in the kernel but
  loses the hidden points;
* the reference split passes every check at 200 fresh draws (the tolerances hold for what
  ``fresh`` draws), the probe reports a changed input DataFrame, the determinism probe reports
  three calls;
* in the kernel and through the verifier, the same judge gives the same verdict on the same
  mistakes.

The worker runs unsandboxed here (the sandbox has its own tests).
"""

from __future__ import annotations

import copy
import json
import linecache
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from skinlab import grading
from skinlab.grading import verifier
from skinlab.grading.checking import CHECKS, probe_function
from skinlab.grading.ex1_split import probes
from skinlab.grading.probe_base import roundtrip
from skinlab.split import DEFAULT_FRACTIONS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import simulated_class as sim  # noqa: E402

AID = "ex1_split"
CELLS = tuple(sim.POINTS[AID])
FULL = dict(sim.POINTS[AID])
SPLIT_CHECKS = ("check_split_output", "check_split_no_leak", "check_split_fractions", "check_split_stratified",
                "check_split_deterministic")
_HIDDEN = re.compile(r"\n?### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()


# ---------------------------------------------------------------------------- helpers


def source_nb() -> dict:
    return json.loads((ROOT / "solutions" / AID / f"{AID}.ipynb").read_text())


def visible_only(nb: dict) -> dict:
    """The source notebook with its hidden tests removed: only the visible check calls."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = _HIDDEN.sub("", src)
    return nb


def submission(answer: str) -> dict:
    """The solution notebook with the answer cell replaced by ``answer`` (what a student hands in)."""
    nb = source_nb()
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            cell["source"] = answer.strip("\n")
    return nb


def verify(answer: str, seed: int = 0, source: dict | None = None):
    verdicts = verifier.verify(AID, source or source_nb(), submission(answer), seed=seed, sandboxed=False,
                               time_limit=5.0)
    return {v.grade_id: v.points for v in verdicts}, {v.grade_id: v.message for v in verdicts}


def define(answer: str, name: str = "answer") -> dict:
    """Run an answer cell as the notebook would (its source in linecache, as IPython does)."""
    ns = {"__name__": "__main__"}
    filename = f"<cell {name} {id(ns)}>"
    linecache.cache[filename] = (len(answer), None, answer.splitlines(True), filename)
    exec(compile(answer, filename, "exec"), ns)
    return ns


def grade_cell_sources(nb: dict) -> dict[str, str]:
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def in_kernel(answer: str) -> dict[str, BaseException | None]:
    """{test cell: None or what its visible calls raised} in the student's kernel (guard on)."""
    ns = define(answer)
    out = {}
    for gid, src in grade_cell_sources(visible_only(source_nb())).items():
        grading.reset()
        try:
            exec(compile(src, f"<test {gid}>", "exec"), dict(ns))
            out[gid] = None
        except Exception as exc:  # noqa: BLE001 - what the student would see
            out[gid] = exc
    return out


def _plain_call(name, fn, *args, _on="", **kwargs):
    return fn(*args, **kwargs)


def judged(fn):
    """``observe`` for running a judge on a trusted function (no guard, no worker)."""
    return lambda probe, **params: roundtrip(probe_function(probe)(_plain_call, {"split_by_lesion": fn}, **params))


def fresh_params(check: str, i: int, key: int = 0) -> dict:
    spec = CHECKS[check]
    return spec.params(kwargs=spec.fresh(np.random.default_rng([key, i])))


def solution_answer() -> str:
    return sim.solution_answers(AID)["split_by_lesion"]


# ---------------------------------------------------------------------------- answers

# Pandas groupby + numpy: per class, shuffle the lesions and cut the running image count where
# it comes closest to each target.
GROUPBY_NUMPY = sim.with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    rng = np.random.default_rng(seed)
    per_lesion = metadata.groupby("lesion_id").agg(dx=("dx", "first"), n=("dx", "size"))
    split_of = {}
    for _, group in per_lesion.groupby("dx", sort=True):
        group = group.iloc[rng.permutation(len(group))]
        ends = group["n"].cumsum().to_numpy()
        cuts = [int(np.abs(ends - f * ends[-1]).argmin()) + 1 for f in np.cumsum(fractions)[:2]]
        labels = np.repeat(["train", "val", "test"], np.diff([0, *cuts, len(group)]))
        split_of.update(zip(group.index, labels))
    return metadata["lesion_id"].map(split_of).rename("split")
''')

# Like sklearn's GroupShuffleSplit (the groups are lesions), sized in images, once per class.
SHUFFLE_SPLIT = sim.with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    rng = np.random.default_rng(seed)
    out = pd.Series("train", index=metadata.index, name="split", dtype=object)
    lesion = metadata["lesion_id"].to_numpy()
    dx = metadata["dx"].to_numpy()
    for label in np.unique(dx):
        rows = np.flatnonzero(dx == label)
        groups, sizes = np.unique(lesion[rows], return_counts=True)
        perm = rng.permutation(len(groups))
        groups, sizes = groups[perm], sizes[perm]
        want_test, want_val = fractions[2] * sizes.sum(), fractions[1] * sizes.sum()
        test, val, n_test, n_val = [], [], 0, 0
        for g, n in zip(groups, sizes):
            if n_test + n / 2 <= want_test:
                test.append(g)
                n_test += n
            elif n_val + n / 2 <= want_val:
                val.append(g)
                n_val += n
        out.iloc[rows[np.isin(lesion[rows], test)]] = "test"
        out.iloc[rows[np.isin(lesion[rows], val)]] = "val"
    return out
''')

# sklearn's train_test_split on lesions, stratified by dx: stratifies lesion counts, not image
# counts, so it may legitimately miss a class's image shares (nothing here forces that verdict).
SKLEARN_LESIONS = sim.with_default_fractions('''
import pandas as pd
from sklearn.model_selection import train_test_split


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    lesions = metadata.groupby("lesion_id")["dx"].first()
    train, rest = train_test_split(lesions.index, train_size=fractions[0], stratify=lesions, random_state=seed)
    val, test = train_test_split(rest, test_size=fractions[2] / (fractions[1] + fractions[2]),
                                 stratify=lesions[rest], random_state=seed)
    split_of = {**dict.fromkeys(train, "train"), **dict.fromkeys(val, "val"), **dict.fromkeys(test, "test")}
    return pd.Series(metadata["lesion_id"].map(split_of).to_numpy(), index=metadata.index, name="split")
''')

CORRECT = {"groupby_numpy": GROUPBY_NUMPY, "shuffle_split": SHUFFLE_SPLIT}


def hard_coded_answer() -> str:
    """The reference's splits of the visible tests' metadata, looked up by image; all "train"
    for anything else."""
    from skinlab.split import split_by_lesion

    table = {}
    # the visible tests: seed 0 at scale 1 (three checks), seeds 0 and 1 at scale 3 (stratification)
    # and seed 0 at scale 0.5 (determinism)
    for seed, scale in ((0, 1.0), (0, 3.0), (1, 3.0), (0, 0.5)):
        meta = probes.make_lesion_metadata(seed, scale)
        split = split_by_lesion(meta, seed=seed)
        table.update({f"{seed}:{len(meta)}:{image}": s for image, s in zip(meta["image_id"], split)})
    return sim.with_default_fractions(f'''
import pandas as pd

TABLE = {table!r}


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    keys = [f"{{seed}}:{{len(metadata)}}:{{image}}" for image in metadata["image_id"]]
    if all(k in TABLE for k in keys):
        return pd.Series([TABLE[k] for k in keys], index=metadata.index, name="split")
    return pd.Series("train", index=metadata.index, name="split")
''')


# ---------------------------------------------------------------------------- (a) correct answers


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_answers_unlike_the_reference_keep_full_marks(name):
    for seed in (0, 12345):
        got, messages = verify(CORRECT[name], seed=seed)
        assert got == FULL, messages


@pytest.mark.slow  # many fresh draws per answer (~40 s in all)
@pytest.mark.parametrize("name", ["solution", *sorted(CORRECT)])
def test_correct_answers_pass_the_tolerance_checks_at_many_fresh_draws(name):
    fn = define(solution_answer() if name == "solution" else CORRECT[name])["split_by_lesion"]
    for check in ("check_split_fractions", "check_split_stratified"):
        for i in range(40):
            CHECKS[check].judge(judged(fn), **fresh_params(check, i, key=3))


def test_a_lesion_level_sklearn_split_keeps_the_points_that_do_not_measure_image_shares():
    got, messages = verify(SKLEARN_LESIONS, seed=0)
    for gid in ("test_split_output", "test_split_no_leak", "test_split_deterministic"):
        assert got[gid] == FULL[gid], messages


# Test first, then validation from the rest, with the lesion table from drop_duplicates.
SKLEARN_TEST_FIRST = sim.with_default_fractions('''
from sklearn.model_selection import train_test_split


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    lesions = metadata.drop_duplicates("lesion_id")[["lesion_id", "dx"]]
    train_val, test = train_test_split(lesions, test_size=fractions[2], stratify=lesions["dx"], random_state=seed)
    train, val = train_test_split(train_val, test_size=fractions[1] / (fractions[0] + fractions[1]),
                                  stratify=train_val["dx"], random_state=seed)
    where = {**dict.fromkeys(train.lesion_id, "train"), **dict.fromkeys(val.lesion_id, "val"),
             **dict.fromkeys(test.lesion_id, "test")}
    return metadata["lesion_id"].map(where).rename("split")
''')


@pytest.mark.parametrize("answer", [SKLEARN_LESIONS, SKLEARN_TEST_FIRST], ids=["train_first", "test_first"])
def test_a_split_stratified_by_lesion_counts_keeps_the_stratified_points(answer):
    """``train_test_split(lesions, stratify=dx)`` is a lesion-level stratified split (issue #21:
    exercise 1 accepts any): its lesions sit in the fractions, its images wander with lesion
    sizes. The check accepts either kind of stratification, visibly and at fresh draws."""
    assert in_kernel(answer)["test_split_stratified"] is None
    observe = judged(define(answer)["split_by_lesion"])
    for i in range(15):
        CHECKS["check_split_stratified"].judge(observe, **fresh_params("check_split_stratified", i, key=4))


@pytest.mark.slow  # 30 draws at the largest metadata (~1 min)
def test_a_split_that_ignores_dx_loses_the_stratified_points_at_almost_every_draw():
    """The attack the stratified check stops: lesions in random order cut at the fractions (no
    leak, right overall shares). Measured: 38 of 40 fresh draws fail, and every visible call."""
    fn = define(sim.with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.array(metadata["lesion_id"].unique(), dtype=object)
    rng.shuffle(ids)
    filled = metadata.groupby("lesion_id").size().loc[ids].cumsum() / len(metadata)
    cuts = np.cumsum(fractions)
    part = np.where(filled <= cuts[0], "train", np.where(filled <= cuts[1], "val", "test"))
    return pd.Series(metadata["lesion_id"].map(dict(zip(ids, part))).to_numpy(), index=metadata.index)
'''))["split_by_lesion"]
    observe = judged(fn)
    failed = 0
    for i in range(30):
        try:
            CHECKS["check_split_stratified"].judge(observe, **fresh_params("check_split_stratified", i, key=3))
        except AssertionError as exc:
            assert "Stratify by dx" in str(exc)
            failed += 1
    assert failed >= 25, failed
    for seed in (0, 1, 31, 32):
        with pytest.raises(AssertionError, match="Stratify by dx"):
            CHECKS["check_split_stratified"].judge(observe, seed=seed)


def test_a_split_wrong_in_lesions_too_gets_the_plain_stratify_advice():
    unstratified = sim.with_default_fractions('''
import numpy as np
import pandas as pd


def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    lesions = metadata["lesion_id"].unique()
    rng = np.random.default_rng(seed)
    order = lesions[rng.permutation(len(lesions))]
    where = dict(zip(order, np.where(np.arange(len(order)) < fractions[0] * len(order), "train",
                 np.where(np.arange(len(order)) < (fractions[0] + fractions[1]) * len(order), "val", "test"))))
    # every dx=="df" lesion to train: a class missing from val and test
    where.update(dict.fromkeys(metadata.loc[metadata["dx"] == "df", "lesion_id"], "train"))
    return pd.Series(metadata["lesion_id"].map(where).to_numpy(), index=metadata.index, name="split")
''')
    exc = in_kernel(unstratified)["test_split_stratified"]
    assert isinstance(exc, AssertionError) and "Stratify by dx" in str(exc), exc
    assert "count images, not lesions" not in str(exc)


# ---------------------------------------------------------------------------- (b) hard-coded to the visible tests


def test_an_answer_hard_coded_to_the_visible_inputs_loses_the_hidden_points():
    answer = hard_coded_answer()
    assert all(exc is None for exc in in_kernel(answer).values()), in_kernel(answer)
    got, messages = verify(answer, seed=0)
    # all "train" away from the visible inputs: it leaks nothing, but a split that uses one
    # split only earns no points for that (red-team finding: 3 free points)
    assert got == dict.fromkeys(CELLS, 0), messages
    assert all(m.startswith("(hidden test)") for m in messages.values())
    assert "no image was assigned to ['val', 'test']" in messages["test_split_output"]
    assert "gave the same split" in messages["test_split_deterministic"]


# ---------------------------------------------------------------------------- (c) this exercise


def test_fresh_draws_are_valid_inputs_and_vary():
    seen = {check: set() for check in SPLIT_CHECKS}
    for check in SPLIT_CHECKS:
        spec = CHECKS[check]
        assert spec.fresh is not None
        for i in range(300):
            params = fresh_params(check, i)
            assert json.loads(json.dumps(params)) == params  # JSON-able as they are
            high = 5.0 if check == "check_split_stratified" else 1.5  # rare classes large enough for folds
            assert 0 <= params["seed"] < 2**31 - 1 and 0.3 <= params["scale"] <= high
            assert 2 <= params["max_images"] <= 12
            if "fractions" in params:
                f = params["fractions"]
                assert len(f) == 3 and min(f) >= 0.1 and abs(sum(f) - 1) < 1e-9, f
                assert 0.5 <= f[0] <= 0.8
            seen[check].add(json.dumps(params, sort_keys=True))
        assert len(seen[check]) == 300  # seeds from a wide range: no two draws alike


@pytest.mark.slow
def test_the_reference_passes_every_check_at_fresh_draws():
    from skinlab.split import split_by_lesion

    observe = judged(split_by_lesion)
    # 200 draws where a tolerance decides (60 for stratification, whose metadata are the largest);
    # fewer for the checks without one (about 3 min in all)
    for check, draws in (("check_split_stratified", 60), ("check_split_fractions", 200),
                         ("check_split_output", 50), ("check_split_no_leak", 50), ("check_split_deterministic", 50)):
        for i in range(draws):
            params = fresh_params(check, i, key=1)
            try:
                CHECKS[check].judge(observe, **params)
            except AssertionError as exc:
                raise AssertionError(f"{check}({params}): {exc}") from None


def test_make_lesion_metadata_is_the_probes_and_stays_public():
    assert grading.make_lesion_metadata is probes.make_lesion_metadata
    a, b = grading.make_lesion_metadata(3, 0.4, 9), probes.make_lesion_metadata(3, 0.4, 9)
    assert a.equals(b) and list(a.columns) == ["lesion_id", "image_id", "dx", "age", "sex"]
    assert (a.groupby("lesion_id")["dx"].nunique() == 1).all()
    assert a.groupby("lesion_id").size().max() <= 9


def test_the_probe_returns_the_split_as_plain_data():
    ns = define(solution_answer())
    seen = roundtrip(probes.split_once(_plain_call, ns, seed=4, scale=0.3, max_images=6, fractions=[0.7, 0.1, 0.2]))
    meta = probes.make_lesion_metadata(4, 0.3, 6)
    split = seen["split"]
    assert split["type"] == "Series" and split["series"] is True and split["length"] == len(meta)
    assert split["index"] == meta.index.tolist()
    assert set(split["values"]) == {"train", "val", "test"}
    assert seen["input"] == {"columns": list(meta.columns), "unchanged": True}
    # what cannot be plain (None, NaN, numbers as labels, objects) is described, never sent
    weird = probes.describe(__import__("pandas").Series([None, float("nan"), 1.5, True, object()], index=[0, 1, 2, 3, "x"]))
    weird = roundtrip(weird)
    assert weird["values"][:4] == [{"repr": "None"}, {"repr": "nan"}, 1.5, {"repr": "True"}]
    assert weird["values"][4]["repr"].startswith("<object object")
    assert weird["index"] == [0, 1, 2, 3, "x"]
    assert roundtrip(probes.describe([1, 2])) == {"type": "list", "series": False, "length": 2}


def test_the_determinism_probe_reports_three_calls_and_the_input_after_the_first():
    calls = []

    def fn(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
        import pandas as pd

        calls.append(seed)
        metadata["seen"] = 1  # modifies the caller's DataFrame
        return pd.Series(np.where(np.arange(len(metadata)) % 2, "train", "test"), index=metadata.index)

    seen = roundtrip(probes.split_deterministic(_plain_call, {"split_by_lesion": fn}, seed=41, scale=0.3, max_images=4))
    assert calls == [41, 41, 42]
    assert set(seen) == {"first", "input", "again", "other"}
    assert seen["input"]["columns"][-1] == "seen" and seen["input"]["unchanged"] is False
    with pytest.raises(AssertionError, match="modified its input: metadata now has columns"):
        CHECKS["check_split_deterministic"].judge(judged(fn), seed=41, scale=0.3, max_images=4)


MODIFIES_INPUT = {  # answers that split right but change the caller's DataFrame afterwards
    "adds a column": ('metadata["split"] = out', "modified its input: metadata now has columns ['split']"),
    "drops a column": ('del metadata["age"]', "modified its input: metadata now has columns"),
    "changes values": ('metadata["dx"] = metadata["dx"].str.upper()', "values, order or index changed"),
    "reorders the rows": ("metadata.iloc[:] = metadata.iloc[::-1].to_numpy()", "values, order or index changed"),
    "renumbers the index": ("metadata.index = range(len(metadata))", "values, order or index changed"),
}


def _modifying(statement: str) -> str:
    body = solution_answer().replace(
        '    return pd.Series(metadata["lesion_id"].map(assignment).to_numpy(), index=metadata.index, name="split")',
        '    out = pd.Series(metadata["lesion_id"].map(assignment).to_numpy(), index=metadata.index, name="split")\n'
        f"    {statement}\n    return out")
    assert statement in body
    return body


@pytest.mark.parametrize("how", sorted(MODIFIES_INPUT))
def test_the_probe_sees_the_input_modified(how):
    statement, phrase = MODIFIES_INPUT[how]
    fn = define(_modifying(statement))["split_by_lesion"]
    with pytest.raises(AssertionError) as info:
        grading.check_split_output(fn)
    assert phrase in str(info.value)
    with pytest.raises(AssertionError, match=re.escape(phrase)):
        CHECKS["check_split_output"].judge(judged(fn), **fresh_params("check_split_output", 0))


def test_a_modified_input_costs_the_points_of_the_cells_that_check_it_through_the_verifier():
    got, messages = verify(_modifying('metadata["split"] = out'), seed=0)
    expected = {**FULL, "test_split_output": 0, "test_split_deterministic": 0}
    assert got == expected, messages
    assert "modified its input" in messages["test_split_output"]
    assert "modified its input" in messages["test_split_deterministic"]


def test_an_answer_cell_that_fails_is_named_not_the_demo_figure():
    # The demo figure imports skinlab.grading; it is skipped while grading, so the message
    # names the student's own error, not "uses the reference".
    got, messages = verify("import numpy as np\n\ndef split_by_lesion(metadata, fractions, seed=0)\n    pass\n")
    assert got == dict.fromkeys(CELLS, 0)
    assert all("SyntaxError" in m and "reference" not in m for m in messages.values()), messages


# ---------------------------------------------------------------------------- (c2) no points without a lesion-level split

# Attack: an image-level split, stratified by dx and seeded, that ignores lesion_id (the mistake
# the chapter is about). It hits the image shares per class and is deterministic, so it earned 7
# of 10 points: fractions, stratification and determinism. Defence: those judges first check, on
# the split they judge, that no lesion has images in two parts (find_lesion_leaks).


def _image_level_split(meta, fractions=DEFAULT_FRACTIONS, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    out = pd.Series("train", index=meta.index, name="split", dtype=object)
    for _, rows in meta.groupby("dx").groups.items():
        rows = np.asarray(rows)[rng.permutation(len(rows))]
        n_train, n_val = int(round(fractions[0] * len(rows))), int(round(fractions[1] * len(rows)))
        out.loc[rows[n_train:n_train + n_val]] = "val"
        out.loc[rows[n_train + n_val:]] = "test"
    return out


def _lesion_level_split(meta, fractions=DEFAULT_FRACTIONS, seed=0):
    from skinlab.split import split_by_lesion

    return split_by_lesion(meta, fractions, seed)


def forged_observe(split):
    """``observe`` as a worker would answer it, with no student function at all: the plain data of
    ``split(metadata, fractions, seed)`` on the metadata the judge names (input reported unchanged)."""

    def observe(probe, seed, scale, max_images, fractions=None, on=None):
        meta = probes.make_lesion_metadata(seed, scale, max_images)
        untouched = {"columns": [str(c) for c in meta.columns], "unchanged": True}
        f = DEFAULT_FRACTIONS if fractions is None else tuple(fractions)
        if probe == "ex1_split.split_once":
            return roundtrip({"split": probes.describe(split(meta, f, seed)), "input": untouched})
        assert probe == "ex1_split.split_deterministic", probe
        return roundtrip({"first": probes.describe(split(meta, f, seed)), "input": untouched,
                          "again": probes.describe(split(meta, f, seed)),
                          "other": probes.describe(split(meta, f, seed + 1))})

    return observe


NEED_A_LESION_LEVEL_SPLIT = {"check_split_fractions": "the fractions", "check_split_stratified": "stratification",
                             "check_split_deterministic": "determinism"}


@pytest.mark.parametrize("check", sorted(NEED_A_LESION_LEVEL_SPLIT))
def test_an_image_level_split_earns_no_fractions_stratification_or_determinism_points(check):
    observe = forged_observe(_image_level_split)
    for params in ({}, fresh_params(check, 0, key=7), fresh_params(check, 1, key=7)):
        with pytest.raises(AssertionError) as info:
            CHECKS[check].judge(observe, **params)
        message = str(info.value)
        assert re.match(r"\d+ lesions have images in two (or three )?parts( \(seed=\d+\))?: HAM_\d{7} \(", message), message
        assert f"The points for {NEED_A_LESION_LEVEL_SPLIT[check]} need a lesion-level split first" in message
        assert "group by lesion_id" in message


@pytest.mark.parametrize("check", sorted(NEED_A_LESION_LEVEL_SPLIT))
def test_a_lesion_level_split_still_passes_the_checks_that_need_one(check):
    observe = forged_observe(_lesion_level_split)
    for params in ({}, fresh_params(check, 0, key=7), fresh_params(check, 1, key=7)):
        CHECKS[check].judge(observe, **params)


def test_the_image_level_split_keeps_only_the_output_points():
    """Without the defence the forged image-level split passed fractions, stratification and
    determinism (7 of 10): now it keeps the output's 2 points, as the simulated mistake does."""
    observe = forged_observe(_image_level_split)
    passed = set()
    for gid, check in zip(CELLS, SPLIT_CHECKS):
        try:
            CHECKS[check].judge(observe)
            passed.add(gid)
        except AssertionError:
            pass
    assert passed == {"test_split_output"}
    assert sim.expected_points(AID, "mistake") == {gid: FULL[gid] if gid in passed else 0 for gid in CELLS}


def test_a_leak_only_at_the_other_seed_costs_the_determinism_point():
    def leaks_at_odd_seeds(meta, fractions=DEFAULT_FRACTIONS, seed=0):
        return (_image_level_split if seed % 2 else _lesion_level_split)(meta, fractions, seed)

    with pytest.raises(AssertionError, match=r"images in two (or three )?parts \(seed=1\)"):
        CHECKS["check_split_deterministic"].judge(forged_observe(leaks_at_odd_seeds), seed=0)


def test_the_input_report_only_takes_points_away():
    """``input`` is the worker's word: "unchanged" grants nothing (a split that fails stays
    failed), "changed" costs the points of the output and determinism cells."""
    def changed(observe):
        def forged(probe, **params):
            seen = observe(probe, **params)
            seen["input"] = {**seen["input"], "unchanged": False}
            return seen
        return forged

    for check in ("check_split_output", "check_split_deterministic"):
        with pytest.raises(AssertionError, match="modified its input"):
            CHECKS[check].judge(changed(forged_observe(_lesion_level_split)))
    with pytest.raises(AssertionError, match="lesion-level split first"):  # reported unchanged: still fails
        CHECKS["check_split_deterministic"].judge(forged_observe(_image_level_split))


# ---------------------------------------------------------------------------- (d) kernel and verifier agree

MISTAKES = {
    "image level (simulated)": sim.MISTAKES[AID]["split_by_lesion"],
    "raises (simulated)": sim.RAISES[AID]["split_by_lesion"],
    "default index": sim.with_default_fractions('''
import pandas as pd
def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    return pd.Series(["train", "val", "test"] * (len(metadata) // 3) + ["train"] * (len(metadata) % 3))
'''),
    "returns a list": sim.with_default_fractions('''
def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    return ["train"] * len(metadata)
'''),
    "values not split names": sim.with_default_fractions('''
import numpy as np, pandas as pd
def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    r, c = np.random.default_rng(seed).random(len(metadata)), np.cumsum(fractions)
    return pd.Series(np.where(r < c[0], 0, np.where(r < c[1], 1, 2)), index=metadata.index)
'''),
    "ignores fractions and seed": sim.with_default_fractions('''
import numpy as np, pandas as pd
def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    r = np.random.default_rng(0).random(metadata["lesion_id"].nunique())
    u = dict(zip(metadata["lesion_id"].unique(), np.where(r < .5, "train", np.where(r < .8, "val", "test"))))
    return metadata["lesion_id"].map(u)
'''),
    "unstratified, another split each call": sim.with_default_fractions('''
import numpy as np, pandas as pd
calls = []
def split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):
    calls.append(seed)
    r = np.random.default_rng(seed + len(calls)).random(metadata["lesion_id"].nunique())
    c = np.cumsum(fractions)
    u = dict(zip(metadata["lesion_id"].unique(), np.where(r < c[0], "train", np.where(r < c[1], "val", "test"))))
    return metadata["lesion_id"].map(u)
'''),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_the_same_judge_gives_the_same_verdict_in_the_kernel_and_through_the_verifier(name):
    answer = MISTAKES[name].strip("\n")
    kernel = in_kernel(answer)
    got, messages = verify(answer, seed=0, source=visible_only(source_nb()))
    assert any(kernel.values()), "a mistake fails some visible test"
    for gid in CELLS:
        exc = kernel[gid]
        if exc is None:
            assert got[gid] == FULL[gid] and messages[gid] == "", (gid, messages[gid])
            continue
        assert got[gid] == 0, gid
        if type(exc) is AssertionError:
            assert messages[gid] == str(exc), gid
        else:  # the student's own exception: the verifier names it and the input it ran on
            assert messages[gid].startswith(f"your split_by_lesion raised {type(exc).__name__} on "), messages[gid]
            assert str(exc) in messages[gid]
