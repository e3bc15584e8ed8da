"""Issue #20's hardening, each defence tested with the attack it stops.

1. feedback pages safe to open (every output type sanitised; nothing active survives);
2. messages judged strictly (a message listing every class index earns nothing);
3. fair to honest students (float64 weights cost only the output cell);
4. student folders never touch each other (dot names, glob characters, Unicode normalisation);
5. history, not overwrites (every batch's grading record kept).

Fast: no nbgrader batch; the feedback is rendered with nbgrader's own feedback template.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import sys
import unicodedata
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output, new_raw_cell

from skinlab.grading import feedback

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))

# ---------------------------------------------------------------------------- 1. feedback pages

AID = "ex2_class_weights"


def _png() -> str:
    """A real 1x1 PNG, base64 (what matplotlib's inline backend puts in an output)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (255, 0, 0)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _render(nb, resources=None) -> str:
    """The feedback page as ``nbgrader generate_feedback`` writes it: our preprocessor, then
    nbgrader's feedback template (classic, MathJax) through nbconvert's HTMLExporter."""
    import nbgrader
    from nbconvert.exporters import HTMLExporter

    for cell in nb.cells:  # what GetGrades adds before our preprocessor
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") or meta.get("solution") or meta.get("task"):
            meta.setdefault("points", 0)
            meta["score"] = 0
    out, _ = feedback.HideHiddenTests().preprocess(copy.deepcopy(nb), dict(resources or {}))
    here = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    exporter = HTMLExporter(template_name="feedback", extra_template_basedirs=[str(here / "templates")],
                            extra_template_paths=[str(here / "static" / "node_modules" / "bootstrap" / "dist" / "css")])
    info = {"notebook": AID, "score": 0, "max_score": 10, "late_penalty": 0}
    html, _ = exporter.from_notebook_node(out, resources={"nbgrader": {**info, **(resources or {}).get("nbgrader", {})}})
    return html


def _active(html: str, marker: str, inert_attributes: bool = False) -> list[str]:
    """Every place where ``marker`` (inside an attack) could run or load: a script or style, an
    attribute (event handler, href, src), an iframe/svg/object/embed/form element. With
    ``inert_attributes``, the marker may remain inside a harmless attribute value (an anchor)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    found = []
    for tag in soup.find_all(True):
        if tag.name in ("iframe", "svg", "object", "embed", "form", "frame", "base", "meta", "link"):
            if marker in str(tag) or tag.name in ("iframe", "svg", "object", "embed", "form"):
                found.append(f"<{tag.name}>")
        if tag.name in ("script", "style") and marker in (tag.string or ""):
            found.append(f"<{tag.name}>{marker}")
        for attr, value in tag.attrs.items():
            value = " ".join(value) if isinstance(value, list) else str(value)
            script_url = value.strip().lower().startswith("javascript:")
            if attr.lower().startswith("on") or (marker in value and not inert_attributes) or script_url:
                found.append(f"<{tag.name} {attr}={value[:60]!r}>")
    return found


def _student_cell(outputs, execution_count=3):
    cell = new_code_cell("student code", execution_count=execution_count)
    cell.outputs = outputs
    return cell


def _release():
    return nbformat.read(str(ROOT / "exercises" / AID / f"{AID}.ipynb"), as_version=4)


ATTACKS = {
    "markdown event handler": {"text/markdown": "ok <img src=x onerror=\"alert('PWN')\">", "text/plain": "md"},
    "markdown html block": {"text/markdown": "<div onmouseover=\"alert('PWN')\">\n\n*x*\n\n</div>"},
    "markdown javascript link": {"text/markdown": "[click](javascript:alert('PWN'))"},
    "html script": {"text/html": "<script>alert('PWN')</script><b>x</b>"},
    "html svg onload": {"text/html": "<svg onload=alert('PWN')><circle r=5 /></svg>"},
    "html iframe": {"text/html": "<iframe src=\"javascript:alert('PWN')\"></iframe>"},
    "html srcdoc iframe": {"text/html": "<iframe srcdoc=\"<script>alert('PWN')</script>\"></iframe>"},
    "html javascript link": {"text/html": "<a href=\"javascript:alert('PWN')\">click</a>"},
    "html data link": {"text/html": "<a href=\"data:text/html,<script>alert('PWN')</script>\">x</a>"},
    "html style overlay": {"text/html": "<div style=\"position:fixed;top:0;background:url(http://PWN)\">10/10</div>"},
    "html remote image (tracking)": {"text/html": "<img src=\"http://evil.example/PWN.png\">"},
    "html form": {"text/html": "<form action=\"http://PWN\"><input name=p></form>"},
    "html meta refresh": {"text/html": "<meta http-equiv=refresh content=\"0;url=http://PWN\">"},
    # nbconvert shows SVG in an <img> (inert) unless HTMLExporter.skip_svg_encoding; dropped anyway
    "svg output": {"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' onload=\"alert('PWN')\"/>"},
    "javascript output": {"application/javascript": "alert('PWN')"},
    "widget output": {"application/vnd.jupyter.widget-view+json": {"model_id": "PWN"}},
    "isolated html": {"text/html": "<script>alert('PWN')</script>"},
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_no_active_output_survives_in_the_feedback_page(name):
    """Markdown outputs were rendered with raw HTML: an <img onerror> ran in whoever's browser
    opened the feedback. Every output type, rendered by nbgrader's real template."""
    nb = _release()
    metadata = {"text/html": {"isolated": True}} if name == "isolated html" else {}
    nb.cells.append(_student_cell([new_output("display_data", data=ATTACKS[name], metadata=metadata)]))
    html = _render(nb)
    assert _active(html, "PWN") == []
    assert "isolated-iframe" not in html  # the template's data:text/html iframe for "isolated" output


def test_an_active_output_in_an_unverified_test_cell_is_sanitised_too():
    nb = _release()
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    test.outputs = [new_output("display_data", data={"text/html": "<img src=x onerror=alert('PWN')>"})]
    assert _active(_render(nb), "PWN") == []


def test_a_students_markdown_and_raw_cells_cannot_run_code():
    """A markdown cell is the student's text, rendered with raw HTML by the template."""
    nb = _release()
    nb.cells.append(new_markdown_cell("My notes <img src=x onerror=\"alert('PWN')\"> [x](javascript:alert('PWN'))\n\n"
                                      "```\ncode\n\n<script>alert('PWN')</script>\n```\n\n*after*"))
    raw = new_raw_cell("<script>alert('PWN')</script><img src=x onerror=alert('PWN')>")
    raw.metadata["raw_mimetype"] = "text/html"
    nb.cells.append(raw)
    html = _render(nb)
    assert _active(html, "PWN") == []
    assert "My notes" in html and "<em>after</em>" in html  # still shown, as markdown


def test_the_course_markdown_is_left_as_written():
    """The release's own markdown (maths, links) is not the student's: it renders unchanged."""
    nb = _release()
    text = next(c.source for c in nb.cells if c.cell_type == "markdown" and "$$" in c.source)
    resources = {"nbgrader": {"db_url": f"sqlite:///{ROOT}/gradebook.db", "assignment": AID, "student": "nobody-x"}}
    out, _ = feedback.HideHiddenTests().preprocess(copy.deepcopy(nb), resources)
    assert text in [c.source for c in out.cells]
    out, _ = feedback.HideHiddenTests().preprocess(copy.deepcopy(nb), {})  # course unknown: sanitised
    assert text not in [c.source for c in out.cells]


def test_kernel_controlled_counts_and_grade_ids_are_made_inert():
    """The kernel is the student's: it reports the execution count (printed unescaped as In[..])
    and a student's cell can carry any grade_id (printed into href and name)."""
    nb = _release()
    cell = _student_cell([new_output("execute_result", data={"text/plain": "1"}, execution_count=4)],
                         execution_count=4)
    cell["execution_count"] = "<img src=x onerror=alert('PWN')>"
    cell.outputs[0]["execution_count"] = "<script>alert('PWN')</script>"
    cell.metadata["nbgrader"] = {"grade": True, "solution": True, "points": 0, "task": False,
                                 "grade_id": "\"><img src=x onerror=alert('PWN')>"}
    nb.cells.append(cell)
    html = _render(nb)
    assert _active(html, "PWN", inert_attributes=True) == []
    assert "<img src=x" not in html and "alert('PWN')" not in html
    assert 'href="#___img_src_x_onerror_alert__PWN___"' in html  # the grade_id, made an inert name


def test_harmless_formatted_outputs_still_show():
    """A bold word, a table (pandas' HTML, with its <style>), a PNG and plain text survive."""
    png = _png()
    nb = _release()
    table = ("<div><style scoped>.dataframe td {color: red}</style><table class=\"dataframe\"><thead><tr>"
             "<th>class</th><th>weight</th></tr></thead><tbody><tr><td>nv</td><td>0.21</td></tr></tbody></table></div>")
    nb.cells.append(_student_cell([
        new_output("display_data", data={"text/markdown": "a **bold** word", "text/plain": "md"}),
        new_output("execute_result", data={"text/html": table, "text/plain": "df"}, execution_count=3),
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"},
                   metadata={"image/png": {"width": 40, "height": "x onerror=alert(1)"}}),
        new_output("stream", name="stdout", text="weights: tensor([0.5, 2.0]) <b>as text</b>\n"),
    ]))
    html = _render(nb)
    assert "<strong>bold</strong>" in html
    assert "<td>nv</td>" in html and "<th>weight</th>" in html and "color: red" not in html
    assert f'src="data:image/png;base64,{png}"' in html and 'width="40"' in html and "onerror" not in html
    assert "weights: tensor([0.5, 2.0]) &lt;b&gt;as text&lt;/b&gt;" in html
    assert "In\xa0[3]:" in html and "Out[3]:" in html  # a real count still shows


