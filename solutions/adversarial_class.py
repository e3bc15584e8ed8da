"""An adversarial class: students who try to beat the grader, and honest ones it must not punish.

Each entry is one student's notebook for one exercise, with the points it deserves per test cell
and what the instructor must see. ``tests/test_grading_adversarial.py`` grades them all in one
batch with the real grade command (sandboxed) and checks both. The attacks know the course
folder's path (``{course}``) and the package's (``{package}``): the strongest student there is.

    python solutions/adversarial_class.py /tmp/class COURSE_DIR   # writes the notebooks
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bank  # noqa: E402
import simulated_class as sim  # noqa: E402

# The exercises' answers (mistakes, copies, attacks) are in their banks: solutions/<id>/answers.py.
EX1, EX2, EX3, EX4, EX5 = (bank.answers(aid) for aid in
                            ("ex1_split", "ex2_class_weights", "ex3_lenet", "ex4_training", "ex5_gradcam"))


@dataclass
class Entry:
    student: str
    assignment: str
    attack: str  # code added to the answer cell (after the answer), or a whole answer (replace=True)
    points: dict  # {test grade_id: points deserved}
    sees: str  # what the instructor must see: disagreement | similarity-reference | similarity-pair | nothing
    answer: str = "solution"  # the answer the attack rides on: solution | mistake | raw
    replace: dict = field(default_factory=dict)  # {answer grade_id: source} replacing the answer
    tamper: str = ""  # a key of TAMPERINGS: the nbgrader metadata this student edits
    skipped: str = ""  # a phrase of the skipped.csv reason when the folder cannot be graded under its name


def _pts(aid, student="solution"):
    return sim.expected_points(aid, student)


def _only(aid, passing):
    return {gid: (pts if gid in passing else 0) for gid, pts in sim.POINTS[aid].items()}


TRAIN_CELLS = {"test_train_matches", "test_train_returns", "test_train_mode"}

_GUARDED = "try:\n{body}\nexcept Exception as _exc:\n    print('attack failed:', type(_exc).__name__)\n"


def _guarded(code: str) -> str:
    return _GUARDED.format(body="\n".join("    " + line for line in code.strip("\n").split("\n")))


ATTACKS = {
    # --- the checks replaced in the kernel: nbgrader says 10, the verifier the truth
    "patch_checks_attribute": '''
import skinlab.grading as _g
for _n in dir(_g):
    if _n.startswith("check_"):
        setattr(_g, _n, lambda *a, **k: None)
''',
    "patch_checks_sys_modules": '''
import sys, types
class _Fake(types.ModuleType):
    def __getattr__(self, name):
        return lambda *a, **k: None
sys.modules["skinlab.grading"] = _Fake("skinlab.grading")
import skinlab
skinlab.grading = sys.modules["skinlab.grading"]
''',
    "patch_import": '''
import builtins, types
_real_import = builtins.__import__
def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if name.startswith("skinlab.grading"):
        fake = types.ModuleType("fake")
        for n in fromlist or ():
            setattr(fake, n, lambda *a, **k: None)
        return fake
    return _real_import(name, globals, locals, fromlist, level)
builtins.__import__ = _import
''',
    "neuter_numpy_torch": '''
import numpy as np, torch
np.allclose = lambda *a, **k: True
_np_abs = np.abs
np.abs = lambda x, *a, **k: _np_abs(x) * 0
torch.allclose = lambda *a, **k: True
''',
    "neuter_ipython": '''
_ip = get_ipython()
_ip.input_transformers_post.append(lambda lines: ["pass\\n"] if any("check_" in l for l in lines) else lines)
''',
    # --- reading and writing where it must not
    "read_hidden_tests": '''
import linecache, sys
for _p in ["{course}/solutions/ex2_class_weights/ex2_class_weights.ipynb", "{course}/gradebook.db",
           "{course}/solutions/ex2_class_weights/ex2_class_weights.py"]:
    try:
        print("STOLEN", open(_p, "rb").read(200000).decode("latin-1"))
    except Exception as _exc:
        print("blocked:", _p, type(_exc).__name__)
_answer = median_frequency_weights
def median_frequency_weights(labels, num_classes):
    print("CALLER", "".join(linecache.getlines(sys._getframe(1).f_code.co_filename)))
    return _answer(labels, num_classes)
''',
    "write_everywhere": '''
import sqlite3, subprocess, sys
try:
    _c = sqlite3.connect("{course}/gradebook.db")
    _c.execute("update grade set manual_score = 100")
    _c.commit()
    print("GRADEBOOK WRITTEN")
except Exception as _exc:
    print("gradebook blocked:", type(_exc).__name__)
for _p in ["{course}/submitted/victim/ex2_class_weights/ex2_class_weights.ipynb",
           "{course}/solutions/ex2_class_weights/ex2_class_weights.ipynb", "{package}/grading/__init__.py"]:
    try:
        with open(_p, "a") as _f:
            _f.write("\\n# pwned\\n")
        print("WRITTEN", _p)
    except Exception as _exc:
        print("write blocked:", _p, type(_exc).__name__)
# a process that outlives the kernel and writes the gradebook later
subprocess.Popen([sys.executable, "-c", "import time, sqlite3; time.sleep(8); "
                  "c = sqlite3.connect('{course}/gradebook.db'); c.execute('update grade set manual_score = 100'); c.commit()"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
''',
    "network": '''
import socket
for _addr in [("127.0.0.1", {port}), ("localhost", {port})]:
    try:
        socket.create_connection(_addr, timeout=2).sendall(b"stolen")
        print("CONNECTED", _addr)
    except Exception as _exc:
        print("network blocked:", type(_exc).__name__)
''',
    "spawn_processes": '''
import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)  # skinlab-adversary-marker"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)  # skinlab-adversary-marker"])
    os._exit(0)
''',
    "output_flood": '''
_answer = median_frequency_weights
def median_frequency_weights(labels, num_classes):
    for _ in range(20):
        print("x" * 5_000_000)
    return _answer(labels, num_classes)
''',
}


# ---------------------------------------------------------------------------- lying about itself (issue #20)
# Answers that describe themselves falsely to the grader (in the banks). Every point rests on
# values the verifier recomputes from inputs it drew, so a false description earns nothing that
# the answer's own computation does not.

# What a one-Linear "LeNet" honestly scores: the output's shape and raw logits, nothing else.
ONE_LINEAR_POINTS = _only("ex3_lenet", {"test_lenet_output", "test_lenet_logits"})


# ---------------------------------------------------------------------------- issue #20: strict, fair, safe

# Correct weights whose cell also displays active content: the feedback page must run none of it.
ACTIVE_OUTPUTS = '''
from IPython.display import HTML, Markdown, SVG, display

display(Markdown("ok <img src=x onerror=\\"alert('PWN')\\"> [click](javascript:alert('PWN'))"))
display(HTML("<iframe src=\\"javascript:alert('PWN')\\"></iframe><a href=\\"javascript:alert('PWN')\\">x</a>"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg' onload=\\"alert('PWN')\\"><circle r='4'/></svg>"))
'''


# ---------------------------------------------------------------------------- tampered metadata, folder names
# Edited nbgrader metadata: the scores stay right (the verifier reads the source notebook), and
# tampered.csv names the cell and what was done to it. {key: (edit, grade_id in tampered.csv)}


def cell_of(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def extra_graded_cell(nb):
    """An extra locked test cell worth 50 points, which the source notebook does not have."""
    import nbformat

    cell = nbformat.v4.new_code_cell("assert True")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "free_points", "locked": True, "points": 50,
                                 "schema_version": 3, "solution": False, "task": False}
    nb.cells.append(cell)


def answer_locked_and_graded(nb, gid="median_frequency_weights"):
    cell_of(nb, gid).metadata["nbgrader"].update(locked=True, grade=True, points=5)


def mark_test_cell_as_answer(nb, gid="test_weights_missing_class"):
    cell_of(nb, gid).metadata["nbgrader"]["solution"] = True


TAMPERINGS = {
    "extra_graded": (extra_graded_cell, "free_points"),
    "answer_locked": (answer_locked_and_graded, "median_frequency_weights"),
    "test_as_answer": (mark_test_cell_as_answer, "test_weights_missing_class"),
}


def entries() -> list[Entry]:
    out = []
    sees_disagreement = [
        ("patch_checks_attribute", "ex2_class_weights", "mistake"),
        ("patch_checks_sys_modules", "ex3_lenet", "mistake"),
        ("patch_import", "ex4_training", "mistake"),
        ("neuter_numpy_torch", "ex5_gradcam", "mistake"),
    ]
    for attack, aid, answer in sees_disagreement:
        out.append(Entry(attack, aid, _guarded(ATTACKS[attack]), _pts(aid, answer), "disagreement", answer))
    # IPython's cell machinery: every later cell that calls a check becomes `pass`. The answer
    # returns ones: right type and shape (2 points), wrong values.
    out.append(Entry("neuter_ipython", "ex2_class_weights", _guarded(ATTACKS["neuter_ipython"]),
                     _only("ex2_class_weights", {"test_weights_output"}), "disagreement", "raw",
                     {"median_frequency_weights": "import torch\n\ndef median_frequency_weights(labels, num_classes):\n"
                                                  "    return torch.ones(num_classes)\n"}))
    for attack in ("read_hidden_tests", "write_everywhere", "network", "spawn_processes", "output_flood"):
        answer = "mistake" if attack == "write_everywhere" else "solution"
        out.append(Entry(attack, "ex2_class_weights", ATTACKS[attack] if attack in ("read_hidden_tests", "output_flood")
                         else _guarded(ATTACKS[attack]), _pts("ex2_class_weights", answer), "nothing", answer))
    out.append(Entry("victim", "ex2_class_weights", "", _pts("ex2_class_weights"), "nothing"))
    for student, body in EX4.EVALUATE_BREAKS.items():
        # A kernel that dies takes nbgrader's whole notebook with it; the verifier grades on.
        sees = "disagreement" if student in ("exit_os", "kill_kernel") else "nothing"
        out.append(Entry(student, "ex4_training", "", _only("ex4_training", TRAIN_CELLS), sees,
                         "solution", {"evaluate": body}))
    out.append(Entry("hardcoded_visible", "ex2_class_weights", "", _only("ex2_class_weights", {"test_weights_output"}),
                     "nothing", "raw", {"median_frequency_weights": EX2.HARDCODED_WEIGHTS}))
    for aid in sim.ASSIGNMENT_IDS:
        for student, replace in getattr(bank.answers(aid), "REFERENCE_VIA", {}).items():
            out.append(Entry(student, aid, "", {g: 0 for g in sim.POINTS[aid]}, "nothing", "raw", replace))
    out.append(Entry("copied_reference", "ex2_class_weights", "", _pts("ex2_class_weights"), "similarity-reference",
                     "raw", {"median_frequency_weights": EX2.COPIED_REFERENCE}))
    for student, names in (("copy_pair_a", dict(rng="rng", out="out", dx="dx", rows="rows", a="n_train", b="n_val")),
                           ("copy_pair_b", dict(rng="gen", out="result", dx="cls", rows="idx", a="k1", b="k2"))):
        out.append(Entry(student, "ex1_split", "", _pts("ex1_split", "mistake"), "similarity-pair", "raw",
                         {"split_by_lesion": sim.with_default_fractions(EX1.SHARED_SPLIT.format(**names))}))
    for aid in sim.ASSIGNMENT_IDS:
        for student, replace in getattr(bank.answers(aid), "UNLIKE_REFERENCE", {}).items():
            out.append(Entry(student, aid, "", _pts(aid), "nothing", "raw", replace))
    # Lying about itself: the points its values earn (the honest one-Linear model is in
    # tests/test_grading_ex3.py), and nbgrader (in the kernel, where nothing is forged) agrees.
    out.append(Entry("forged_lenet_probes", "ex3_lenet", "", ONE_LINEAR_POINTS, "nothing", "raw",
                     {"LeNet": EX3.FORGED_LENET_PROBES}))
    ex2_all = set(sim.POINTS["ex2_class_weights"])
    out.append(Entry("every_class_message", "ex2_class_weights", "",
                     _only("ex2_class_weights", ex2_all - {"test_weights_missing_class"}), "nothing", "raw",
                     {"median_frequency_weights": EX2.EVERY_CLASS_MESSAGE}))
    out.append(Entry("float64_weights", "ex2_class_weights", "",
                     _only("ex2_class_weights", ex2_all - {"test_weights_output"}), "nothing", "raw",
                     {"median_frequency_weights": EX2.FLOAT64_WEIGHTS}))
    out.append(Entry("padded_copy", "ex2_class_weights", "", _pts("ex2_class_weights"), "similarity-reference",
                     "raw", {"median_frequency_weights": EX2.PADDED_COPY}))
    out.append(Entry("active_outputs", "ex2_class_weights", ACTIVE_OUTPUTS, _pts("ex2_class_weights"), "nothing"))
    out.append(Entry("relus_missing_after_linear", "ex3_lenet", "",
                     _only("ex3_lenet", set(sim.POINTS["ex3_lenet"]) - {"test_lenet_equivalent"}), "nothing", "raw",
                     {"LeNet": EX3.NO_LINEAR_RELUS_LENET}))
    out.append(Entry("forged_modes", "ex4_training", "", _only("ex4_training", {"test_train_returns"}), "nothing",
                     "raw", {"train_one_epoch": EX4.FORGED_MODES_TRAIN, "evaluate": EX4.FORGED_MODES_EVALUATE}))
    out.append(Entry("evaluate_backward", "ex4_training", "",
                     _only("ex4_training", set(sim.POINTS["ex4_training"]) - {"test_evaluate_mode"}), "nothing",
                     "raw", {"evaluate": EX4.EVALUATE_BACKWARD}))
    for name in TAMPERINGS:
        out.append(Entry(f"tampers_{name}", "ex2_class_weights", "", _pts("ex2_class_weights", "mistake"),
                         "tampered", "mistake", tamper=name))
    # Folder names nbgrader cannot take: a glob that matched a classmate ("bob" must keep his
    # grade and feedback), a hidden folder, and the same name in its decomposed Unicode form.
    out.append(Entry("bob", "ex2_class_weights", "", _pts("ex2_class_weights"), "nothing"))
    out.append(Entry("bo[b]", "ex2_class_weights", "", {}, "nothing", "mistake", skipped="reads as a pattern"))
    out.append(Entry(".carol", "ex2_class_weights", "", {}, "nothing", "mistake", skipped="is hidden"))
    out.append(Entry("Jos\u00e9", "ex2_class_weights", "", _pts("ex2_class_weights"), "nothing"))
    out.append(Entry("Jose\u0301", "ex2_class_weights", "", {}, "nothing", "mistake",
                     skipped="in another Unicode form"))
    # The red team's second round: rewritten shapes, and a default map copied from the class the
    # request named. Each scores what its own model does (ex3: 0; ex5: all but the argmax cell).
    out.append(Entry("forged_shapes", "ex3_lenet", "", {g: 0 for g in sim.POINTS["ex3_lenet"]}, "nothing", "raw",
                     {"LeNet": EX3.FORGED_SHAPES}))
    out.append(Entry("forged_argmax", "ex5_gradcam", "",
                     _only("ex5_gradcam", set(sim.POINTS["ex5_gradcam"]) - {"test_cam_argmax"}), "nothing", "raw",
                     {"grad_cam": EX5.FORGED_ARGMAX}))
    out.append(Entry("forged_zero_chain", "ex3_lenet", "", {g: 0 for g in sim.POINTS["ex3_lenet"]}, "nothing",
                     "raw", {"LeNet": EX3.FORGED_ZERO_CHAIN}))
    out.append(Entry("self_zeroing_lenet", "ex3_lenet", "", {g: 0 for g in sim.POINTS["ex3_lenet"]},
                     "nothing", "raw", {"LeNet": EX3.SELF_ZEROING_LENET}))
    return out


def notebook(entry: Entry, release_dir: Path, course: Path, package: Path, port: int):
    """The submitted notebook of ``entry``: the chosen answer, the attack added to its first answer cell."""
    base = "solution" if entry.answer == "raw" else entry.answer
    nb = sim.submission(Path(release_dir) / entry.assignment / f"{entry.assignment}.ipynb", entry.assignment, base)
    first = True
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        gid = meta["grade_id"]
        if gid in entry.replace:
            cell.source = entry.replace[gid].strip("\n")
        if first and entry.attack:
            attack = entry.attack.replace("{course}", str(course)).replace("{package}", str(package))
            cell.source = cell.source.rstrip("\n") + "\n\n" + attack.replace("{port}", str(port))
        first = False
    if entry.tamper:
        TAMPERINGS[entry.tamper][0](nb)
    return nb


def write_class(out: Path, release_dir: Path, course: Path, package: Path, port: int = 9) -> list[Entry]:
    import nbformat

    chosen = entries()
    for entry in chosen:
        target = Path(out) / entry.student / entry.assignment / f"{entry.assignment}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook(entry, release_dir, course, package, port), str(target))
    return chosen


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python solutions/adversarial_class.py OUT_DIR COURSE_DIR")
    import skinlab

    write_class(Path(sys.argv[1]), HERE.parent / "exercises", Path(sys.argv[2]).resolve(),
                Path(skinlab.__file__).resolve().parent)
    print(sys.argv[1])
