"""The similarity report (skinlab.grading.similarity): copies are listed, independent work is not.

The fixtures are the measurements behind DEFAULT_THRESHOLD: per exercise, copies of the
references (renamed, reformatted, reordered, trimmed copies of the package code the book prints)
and correct answers written unlike them. Every fixture passes the exercise's checks
(test_fixtures_are_correct_answers), so "independent" means a real alternative answer.
Run ``python tests/test_grading_similarity.py`` to print the score table.
"""

from __future__ import annotations

import csv
import functools
import json
import linecache
import sys
import time
from pathlib import Path

import pytest

from skinlab.course.exercises import exercise_ids
from skinlab.grading import similarity as sim
from skinlab.grading.exercise import exercises

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import bank  # noqa: E402
EXERCISES = exercise_ids(ROOT)
REFERENCES = {e: sim.reference_sources(e, ROOT) for e in EXERCISES}
TEMPLATES = {e: sim.answer_source(ROOT / "exercises" / e / f"{e}.ipynb") for e in EXERCISES}

# ---------------------------------------------------------------------------- the fixtures
# Each exercise's bank (solutions/<id>/answers.py) holds its copies ({name: (the reference it
# copies, the copy)}), its independent correct answers and one answer passed on between two
# students.

COPIES = {e: bank.answers(e).COPIES for e in EXERCISES}
INDEPENDENT = {e: bank.answers(e).INDEPENDENT for e in EXERCISES}
PASSED_ON = {e: bank.answers(e).PASSED_ON for e in EXERCISES}


def score(exercise: str, a: str, b: str) -> float:
    return sim.similarity(sim.normalise(a), sim.normalise(b), sim.baseline(exercise, TEMPLATES[exercise]))


@functools.lru_cache(maxsize=None)
def score_table() -> list[tuple[str, str, str, float]]:
    """(exercise, kind, pair, score) for every measured pair."""
    rows = []
    for e in EXERCISES:
        for name, (label, src) in COPIES[e].items():
            rows.append((e, "copy", f"{name} ~ {label}", score(e, src, REFERENCES[e][label])))
        first = next(iter(INDEPENDENT[e]))
        rows.append((e, "copy", f"passed on ~ {first}", score(e, PASSED_ON[e], INDEPENDENT[e][first])))
        for name, src in INDEPENDENT[e].items():
            for label, ref in REFERENCES[e].items():
                rows.append((e, "independent", f"{name} ~ {label}", score(e, src, ref)))
        names = list(INDEPENDENT[e])
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                rows.append((e, "independent", f"{a} ~ {b}", score(e, INDEPENDENT[e][a], INDEPENDENT[e][b])))
            if a != names[0]:
                rows.append((e, "independent", f"{a} ~ passed on", score(e, INDEPENDENT[e][a], PASSED_ON[e])))
    return rows


# ---------------------------------------------------------------------------- the threshold


def test_references_found():
    for e in EXERCISES:
        assert set(REFERENCES[e]) == {"solution", exercises()[e].prints[0]}
        assert all(len(src) > 200 for src in REFERENCES[e].values())
        assert "NotImplementedError" in TEMPLATES[e]


@pytest.mark.parametrize("exercise", EXERCISES)
def test_copies_score_at_least_the_threshold(exercise):
    for e, kind, pair, s in score_table():
        if e == exercise and kind == "copy":
            assert s >= sim.DEFAULT_THRESHOLD, (pair, s)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_independent_answers_stay_below_the_threshold(exercise):
    for e, kind, pair, s in score_table():
        if e == exercise and kind == "independent":
            assert s < sim.DEFAULT_THRESHOLD, (pair, s)


def test_the_threshold_has_a_margin_on_both_sides():
    rows = score_table()
    lowest_copy = min(s for _, kind, _, s in rows if kind == "copy")
    highest_independent = max(s for _, kind, _, s in rows if kind == "independent")
    assert lowest_copy - sim.DEFAULT_THRESHOLD >= 0.04
    assert sim.DEFAULT_THRESHOLD - highest_independent >= 0.04


def run_answer(source: str) -> dict:
    """exec an answer as a notebook cell runs (its source in linecache, as IPython does)."""
    filename = f"<similarity fixture {abs(hash(source))}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