def test_hidden_tests_shown_through_html_entities_are_removed():
    """`display(Markdown(...))` of IPython's `In`, with the hidden lines written as entities."""
    nb = nbformat.read(str(ROOT / "solutions" / AID / f"{AID}.ipynb"), as_version=4)
    hidden = next(line for c in nb.cells for line in c.source.split("\n")
                  if "check_" in line and "[2, 1, 1, 0, 0, 0, 0, 0]" in line)

    def encoded(text):
        return "".join(f"&#{ord(ch)};" if ch in "c[" else ch for ch in text)

    nb.cells.append(_student_cell([
        new_output("display_data", data={"text/markdown": f"<pre>{encoded(hidden)}</pre>"}),
        new_output("display_data", data={"text/html": f"<i>{encoded(hidden[:3])}</i>{encoded(hidden[3:])}"})]))
    out, _ = feedback.HideHiddenTests().preprocess(nb, {})
    text = json.dumps(out.cells[-1].outputs)
    assert "[2, 1, 1, 0" not in text and "&#91;2, 1, 1, 0" not in text
    assert text.count("it showed the hidden tests") == 2


def test_sanitize_html_keeps_web_links_and_inline_images_only():
    assert feedback.sanitize_html('<a href="https://example.org">x</a>').startswith('<a href="https://example.org"')
    assert "href" not in feedback.sanitize_html('<a href="javascript:alert(1)">x</a>')
    assert "src" not in feedback.sanitize_html('<img src="https://tracker.example/p.png">')
    assert 'src="data:image/png;base64,AAAA"' in feedback.sanitize_html('<img src="data:image/png;base64,AAAA">')
    assert "src" not in feedback.sanitize_html('<img src="data:image/svg+xml;base64,AAAA">')


