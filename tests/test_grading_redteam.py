"""Attacks a red-team student found against the grader, each kept as a test of its defence.

Fast: the verifier runs unsandboxed here (the sandbox and the whole grade command have their
own tests); each test names the attack it stops.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

from skinlab.grading import collect, feedback, report, testcells, verifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "solutions"))
import simulated_class as sim  # noqa: E402


def _source(aid):
    return json.loads((ROOT / "solutions" / aid / f"{aid}.ipynb").read_text())


def _submission(aid, student="solution", answer=None):
    nb = sim.submission(ROOT / "exercises" / aid / f"{aid}.ipynb", aid, student)
    if answer is not None:
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = answer
                break
    return json.loads(nbformat.writes(nb))


def _points(aid, nb):
    cells = verifier.verify(aid, _source(aid), nb, seed=5, sandboxed=False, time_limit=3.0)
    return {c.grade_id: c.points for c in cells}, {c.grade_id: c.message for c in cells}


def test_zeroed_weights_cannot_hide_a_missing_relu():
    """A LeNet without its second ReLU that zeroes conv2 (ReLU(0) = 0) scored 10/10."""
    mistake = sim.answer_sources("ex3_lenet", "mistake")["LeNet"]
    answer = mistake.replace("self.conv2 = nn.Conv2d(6, 16, 5)",
                             "self.conv2 = nn.Conv2d(6, 16, 5)\n        nn.init.zeros_(self.conv2.weight)\n"
                             "        nn.init.zeros_(self.conv2.bias)")
    assert answer != mistake
    got, messages = _points("ex3_lenet", _submission("ex3_lenet", answer=answer))
    assert got == sim.expected_points("ex3_lenet", "mistake"), messages
    assert "no ReLU after the second convolution" in messages["test_lenet_equivalent"]


def test_a_split_that_uses_one_split_earns_nothing_for_not_leaking():
    """Everything in "train" never leaks: it earned the 3 no-leak points."""
    answer = sim.with_default_fractions(
        "import pandas as pd\n\ndef split_by_lesion(metadata, fractions=DEFAULT_FRACTIONS, seed=0):\n"
        "    return pd.Series('train', index=metadata.index)\n")
    got, messages = _points("ex1_split", _submission("ex1_split", answer=answer))
    assert got["test_split_no_leak"] == 0, messages


@pytest.mark.parametrize("bad", [[1], "x", {"grade_id": ["a", "b"], "solution": True}])
def test_malformed_cell_metadata_is_removed_not_fatal(bad):
    """Cell metadata that is not a mapping (or a grade_id that is a list) crashed the whole batch."""
    nb = _submission("ex2_class_weights")
    nb["cells"][0]["metadata"] = bad if isinstance(bad, list) else {"nbgrader": bad}
    node = nbformat.from_dict(nb)
    fixes = collect._clean_metadata(node)
    assert fixes and all(isinstance(c.metadata, dict) for c in node.cells)
    cells = testcells.worker_cells(_source("ex2_class_weights"), nb)  # the raw notebook, too
    assert cells


def test_a_symlinked_notebook_is_skipped_not_followed(tmp_path):
    """copytree followed links: a link to the solutions was graded and copied into the feedback."""
    secret = tmp_path / "secret.ipynb"
    secret.write_text(nbformat.writes(nbformat.v4.new_notebook()))
    link = tmp_path / "subs" / "mallory" / "ex2_class_weights" / "ex2_class_weights.ipynb"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    batch = collect._collect(tmp_path / "subs", tmp_path / "course", ["ex2_class_weights"])
    assert not batch.found
    assert [r["reason"] for r in batch.skipped] == ["a symbolic link, not a notebook (not followed)"]


def test_csv_fields_never_start_a_formula(tmp_path):
    """A grade_id or message starting with "=" ran as a formula in the instructor's spreadsheet."""
    path = tmp_path / "x.csv"
    report._write_csv(path, [{"a": '=HYPERLINK("http://x")', "b": "-3.5", "c": "@SUM(A1)"}], ["a", "b", "c"])
    text = path.read_text()
    assert "'=HYPERLINK" in text and ",-3.5," in text and "'@SUM" in text


def test_feedback_drops_hidden_test_lines_and_active_html_from_student_outputs():
    """A last cell printing IPython's `In` showed the hidden tests; HTML/JS ran in the browser."""
    nb = nbformat.read(str(ROOT / "solutions" / "ex2_class_weights" / "ex2_class_weights.ipynb"), as_version=4)
    hidden = next(line for c in nb.cells for line in c.source.split("\n")
                  if "check_" in line and "[2, 1, 1, 0, 0, 0, 0, 0]" in line)
    leak = nbformat.v4.new_code_cell("print('\\n'.join(In))")
    leak.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"...\n{hidden}\n")]
    html = nbformat.v4.new_code_cell("display(HTML(...))")
    html.outputs = [nbformat.v4.new_output("display_data", data={"text/html": "<script>alert(1)</script>",
                                                                 "text/plain": "<IPython.HTML>"})]
    nb.cells += [leak, html]
    out, _ = feedback.HideHiddenTests().preprocess(nb, {})
    text = json.dumps([c.get("outputs", []) for c in out.cells])
    assert hidden not in text and "[2, 1, 1, 0, 0, 0, 0, 0]" not in text
    assert "<script>" not in text and "IPython.HTML" in text


def test_slow_notebook_cells_get_their_own_message(monkeypatch):
    """A slow exploratory cell timed the worker out and was blamed on the answer as an infinite loop."""
    monkeypatch.setattr(verifier, "CELLS_LIMIT_S", 3.0)
    nb = _submission("ex2_class_weights")
    nb["cells"].append(nbformat.v4.new_code_cell("import time\ntime.sleep(30)"))
    got, messages = _points("ex2_class_weights", nb)
    assert not any(got.values())
    assert all("cells took longer than 3 s" in m for m in messages.values()), messages