CHECKS = {
    "ex1_split": [("split_by_lesion", "check_split_no_leak"), ("split_by_lesion", "check_split_fractions"),
                  ("split_by_lesion", "check_split_stratified"), ("split_by_lesion", "check_split_deterministic"),
                  ("split_by_lesion", "check_split_output")],
    "ex2_class_weights": [("median_frequency_weights", "check_weights_output"),
                          ("median_frequency_weights", "check_weights_missing_class")],
    "ex3_lenet": [("LeNet", "check_lenet_layers"), ("LeNet", "check_lenet_equivalent"), ("LeNet", "check_lenet_logits")],
    # check_train_matches passes too, but takes ~2 s an answer on 2 cores.
    "ex4_training": [("train_one_epoch", "check_train_returns"), ("train_one_epoch", "check_train_mode"),
                     ("evaluate", "check_evaluate_matches"), ("evaluate", "check_evaluate_mode"),
                     ("evaluate", "check_evaluate_changes_nothing")],
    "ex5_gradcam": [("grad_cam", "check_cam_matches"), ("grad_cam", "check_cam_argmax"),
                    ("grad_cam", "check_cam_hooks_removed")],
}


@pytest.mark.parametrize("exercise", EXERCISES)
def test_fixtures_are_correct_answers(exercise):
    from skinlab import grading

    sources = [src for _, src in COPIES[exercise].values()] + list(INDEPENDENT[exercise].values()) + [PASSED_ON[exercise]]
    for source in sources:
        grading.reset()
        ns = run_answer(source)
        for name, check in CHECKS[exercise]:
            getattr(grading, check)(ns[name])
        if exercise == "ex2_class_weights":
            grading.check_weights_values(ns[name], [0, 0, 0, 1, 2, 2], 3)
            grading.check_weights_values(ns[name], [0, 1, 1, 2, 2, 2, 3, 3, 3, 3], 4)
    grading.reset()


if __name__ == "__main__":  # the score table behind DEFAULT_THRESHOLD
    for e, kind, pair, s in sorted(score_table(), key=lambda r: (r[0], r[1], -r[3])):
        print(f"{e:18} {kind:12} {s:.3f}  {pair}")


# ---------------------------------------------------------------------------- normalising


def test_comments_docstrings_whitespace_and_own_names_do_not_count():
    a = '''
import numpy as np


def f(values, k=3):
    """Top k."""
    total = 0  # running sum
    for v in sorted(values)[:k]:
        total += np.abs(v)
    return total
'''
    b = """
import numpy as np
def f(xs,   n=3):
    '''Another docstring.'''


    acc = 0
    # loop
    for item in sorted(xs)[:n]:   acc += np.abs(item)
    return (acc)
"""
    assert sim.normalise(a) == sim.normalise(b)
    assert sim.similarity(sim.normalise(a), sim.normalise(b)) == 1.0
    tokens = sim.normalise(a)
    assert {"np", "abs", "sorted", "3"} <= set(tokens)  # library names and literals stay
    assert not {"values", "total", "f", "k"} & set(tokens)  # own names do not
    assert "Top" not in " ".join(tokens) and "running" not in " ".join(tokens)


def test_attributes_set_on_self_are_renamed_library_attributes_are_not():
    code = sim.canonical_code('''
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 5)

    def forward(self, x):
        return self.conv(x).relu().mean(dim=1)
''')
    assert "conv" not in code.replace("Conv2d", "") and "Net" not in code
    assert "nn.Conv2d(3, 6, 5)" in code and ".relu().mean(dim=1)" in code and "super().__init__()" in code


def test_reordering_independent_statements_keeps_most_of_the_score():
    a = """
def f(data, size):
    mean = np.mean(data, axis=0, keepdims=True)
    spread = np.std(data, axis=0, keepdims=True) + 1e-8
    order = np.argsort(data[:, 0], kind="stable")[:size]
    picked = (data[order] - mean) / spread
    return picked.clip(-3.0, 3.0).astype(np.float32)
"""
    b = """
def f(data, size):
    order = np.argsort(data[:, 0], kind="stable")[:size]
    spread = np.std(data, axis=0, keepdims=True) + 1e-8
    mean = np.mean(data, axis=0, keepdims=True)
    picked = (data[order] - mean) / spread
    return picked.clip(-3.0, 3.0).astype(np.float32)
"""
    assert sim.canonical_code(a) != sim.canonical_code(b)  # numbered by first appearance
    assert sim.similarity(sim.normalise(a), sim.normalise(b)) >= 0.7


