"""An adversarial class graded by the real grade command, in one sandboxed batch.

Every entry of ``solutions/adversarial_class.py`` must get the points it deserves per test cell,
whatever its code did inside its kernel, and the instructor must see what happened: the
disagreement between nbgrader's in-kernel points and the verifier's, the similarity flag, and
nothing leaked, written, reached or left running.
"""

from __future__ import annotations

import csv
import hashlib
import html
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import skinlab
from skinlab.course.exercises import exercise_ids
from skinlab import grading
from skinlab.grading import sandbox

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = exercise_ids(ROOT)
sys.path.insert(0, str(ROOT / "solutions"))
import adversarial_class as adv  # noqa: E402

pytestmark = [pytest.mark.grading, pytest.mark.slow]
pytest.importorskip("nbgrader", reason="the grading extra (nbgrader) is not installed")
MARKER = "skinlab-adversary-marker"


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


class Listener:
    """A loopback server that records every connection (the network attack must make none)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if sandbox.unavailable_reason() is not None:
        pytest.fail(f"this machine cannot sandbox ({sandbox.unavailable_reason()}); CI must")
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for aid in EXERCISES:
        for folder in ("solutions", "exercises"):
            (course / folder / aid).mkdir(parents=True)
            shutil.copy(ROOT / folder / aid / f"{aid}.ipynb", course / folder / aid)
    package = Path(skinlab.__file__).resolve().parent
    before = {"package": _tree_hash(package), "solutions": _tree_hash(course / "solutions")}
    listener = Listener()
    subs = tmp_path_factory.mktemp("class")
    entries = adv.write_class(subs, ROOT / "exercises", course, package, listener.port)
    victim_nb = (subs / "victim" / "ex2_class_weights" / "ex2_class_weights.ipynb").read_bytes()
    out = course / "grades"
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "skinlab.grading", "--course-dir", str(course), "grade",
                           str(subs), "--out", str(out), "--seed", "7"],
                          env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    print(proc.stdout, proc.stderr, f"graded {len(entries)} adversarial notebooks in {seconds:.0f} s", sep="\n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    time.sleep(10)  # the delayed gradebook writer of "write_everywhere" would strike by now
    listener.close()
    scores = {}
    for row in _read_csv(out / "scores_by_test.csv"):
        scores.setdefault((row["student_id"], row["assignment"]), {})[row["grade_id"]] = float(row["score"])
    return dict(course=course, out=out, entries=entries, scores=scores, before=before, package=package,
                listener=listener, victim_nb=victim_nb, stdout=proc.stdout)


def test_every_entry_gets_the_points_it_deserves(graded):
    wrong = {}
    for e in graded["entries"]:
        got = graded["scores"].get((e.student, e.assignment))
        if e.skipped:  # not graded under a name nbgrader cannot take
            if got is not None:
                wrong[e.student] = (got, "skipped")
            continue
        if got != {k: float(v) for k, v in e.points.items()}:
            wrong[e.student] = (got, e.points)
    assert not wrong, wrong


def test_the_instructor_sees_every_disagreement(graded):
    rows = _read_csv(graded["out"] / "disagreements.csv")
    flagged = {r["student_id"] for r in rows}
    expected = {e.student for e in graded["entries"] if e.sees == "disagreement"}
    assert expected <= flagged, expected - flagged
    assert all(r["reason"] for r in rows)
    honest = {e.student for e in graded["entries"] if e.student.startswith("honest")}
    assert not honest & flagged, honest & flagged


def test_copies_are_listed_and_honest_answers_are_not(graded):
    rows = _read_csv(graded["out"] / "similarity.csv")
    pairs = {frozenset((r["first"], r["second"])) for r in rows}
    assert frozenset(("copy_pair_a", "copy_pair_b")) in pairs
    for copier in ("copied_reference", "padded_copy"):  # padding with no-effect statements hides nothing
        assert any(copier in p and any(x.startswith("reference") for x in p) for p in pairs), copier
    listed = {x for p in pairs for x in p}
    # A plain training loop has one way to be written: ex4 answers resemble the solution by nature
    # (docs/GRADING.md), so the honest ex4 answer may be listed; a person dismisses such pairs.
    honest = {e.student for e in graded["entries"] if e.student.startswith("honest") and e.assignment != "ex4_training"}
    assert not honest & listed, honest & listed
    assert (graded["out"] / "similarity.html").is_file()


def _outputs(notebook: Path) -> str:
    """Everything the notebook's cells printed (not their source, which names the attack)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return "\n".join(str(o.get("text", "")) + str(o.get("evalue", "")) + str(o.get("data", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_nothing_was_read_written_reached_or_left_running(graded):
    course = graded["course"]
    printed = _outputs(course / "autograded" / "read_hidden_tests" / "ex2_class_weights" / "ex2_class_weights.ipynb")
    assert "blocked:" in printed and "STOLEN" not in printed, printed[:2000]
    printed = _outputs(course / "autograded" / "write_everywhere" / "ex2_class_weights" / "ex2_class_weights.ipynb")
    assert "blocked" in printed and "WRITTEN" not in printed, printed[:2000]
    assert _tree_hash(graded["package"]) == graded["before"]["package"], "the installed package was modified"
    assert _tree_hash(course / "solutions") == graded["before"]["solutions"], "the source notebooks were modified"
    assert (course / "submitted" / "victim" / "ex2_class_weights" / "ex2_class_weights.ipynb").read_bytes() \
        == graded["victim_nb"]
    # no score was raised behind the grader's back: the gradebook still says what the CSV said
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for (student, aid), cells in graded["scores"].items():
            for gid, score in cells.items():
                assert gb.find_grade(gid, aid, aid, student).score == score, (student, gid)
    assert graded["listener"].connections == 0, "a sandboxed process reached the network"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert MARKER not in ps, "a process started by student code outlived its notebook"