# ---------------------------------------------------------------------------- 2./3. exercise 2's judges

import simulated_class as sim  # noqa: E402

from skinlab.grading.ex2_class_weights import judges as ex2  # noqa: E402
from skinlab.grading import verifier  # noqa: E402


def _ex2_points(answer: str) -> tuple[dict, dict]:
    """Verified points per test cell of an ex2 notebook whose answer cell is ``answer`` (the
    verifier, unsandboxed here: the sandbox has its own tests)."""
    nb = sim.submission(ROOT / "exercises" / AID / f"{AID}.ipynb", AID, "solution")
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    cell.source = answer
    source = json.loads((ROOT / "solutions" / AID / f"{AID}.ipynb").read_text())
    cells = verifier.verify(AID, source, json.loads(nbformat.writes(nb)), seed=7, sandboxed=False, time_limit=5.0)
    return {c.grade_id: c.points for c in cells}, {c.grade_id: c.message for c in cells}


_SOLUTION = sim.solution_answers(AID)["median_frequency_weights"]
_RAISE = 'raise ValueError(f"class {empty} has no samples: its weight would be infinite")'
assert _RAISE in _SOLUTION, "the solution's ValueError changed: update these tests"


def test_a_message_that_lists_every_class_earns_nothing():
    """`raise ValueError("class 0 1 2 3 4 5 6 7")` contained the empty class's index wherever it
    was, and earned the missing-class points without finding the class."""
    answer = _SOLUTION.replace(_RAISE, 'raise ValueError("class 0 1 2 3 4 5 6 7 has no samples")')
    got, messages = _ex2_points(answer)
    assert got == {**sim.expected_points(AID, "solution"), "test_weights_missing_class": 0}, messages
    assert "which have samples" in messages["test_weights_missing_class"]