def test_syntax_errors_fall_back_to_plain_tokens():
    broken = "def split_by_lesion(metadata:\n    return metadata  # unfinished\n"
    tokens = sim.normalise(broken)
    assert "metadata" in tokens and "unfinished" not in tokens
    assert sim.similarity(tokens, tokens) == 1.0
    assert sim.normalise("") == [] and sim.similarity([], []) == 0.0


def test_similarity_is_symmetric_and_bounded():
    for e in EXERCISES:
        prints = [sim.kgrams(sim.normalise(src)) for src in [*REFERENCES[e].values(), *INDEPENDENT[e].values()]]
        for a in prints:
            for b in prints:
                ab = sim.similarity(a, b)
                assert 0.0 <= ab <= 1.0 and ab == sim.similarity(b, a)


# ---------------------------------------------------------------------------- reading notebooks


def notebook_with(exercise: str, answer: str, path: Path) -> Path:
    """The release notebook of ``exercise`` with ``answer`` in its (first) answer cell."""
    nb = json.loads((ROOT / "exercises" / exercise / f"{exercise}.ipynb").read_text())
    cells = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    cells[0]["source"] = answer.splitlines(True)  # a list of lines, as Jupyter writes it
    for cell in cells[1:]:
        cell["source"] = ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def test_answer_source_reads_only_the_answer_cells(tmp_path):
    answer = COPIES["ex2_class_weights"]["solution renamed"][1]
    nb = notebook_with("ex2_class_weights", answer, tmp_path / "a.ipynb")
    assert sim.answer_source(nb).strip() == answer.strip()
    solution = sim.answer_source(ROOT / "solutions" / "ex4_training" / "ex4_training.ipynb")
    assert "def train_one_epoch" in solution and "def evaluate" in solution and "check_train" not in solution


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"cells": 5}', '{"cells": [{"source": 1}]}', ""])
def test_a_broken_notebook_is_unreadable_not_an_error(tmp_path, content):
    nb = tmp_path / "broken.ipynb"
    nb.write_text(content)
    assert sim.answer_source(nb) == ""
    assert sim.answer_source(nb, unreadable=None) in (None, "")
    assert sim.answer_source(tmp_path / "missing.ipynb", unreadable=None) is None
    assert sim.answer_source(tmp_path, unreadable=None) is None


def test_references_include_the_package_helpers_a_copy_would_inline():
    assert "def _run_eval" in REFERENCES["ex4_training"]["skinlab.engine"]
    assert "class ActivationsAndGradients" in REFERENCES["ex5_gradcam"]["skinlab.gradcam"]
    assert "def class_counts" in REFERENCES["ex2_class_weights"]["skinlab.balance"]
    assert "BEGIN SOLUTION" in REFERENCES["ex1_split"]["solution"]  # a comment: it does not count


# ---------------------------------------------------------------------------- the report


def class_answers(exercise: str) -> dict[str, str]:
    """A small class: a reference copy, two students sharing one answer, independent answers,
    the untouched release stub twice."""
    independent = list(INDEPENDENT[exercise].values())
    answers = {"copier": COPIES[exercise]["solution renamed"][1], "giver": independent[0],
               "taker": PASSED_ON[exercise], "stub1": TEMPLATES[exercise], "stub2": TEMPLATES[exercise]}
    answers.update({f"own{i}": src for i, src in enumerate(independent[1:])})
    return answers