def test_floods_and_hidden_tests_stay_out_of_the_notebooks_and_feedback(graded):
    course = graded["course"]
    flood = course / "autograded" / "output_flood" / "ex2_class_weights" / "ex2_class_weights.ipynb"
    assert flood.stat().st_size < 1_000_000
    hidden = "[2, 1, 1, 0, 0, 0, 0, 0]"  # a line of a hidden test of ex2
    for page in (course / "feedback").rglob("*.html"):
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        assert page.stat().st_size < 2_000_000, page
        assert hidden not in text, page
        assert "CALLER " not in text.replace('"CALLER", ', ""), page  # printed, not the answer's source


def test_active_outputs_are_inert_in_the_feedback(graded):
    """The student displayed an <img onerror>, a javascript: link, an iframe and an SVG with
    onload: the feedback page the instructor opens keeps none of them active."""
    page = graded["course"] / "feedback" / "active_outputs" / "ex2_class_weights" / "ex2_class_weights.html"
    text = page.read_text()
    tags = [t.lower() for t in re.findall(r"<[^>]+>", text)]
    # every payload calls alert('PWN'): no tag of the page may carry one (the page's own
    # template has scripts of its own, so the markers are looked for in the attack's tags only)
    carrying = [t for t in tags if "pwn" in t]
    assert not carrying, carrying


def test_tampered_metadata_is_flagged_with_the_cell(graded):
    rows = _read_csv(graded["out"] / "tampered.csv")
    flagged = {(r["student_id"], r["grade_id"]) for r in rows}
    for e in graded["entries"]:
        if e.tamper:
            assert (e.student, adv.TAMPERINGS[e.tamper][1]) in flagged, (e.student, rows)
    honest = {r["student_id"] for r in rows} - {e.student for e in graded["entries"] if e.tamper}
    assert not honest, honest


def test_student_folders_never_touch_each_other(graded):
    rows = _read_csv(graded["out"] / "skipped.csv")
    for e in graded["entries"]:
        if e.skipped:
            reasons = [r["reason"] for r in rows if e.skipped in r["reason"]]
            assert reasons, (e.student, rows)
    # bob kept his own grade (checked above) and his own feedback page, not "bo[b]"'s mistake
    page = graded["course"] / "feedback" / "bob" / "ex2_class_weights" / "ex2_class_weights.html"
    assert page.is_file() and "(test failed)" not in page.read_text()