@pytest.mark.parametrize("message", [
    "class {c} has no samples",
    "class [{c}] has no samples: its weight would be infinite",
    "no samples of class {c}",
    "class {c} has 0 samples",
    "Class {c} has count 0",
    "class{c} is empty (num_classes={n})",
    "class {c} is missing; counts: {counts}",
    "classes 0 to {last}: class {c} has no samples",
    "class {c} has frequency 0.0",
    "empty class index [np.int64({c})]",
])
@pytest.mark.parametrize("counts", [[2, 0, 2, 1], [0, 3, 1, 1, 2, 1, 1], [1, 1, 4, 1, 1, 0]])
def test_honest_messages_name_exactly_the_empty_class(message, counts):
    c, n = counts.index(0), len(counts)
    text = message.format(c=c, n=n, last=n - 1, counts=counts)
    assert ex2._message_problem(text, counts) is None, text


@pytest.mark.parametrize("message,problem", [
    ("class {all} has no samples", "which have samples"),      # every index: names nothing
    ("class {other} has no samples", "names no empty class"),  # the wrong class
    ("class {c} or {other}", "which has samples"),             # a hedge
    ("a class has no samples", "names no empty class"),
    ("class {c} is missing; counts: {fake}", "which have samples"),  # "counts" that are not the counts
    ("classes 0 to {last}", "names no empty class"),            # the range alone
])
@pytest.mark.parametrize("counts", [[2, 0, 2, 1], [1, 1, 4, 1, 1, 0, 2]])
def test_vague_or_wrong_messages_fail(message, problem, counts):
    c, n = counts.index(0), len(counts)
    other = (c + 1) % n
    text = message.format(c=c, other=other, last=n - 1, all=" ".join(map(str, range(n))),
                          fake=list(range(n)))
    found = ex2._message_problem(text, counts)
    assert found is not None and problem in found, (text, found)


def test_right_weights_as_float64_cost_only_the_output_cell():
    """Correct weights returned as float64 scored 2/10: the dtype check blocked all three value cells."""
    answer = _SOLUTION.replace("dtype=torch.float32", "dtype=torch.float64")
    assert answer != _SOLUTION
    got, messages = _ex2_points(answer)
    assert got == {**sim.expected_points(AID, "solution"), "test_weights_output": 0}, messages
    assert "float32" in messages["test_weights_output"]


@pytest.mark.parametrize("returned", ["np.median(freq) / freq", "(np.median(freq) / freq).tolist()"])
def test_right_weights_as_numpy_or_a_list_cost_only_the_output_cell(returned):
    answer = _SOLUTION.replace("torch.tensor(np.median(freq) / freq, dtype=torch.float32)", returned)
    assert answer != _SOLUTION
    got, messages = _ex2_points(answer)
    assert got == {**sim.expected_points(AID, "solution"), "test_weights_output": 0}, messages


def test_wrong_values_still_fail_after_the_cast():
    """The cast is no loophole: float64 weights that are 1/f (the usual mistake) still fail."""
    answer = _SOLUTION.replace("np.median(freq) / freq, dtype=torch.float32", "1 / freq, dtype=torch.float64")
    got, messages = _ex2_points(answer)
    assert got["test_weights_example"] == got["test_weights_more"] == 0, messages
    assert "1/f_c" in messages["test_weights_example"]


# ---------------------------------------------------------------------------- 4. student folders

import shutil  # noqa: E402

from skinlab.grading import collect  # noqa: E402


@pytest.fixture
def course(tmp_path):
    """A course folder with the release of ex2 (what collect reads), nothing else."""
    (tmp_path / "course" / "exercises").mkdir(parents=True)
    shutil.copytree(ROOT / "exercises" / AID, tmp_path / "course" / "exercises" / AID)
    return tmp_path / "course"


def _hand_in(submissions: Path, folder: str, student="solution") -> Path:
    path = submissions / folder / AID / f"{AID}.ipynb"
    path.parent.mkdir(parents=True)
    nb = sim.submission(ROOT / "exercises" / AID / f"{AID}.ipynb", AID, student)
    nb.metadata["who"] = folder  # to tell whose notebook was filed where
    nbformat.write(nb, str(path))
    return path


def _filed(course: Path) -> dict[str, str]:
    """{student id in submitted/: whose notebook it holds}."""
    return {p.name: nbformat.read(str(p / AID / f"{AID}.ipynb"), as_version=4).metadata["who"]
            for p in (course / "submitted").iterdir()}