def test_report_lists_copies_and_only_copies(tmp_path):
    answers = {e: class_answers(e) for e in EXERCISES}
    result = sim.report(answers, REFERENCES, tmp_path, templates=TEMPLATES)
    with open(result["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["exercise", "first", "second", "score", "kind"]
    listed = {(r["exercise"], r["first"], r["second"], r["kind"]) for r in rows}
    for e in EXERCISES:
        assert (e, "copier", "reference:solution", "reference") in listed
        assert (e, "giver", "taker", "students") in listed
    listed_students = {s for _, a, b, _ in listed for s in (a, b)}
    assert not listed_students & {"stub1", "stub2", "own0", "own1", "own2", "own3"}
    assert sorted((e, s) for e, s in result["not_compared"]) == sorted(
        (e, s) for e in EXERCISES for s in ("stub1", "stub2"))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and min(scores) >= sim.DEFAULT_THRESHOLD
    assert [dict(r, score=float(r["score"])) for r in rows] == result["rows"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["similarity.csv", "similarity.html"]  # no temp files


def test_html_shows_each_pair_and_keeps_hostile_code_inert(tmp_path):
    hostile = COPIES["ex2_class_weights"]["solution renamed"][1] + '''
# </pre><script>alert("comment")</script>
EVIL = "</pre><script>alert('string')</script>"
'''
    answers = {"ex2_class_weights": {"<img src=x onerror=alert(1)>": hostile, "b\ud800": hostile + "# \udcff",
                                     "stub": TEMPLATES["ex2_class_weights"], "</h2><script>x</script>": ""}}
    result = sim.report(answers, {}, tmp_path, templates=TEMPLATES)
    assert len(result["rows"]) == 1
    page = result["html"].read_text()
    assert "<script" not in page and "<img" not in page and "</pre><script>" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(" in page  # shown, escaped
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;/h2&gt;&lt;script&gt;x&lt;/script&gt;" in page
    assert page.count("<h2 ") == 1 and page.count("<pre>") == 4
    assert 'class="same"' in page  # matching lines are marked


def test_the_release_stub_is_never_paired_even_without_templates(tmp_path):
    for e in EXERCISES:
        answers = {e: {"a": TEMPLATES[e], "b": TEMPLATES[e], "c": "", "d": "   \n# nothing yet\n"}}
        result = sim.report(answers, REFERENCES, tmp_path)
        assert result["rows"] == [] and sorted(s for _, s in result["not_compared"]) == ["a", "b", "c", "d"]


def test_report_replaces_earlier_files(tmp_path):
    (tmp_path / "similarity.csv").write_text("old")
    sim.report({"ex1_split": {}}, {}, tmp_path)
    assert (tmp_path / "similarity.csv").read_text().strip() == "exercise,first,second,score,kind"
    assert "0 pair(s)" in (tmp_path / "similarity.html").read_text()


def test_report_for_course_reads_the_submitted_notebooks(tmp_path):
    notebooks = {}
    for e in ("ex3_lenet", "ex5_gradcam"):
        for student, answer in class_answers(e).items():
            notebooks[student, e] = notebook_with(e, answer, tmp_path / "submitted" / student / e / f"{e}.ipynb")
    broken = tmp_path / "submitted" / "broken" / "ex3_lenet" / "ex3_lenet.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [')
    notebooks["broken", "ex3_lenet"] = broken
    out = tmp_path / "grades"
    out.mkdir()
    (out / "grades.csv").write_text("student_id,score\ncopier,10\n")
    result = sim.report_for_course(ROOT, notebooks, out)
    assert result["unreadable"] == [("broken", "ex3_lenet")]
    assert ("ex3_lenet", "broken") in result["not_compared"]
    pairs = {(r["exercise"], r["first"], r["second"]) for r in result["rows"]}
    assert {("ex3_lenet", "copier", "reference:solution"), ("ex5_gradcam", "giver", "taker")} <= pairs
    assert (out / "grades.csv").read_text() == "student_id,score\ncopier,10\n"  # never changes a score


def test_thirty_students_five_exercises_in_under_five_seconds(tmp_path):
    # Every fixture answer, each handed in by several students (renamed): many listed pairs,
    # so the HTML page is at its largest.
    answers = {}
    for e in EXERCISES:
        pool = [src for _, src in COPIES[e].values()] + list(INDEPENDENT[e].values()) + [PASSED_ON[e]]
        answers[e] = {f"s{i:02d}": pool[i % len(pool)].replace("(", f"(  # student {i}\n", 1) for i in range(30)}
    start = time.perf_counter()
    result = sim.report(answers, REFERENCES, tmp_path, templates=TEMPLATES)
    elapsed = time.perf_counter() - start
    assert len(result["rows"]) > 200
    assert elapsed < 5.0, elapsed