def _listed_folders(submissions: Path) -> list[str]:
    """Every student folder in SUBMISSIONS (os.listdir keeps names byte for byte)."""
    return sorted(os.listdir(submissions))


def test_every_student_folder_is_graded_or_listed_with_its_reason(course, tmp_path):
    """A folder named ".alice" vanished (neither graded nor in skipped.csv); "bo[b]" made nbgrader
    grade bob's notebook as its own; "Jose\\u0301" and "Jos\\u00e9" were two identical-looking rows."""
    subs = tmp_path / "subs"
    nfc, nfd = "Jos\u00e9", "Jose\u0301"
    for folder in ("bob", "bo[b]", "st*r", "what?", ".alice", nfc, nfd, "Zo\u0308e"):
        _hand_in(subs, folder)
    _hand_in(subs, "carol/.ipynb_checkpoints", "mistake")  # Jupyter's copy: noise, not a submission
    batch = collect._collect(subs, course, [AID])
    graded = _filed(course)
    skipped = {r["student_id"]: r["reason"] for r in batch.skipped}
    # every folder is accounted for exactly once: graded (its own notebook) or listed with a reason
    for folder in set(_listed_folders(subs)) - {"carol"}:
        assert (folder in skipped) != (graded.get(unicodedata.normalize("NFC", folder)) == folder), folder
    assert graded == {"bob": "bob", nfc: nfc, "Z\u00f6e": "Zo\u0308e"}  # each its own notebook
    assert set(skipped) == {"bo[b]", "st*r", "what?", ".alice", nfd}
    assert "rename it without [ ]" in skipped["bo[b]"] and "rename it without *" in skipped["st*r"]
    assert "rename it without the dot" in skipped[".alice"]
    assert "another Unicode form" in skipped[nfd] and "'Jos\\xe9' is graded" in skipped[nfd]
    assert "carol" not in graded and "carol" not in skipped  # checkpoints stay silent


def test_two_non_nfc_forms_of_one_name_are_both_listed(course, tmp_path):
    """Neither is the NFC form: both would be filed as the same student, one replacing the other."""
    subs = tmp_path / "subs"
    a, b = "A\u0301\u0328", "A\u0328\u0301"  # the same letter, combining marks in two orders
    assert a != b and unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b)
    _hand_in(subs, a)
    _hand_in(subs, b)
    batch = collect._collect(subs, course, [AID])
    assert not (course / "submitted").exists() or not any((course / "submitted").iterdir())
    assert {r["student_id"] for r in batch.skipped} == {a, b}


def test_a_hidden_folder_inside_a_student_folder_is_listed(course, tmp_path):
    subs = tmp_path / "subs"
    path = _hand_in(subs, "dave")
    hidden = subs / "dave" / ".old" / f"{AID}.ipynb"
    hidden.parent.mkdir()
    shutil.copy(path, hidden)
    batch = collect._collect(subs, course, [AID])
    assert _filed(course) == {"dave": "dave"}
    assert [r["path"] for r in batch.skipped] == [f"dave/.old/{AID}.ipynb"]


# ---------------------------------------------------------------------------- 5. batch history

import csv  # noqa: E402

from skinlab.grading import report  # noqa: E402


def _records(students, points=10.0):
    return [{"student": s, "assignment": AID, "cells": [{"grade_id": "t", "points": points, "max_points": 10.0,
                                                         "message": ""}]} for s in students]


def _batch(course: Path, out: Path, seed: int, students, monkeypatch) -> dict:
    """The report step of a batch (the similarity report stubbed: it has its own tests)."""
    from skinlab.grading import similarity

    monkeypatch.setattr(similarity, "report_for_course",
                        lambda course, notebooks, out: {"rows": [], "csv": out / "similarity.csv",
                                                        "html": out / "similarity.html"})
    out.mkdir(parents=True, exist_ok=True)
    report._report_verification(course, out, _records(students), [], seed, True)
    return json.loads((out / "grading.json").read_text())


def test_a_late_batch_keeps_the_class_batch_record(tmp_path, monkeypatch):
    """A late student's batch overwrote grading.json: the seed that graded the class (needed to
    re-grade it identically) and its counts were lost."""
    course, out = tmp_path / "course", tmp_path / "course" / "grades"
    first = _batch(course, out, 1111, ["ann", "ben", "cy"], monkeypatch)
    late = _batch(course, out, 2222, ["dora"], monkeypatch)
    assert late["seed"] == 2222 and late["notebooks_verified"] == 1  # the latest summary, where it was
    folder = report.batches_dir(course)
    kept = {json.loads(p.read_text())["seed"]: json.loads(p.read_text()) for p in folder.glob("*.json")}
    assert set(kept) == {1111, 2222}
    assert kept[1111]["students"] == ["ann", "ben", "cy"] and kept[1111]["notebooks_verified"] == 3
    assert kept[1111]["notebooks"][0] == {"student": "ann", "assignment": AID, "points": 10.0, "max_points": 10.0}
    assert Path(first["batch_record"]).name != Path(late["batch_record"]).name
    with open(folder / "index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    assert [(r["seed"], r["students"]) for r in index] == [("1111", "3"), ("2222", "1")]


def test_the_same_seed_in_the_same_second_never_overwrites(tmp_path, monkeypatch):
    """A re-grade with --seed S right after the first batch: two records, not one replaced."""
    import time

    monkeypatch.setattr(time, "gmtime", lambda *a: time.struct_time((2026, 11, 29, 10, 0, 0, 6, 333, 0)))
    course = tmp_path / "course"
    for students in (["ann"], ["ann", "ben"], ["cy"]):
        _batch(course, course / "grades", 5, students, monkeypatch)
    records = sorted(report.batches_dir(course).glob("*.json"))
    assert len(records) == 3
    assert sorted(len(json.loads(p.read_text())["students"]) for p in records) == [1, 1, 2]
    assert not [p for p in report.batches_dir(course).iterdir() if ".tmp" in p.name]


def test_a_damaged_record_does_not_stop_the_index(tmp_path, monkeypatch):
    course = tmp_path / "course"
    _batch(course, course / "grades", 1, ["ann"], monkeypatch)
    (report.batches_dir(course) / "00000000T000000Z-9.json").write_text("{not json")
    _batch(course, course / "grades", 2, ["ben"], monkeypatch)
    with open(report.batches_dir(course) / "index.csv", newline="") as f:
        assert [r["seed"] for r in csv.DictReader(f)] == ["1", "2"]


# ---------------------------------------------------------------------------- one real batch


@pytest.mark.grading
@pytest.mark.slow
def test_one_batch_end_to_end_feedback_folders_and_history(tmp_path):
    """The real grade command (nbgrader, sandboxed kernels, the verifier): an answer whose cell
    displays active markdown/HTML gets an inert feedback page with its bold word; "bo[b]" and
    ".alice" are listed, not graded; "bob" keeps his own points; the batch's record is kept."""
    pytest.importorskip("nbgrader")
    from skinlab.grading import commands

    course = tmp_path / "course"
    (course / "solutions" / AID).mkdir(parents=True)
    (course / "exercises" / AID).mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copy(ROOT / "solutions" / AID / f"{AID}.ipynb", course / "solutions" / AID)
    shutil.copy(ROOT / "exercises" / AID / f"{AID}.ipynb", course / "exercises" / AID)
    subs = tmp_path / "class"
    bob = _hand_in(subs, "bob")
    nb = nbformat.read(str(bob), as_version=4)
    nb.cells.append(new_code_cell(
        "from IPython.display import HTML, Markdown, display\n"
        "display(Markdown('a **bold** word <img src=x onerror=\"alert(\\'PWN\\')\">'))\n"
        "display(HTML('<svg onload=\"alert(\\'PWN\\')\"></svg><script>alert(\\'PWN\\')</script>'))"))
    nb.cells.append(new_markdown_cell("notes <img src=x onerror=\"alert('PWN')\">"))
    nbformat.write(nb, str(bob))
    _hand_in(subs, "bo[b]", "mistake")
    _hand_in(subs, ".alice")

    paths = commands.grade(subs, course, tmp_path / "out", jobs=1, seed=3)

    rows = {r["student_id"]: r for r in csv.DictReader(open(paths["grades"], newline=""))}
    assert set(rows) == {"bob"} and rows["bob"]["score"] == "10.0", rows
    skipped = {r["student_id"]: r["reason"] for r in csv.DictReader(open(paths["skipped"], newline=""))}
    assert set(skipped) == {"bo[b]", ".alice"}
    page = (course / "feedback" / "bob" / AID / f"{AID}.html").read_text()
    assert _active(page, "PWN") == []  # (the cell's source shows the attack as escaped text)
    assert "<strong>bold</strong>" in page and "notes" in page
    [record] = report.batches_dir(course).glob("*.json")
    assert json.loads(record.read_text())["students"] == ["bob"]
    assert json.loads((tmp_path / "out" / "grading.json").read_text())["batch_record"] == str(record)
